import type { ResourceCodec } from '../resource-codec.ts';
import type { Database } from './database.ts';
import { indexVersion } from '../sql/index-version.ts';
import { IndexBatch, indexTables } from './index-rows.ts';

/**
 * Tables indexed by an older Bastion are indexed again before anything is served. Nodes starting
 * together: the first takes the lock and rebuilds, the others wait for it and find the work done.
 */
export async function ensureSearchIndex(db: Database, codec: ResourceCodec): Promise<number | undefined> {
  return db.withClient(async (client) => {
    await client.query(`SELECT pg_advisory_lock(hashtext('bastion-reindex'))`);
    try {
      const [row] = await db.query<{ value: string }>(`SELECT value FROM store_meta WHERE key = 'index_version'`);
      if (row && Number(row.value) >= indexVersion) return undefined;
      const [any] = await db.query('SELECT 1 FROM resources LIMIT 1');
      if (!any) {
        await setIndexVersion(db);
        return undefined;
      }
      return await rebuild(db, codec);
    } finally {
      await client.query(`SELECT pg_advisory_unlock(hashtext('bastion-reindex'))`);
    }
  });
}

function setIndexVersion(db: Database): Promise<unknown> {
  return db.query(`INSERT INTO store_meta (key, value) VALUES ('index_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, [String(indexVersion)]);
}

/** Rebuilds the index rows of every current resource (after the search parameter definitions changed). */
export async function rebuildSearchIndex(db: Database, codec: ResourceCodec): Promise<number> {
  return rebuild(db, codec);
}

interface CurrentContent {
  rid: number;
  type: string;
  id: string;
  version: number;
  content: string | null;
  sealed: Buffer | null;
}

/**
 * In transactions of `batch` resources, the version recorded last, so a rebuild cut short is
 * started again on next open. Searches meanwhile would see a partial index: it runs before serving
 * (or from the command line with the nodes stopped).
 */
async function rebuild(db: Database, codec: ResourceCodec, batch = 500): Promise<number> {
  await db.transaction(async (conn) => {
    await conn.query(`DELETE FROM store_meta WHERE key = 'index_version'`);
    await conn.exec(`TRUNCATE ${[...indexTables, 'search_text'].join(', ')}; UPDATE resources SET security = 0 WHERE security <> 0`);
  });
  let n = 0;
  for (let after = 0; ;) {
    const rows = await db.query<CurrentContent>(
      `SELECT r.rid, r.type, r.id, r.version, v.content, v.sealed FROM resources r JOIN resource_versions v ON v.seq = r.seq
        WHERE r.deleted = 0 AND r.rid > ? ORDER BY r.rid LIMIT ?`,
      [after, batch],
    );
    if (rows.length === 0) break;
    // Security bits were reset with the index: the batch sets those that are not 0.
    const indexing = new IndexBatch();
    for (const row of rows) indexing.add(row.rid, codec.indexedOf(row.type, row.id, row.version, (row.sealed ?? row.content)!));
    await db.transaction(async (conn) => {
      for (const statement of indexing.statements()) await conn.query(statement.sql, statement.args);
    });
    n += rows.length;
    after = rows[rows.length - 1].rid;
  }
  await setIndexVersion(db);
  return n;
}
