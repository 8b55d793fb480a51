import type { Db } from './open.ts';
import type { ResourceCodec } from '../resource-codec.ts';
import { securityMask } from '../../fhir/security-label-bits.ts';
import type { Statement } from './statements.ts';
import type { Resource } from '../../fhir/types.ts';
import { extractIndexRows, type IndexRows } from '../../fhir/search/extract.ts';
import { contentText, narrativeText } from '../../fhir/search/text.ts';
import { indexVersion } from '../sql/index-version.ts';

type RowKind = keyof IndexRows;
type Row = IndexRows[RowKind][number];
type SqlValue = string | number | null;

/** Each index table: its value columns, and a row's values for them (after rid and pid, before grp). */
const layouts: Record<RowKind, { table: string; columns: string[]; values: (row: never) => SqlValue[] }> = {
  string: { table: 'search_string', columns: ['norm', 'exact'], values: (r: IndexRows['string'][number]) => [r.norm, r.exact] },
  token: { table: 'search_token', columns: ['system', 'code', 'text'], values: (r: IndexRows['token'][number]) => [r.system, r.code, r.text] },
  reference: { table: 'search_reference', columns: ['target_type', 'target_id', 'ref'], values: (r: IndexRows['reference'][number]) => [r.type, r.id, r.ref] },
  date: { table: 'search_date', columns: ['lo', 'hi'], values: (r: IndexRows['date'][number]) => [r.lo, r.hi] },
  number: { table: 'search_number', columns: ['lo', 'hi'], values: (r: IndexRows['number'][number]) => [r.lo, r.hi] },
  quantity: { table: 'search_quantity', columns: ['system', 'code', 'unit', 'lo', 'hi'], values: (r: IndexRows['quantity'][number]) => [r.system, r.code, r.unit, r.lo, r.hi] },
  uri: { table: 'search_uri', columns: ['uri'], values: (r: IndexRows['uri'][number]) => [r.uri] },
};
const kinds = Object.keys(layouts) as RowKind[];
const tables = kinds.map((k) => layouts[k].table);

interface IndexStatements {
  deleteAll: Statement[];
  deleteText: Statement;
  text: Statement;
  /** The row's known security labels (migration 7). */
  security: Statement;
  insert: Record<RowKind, Statement>;
  deleteOne: Record<RowKind, Statement>;
}

const prepared = new WeakMap<Db, IndexStatements>();

function statements(db: Db): IndexStatements {
  let s = prepared.get(db);
  if (!s) {
    const insert = {} as Record<RowKind, Statement>;
    const deleteOne = {} as Record<RowKind, Statement>;
    for (const kind of kinds) {
      const { table, columns } = layouts[kind];
      insert[kind] = db.prepare(`INSERT INTO ${table} (rid, pid, ${columns.join(', ')}, grp) VALUES (?, ?, ${columns.map(() => '?').join(', ')}, ?)`);
      // IS compares NULLs as equal; rows of one resource are unique (extract.ts removes duplicates).
      deleteOne[kind] = db.prepare(`DELETE FROM ${table} INDEXED BY ${table}_rid WHERE rid = ? AND pid = ? AND ${columns.map((c) => `${c} IS ?`).join(' AND ')} AND grp IS ?`);
    }
    s = {
      deleteAll: tables.map((t) => db.prepare(`DELETE FROM ${t} WHERE rid = ?`)),
      deleteText: db.prepare('DELETE FROM search_text WHERE rowid = ?'),
      security: db.prepare('UPDATE resources SET security = ? WHERE rid = ?'),
      text: db.prepare('INSERT INTO search_text (rowid, narrative, content) VALUES (?, ?, ?)'),
      insert,
      deleteOne,
    };
    prepared.set(db, s);
  }
  return s;
}

/**
 * Brings the index rows of resource `rid` to those of its new current version (none when it was
 * deleted). Runs inside the caller's write transaction, so index and content never disagree.
 * `previous`: the version it replaces, when one is live. Only the rows that differ between the two
 * are deleted and inserted: an update usually changes a few values, and every row written dirties
 * an index page the commit must encrypt. `isNew`: the resource has no rows yet.
 */
