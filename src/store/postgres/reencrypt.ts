import { UnreadableContentError, type ResourceCodec } from '../resource-codec.ts';
import type { ReencryptProgress } from '../store.ts';
import type { Database } from './database.ts';

interface VersionContent {
  seq: number;
  type: string;
  id: string;
  version: number;
  content: string | null;
  sealed: Buffer | null;
}

const batchSize = 500;

/**
 * Rewrites the stored versions not under the current keys, oldest first, a batch per transaction.
 * What each holds is unchanged (only its sealing), so it runs beside the nodes serving: a write to
 * the same resource meanwhile adds a version, it never touches an old one.
 */
export async function reencryptVersions(db: Database, codec: ResourceCodec, onProgress?: (p: ReencryptProgress) => void): Promise<ReencryptProgress> {
  const [{ n: total }] = await db.query<{ n: number }>('SELECT count(*) AS n FROM resource_versions WHERE deleted = 0');
  const progress: ReencryptProgress = { examined: 0, total, rewritten: 0, unreadable: 0 };
  for (let after = 0; ;) {
    const rows = await db.query<VersionContent>(
      `SELECT v.seq, v.type, r.id, v.version, v.content, v.sealed FROM resource_versions v JOIN resources r ON r.rid = v.rid
        WHERE v.seq > ? AND v.deleted = 0 ORDER BY v.seq LIMIT ?`,
      [after, batchSize],
    );
    if (rows.length === 0) break;
    await db.transaction(async (conn) => {
      for (const row of rows) {
        progress.examined++;
        let fresh: string | Buffer | undefined;
        try {
          fresh = codec.refreshed(row.type, row.id, row.version, (row.sealed ?? row.content)!);
        } catch (err) {
          if (!(err instanceof UnreadableContentError)) throw err;
          progress.unreadable++;
          continue;
        }
        if (fresh === undefined) continue;
        const text = typeof fresh === 'string';
        await conn.query('UPDATE resource_versions SET content = ?, sealed = ? WHERE seq = ?', [text ? fresh : null, text ? null : fresh, row.seq]);
        progress.rewritten++;
      }
    });
    after = rows[rows.length - 1].seq;
    onProgress?.({ ...progress });
  }
  onProgress?.({ ...progress });
  return progress;
}

/** How many stored versions are stale (a scan: for status reports, not the request path). */
export async function countStale(db: Database, codec: ResourceCodec): Promise<number> {
  let n = 0;
  for (let after = 0; ;) {
    const rows = await db.query<VersionContent>(
      'SELECT v.seq, v.type, r.id, v.version, v.content, v.sealed FROM resource_versions v JOIN resources r ON r.rid = v.rid WHERE v.seq > ? AND v.deleted = 0 ORDER BY v.seq LIMIT 5000',
      [after],
    );
    if (rows.length === 0) return n;
    for (const row of rows) if (codec.isStale(row.type, row.id, row.version, (row.sealed ?? row.content)!)) n++;
    after = rows[rows.length - 1].seq;
  }
}

export async function holdsSealedBodies(db: Database): Promise<boolean> {
  return (await db.query('SELECT 1 FROM resource_versions WHERE sealed IS NOT NULL LIMIT 1')).length > 0;
}