export function writeIndexRows(db: Db, rid: number, resource: Resource | undefined, isNew = false, previous?: Resource): void {
  const s = statements(db);
  const mask = resource ? securityMask(resource) : 0;
  if (mask !== (previous ? securityMask(previous) : 0) || (isNew && !previous && mask !== 0)) s.security.run(mask, rid);
  if (previous && resource) {
    replaceChangedRows(s, rid, extractIndexRows(previous), extractIndexRows(resource));
    const [oldNarrative, oldContent] = [narrativeText(previous), contentText(previous)];
    const [narrative, content] = [narrativeText(resource), contentText(resource)];
    if (narrative !== oldNarrative || content !== oldContent) {
      s.deleteText.run(rid);
      if (narrative || content) s.text.run(rid, narrative, content);
    }
    return;
  }
  if (!isNew) {
    for (const del of s.deleteAll) del.run(rid);
    s.deleteText.run(rid);
  }
  if (!resource) return;
  const narrative = narrativeText(resource);
  const content = contentText(resource);
  if (narrative || content) s.text.run(rid, narrative, content);
  const rows = extractIndexRows(resource);
  for (const kind of kinds) for (const r of rows[kind] as Row[]) s.insert[kind].run(rid, r.key, ...values(kind, r), r.grp ?? null);
}

function values(kind: RowKind, row: Row): SqlValue[] {
  return (layouts[kind].values as (r: Row) => SqlValue[])(row);
}

function replaceChangedRows(s: IndexStatements, rid: number, before: IndexRows, after: IndexRows): void {
  for (const kind of kinds) {
    const identity = (r: Row) => JSON.stringify([r.key, r.grp ?? null, ...values(kind, r)]);
    const old = new Map((before[kind] as Row[]).map((r) => [identity(r), r]));
    for (const r of after[kind] as Row[]) {
      const id = identity(r);
      if (old.has(id)) old.delete(id);
      else s.insert[kind].run(rid, r.key, ...values(kind, r), r.grp ?? null);
    }
    for (const r of old.values()) s.deleteOne[kind].run(rid, r.key, ...values(kind, r), r.grp ?? null);
  }
}

/**
 * Files indexed before the current index version (sql/index-version.ts) are indexed again.
 * Recorded in store_meta, and only once a rebuild has finished, so a rebuild cut short (a crash,
 * a kill) is started again on next open.
 */

export function ensureSearchIndex(db: Db, codec: ResourceCodec): number | undefined {
  const row = db.prepare(`SELECT value FROM store_meta WHERE key = 'index_version'`).get() as { value: string } | undefined;
  if (row && Number(row.value) >= indexVersion) return undefined;
  const empty = db.prepare('SELECT 1 FROM resources LIMIT 1').get() === undefined;
  if (empty) {
    setIndexVersion(db);
    return undefined;
  }
  return rebuildSearchIndex(db, codec);
}

function setIndexVersion(db: Db): void {
  db.prepare(`INSERT OR REPLACE INTO store_meta (key, value) VALUES ('index_version', ?)`).run(String(indexVersion));
}

/**
 * Rebuilds the index rows of every current resource from its content, in transactions of `batch`
 * resources, so a large store neither holds one giant transaction nor grows its WAL without
 * bound (it is checkpointed as the rebuild goes). Nothing else may write meanwhile (the caller
 * runs it before serving, or from `bastion reindex` on a stopped server); searches in between
 * would see a partial index, which is why the version is recorded last.
 */
export function rebuildSearchIndex(db: Db, codec: ResourceCodec, batch = 2000): number {
  const next = db.prepare<[number, number], { rid: number; type: string; id: string; version: number; content: string | Uint8Array }>(
    `SELECT r.rid, r.type, r.id, r.version, v.content FROM resources r JOIN resource_versions v ON v.seq = r.seq
      WHERE r.deleted = 0 AND r.rid > ? ORDER BY r.rid LIMIT ?`,
  );
  db.transaction(() => {
    db.prepare(`DELETE FROM store_meta WHERE key = 'index_version'`).run();
    for (const t of tables) db.exec(`DELETE FROM ${t}`);
    db.exec('UPDATE resources SET security = 0 WHERE security <> 0');
    db.exec(`INSERT INTO search_text (search_text) VALUES ('delete-all')`);
  })();
  let n = 0;
  for (let after = 0, chunk = 0; ; chunk++) {
    const rows = next.all(after, batch);
    if (rows.length === 0) break;
    db.transaction(() => {
      for (const row of rows) writeIndexRows(db, row.rid, codec.indexedOf(row.type, row.id, row.version, row.content), true);
    })();
    n += rows.length;
    after = rows[rows.length - 1].rid;
    if (chunk % 25 === 24) db.pragma('wal_checkpoint(TRUNCATE)');
  }
  db.transaction(() => setIndexVersion(db))();
  db.pragma('wal_checkpoint(TRUNCATE)');
  return n;
}
