import type { Db } from './open.ts';
import type { Statement } from './statements.ts';
import type { Resource } from '../../fhir/types.ts';
import { extractIndexRows } from '../../fhir/search/extract.ts';
import { contentText, narrativeText } from '../../fhir/search/text.ts';

const tables = ['search_string', 'search_token', 'search_reference', 'search_date', 'search_number', 'search_quantity', 'search_uri'];

interface IndexStatements {
  deletes: Statement[];
  deleteText: Statement;
  text: Statement;
  string: Statement;
  token: Statement;
  reference: Statement;
  date: Statement;
  number: Statement;
  quantity: Statement;
  uri: Statement;
}

const prepared = new WeakMap<Db, IndexStatements>();

function statements(db: Db): IndexStatements {
  let s = prepared.get(db);
  if (!s) {
    s = {
      deletes: tables.map((t) => db.prepare(`DELETE FROM ${t} WHERE rid = ?`)),
      deleteText: db.prepare('DELETE FROM search_text WHERE rowid = ?'),
      text: db.prepare('INSERT INTO search_text (rowid, narrative, content) VALUES (?, ?, ?)'),
      string: db.prepare('INSERT INTO search_string (rid, pid, norm, exact, grp) VALUES (?, ?, ?, ?, ?)'),
      token: db.prepare('INSERT INTO search_token (rid, pid, system, code, text, grp) VALUES (?, ?, ?, ?, ?, ?)'),
      reference: db.prepare('INSERT INTO search_reference (rid, pid, target_type, target_id, ref, grp) VALUES (?, ?, ?, ?, ?, ?)'),
      date: db.prepare('INSERT INTO search_date (rid, pid, lo, hi, grp) VALUES (?, ?, ?, ?, ?)'),
      number: db.prepare('INSERT INTO search_number (rid, pid, lo, hi, grp) VALUES (?, ?, ?, ?, ?)'),
      quantity: db.prepare('INSERT INTO search_quantity (rid, pid, system, code, unit, lo, hi, grp) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'),
      uri: db.prepare('INSERT INTO search_uri (rid, pid, uri, grp) VALUES (?, ?, ?, ?)'),
    };
    prepared.set(db, s);
  }
  return s;
}

/**
 * Replaces the index rows of resource `rid` with those of its new current version (none when it
 * was deleted). Runs inside the caller's write transaction, so index and content never disagree.
 */
export function writeIndexRows(db: Db, rid: number, resource: Resource | undefined, isNew = false): void {
  const s = statements(db);
  if (!isNew) {
    for (const del of s.deletes) del.run(rid);
    s.deleteText.run(rid);
  }
  if (!resource) return;
  const narrative = narrativeText(resource);
  const content = contentText(resource);
  if (narrative || content) s.text.run(rid, narrative, content);
  const rows = extractIndexRows(resource);
  for (const r of rows.string) s.string.run(rid, r.key, r.norm, r.exact, r.grp ?? null);
  for (const r of rows.token) s.token.run(rid, r.key, r.system, r.code, r.text, r.grp ?? null);
  for (const r of rows.reference) s.reference.run(rid, r.key, r.type, r.id, r.ref, r.grp ?? null);
  for (const r of rows.date) s.date.run(rid, r.key, r.lo, r.hi, r.grp ?? null);
  for (const r of rows.number) s.number.run(rid, r.key, r.lo, r.hi, r.grp ?? null);
  for (const r of rows.quantity) s.quantity.run(rid, r.key, r.system, r.code, r.unit, r.lo, r.hi, r.grp ?? null);
  for (const r of rows.uri) s.uri.run(rid, r.key, r.uri, r.grp ?? null);
}

/**
 * What the index rows hold changes now and then (composite parameters, full text, Soundex): files
 * indexed before the current version are indexed again. Recorded in store_meta, and only once a
 * rebuild has finished, so a rebuild cut short (a crash, a kill) is started again on next open.
 */
export const indexVersion = 5;

export function ensureSearchIndex(db: Db): number | undefined {
  const row = db.prepare(`SELECT value FROM store_meta WHERE key = 'index_version'`).get() as { value: string } | undefined;
  if (row && Number(row.value) >= indexVersion) return undefined;
  const empty = db.prepare('SELECT 1 FROM resources LIMIT 1').get() === undefined;
  if (empty) {
    setIndexVersion(db);
    return undefined;
  }
  return rebuildSearchIndex(db);
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
export function rebuildSearchIndex(db: Db, batch = 2000): number {
  const next = db.prepare<[number, number], { rid: number; content: string }>(
    `SELECT r.rid, v.content FROM resources r JOIN resource_versions v ON v.seq = r.seq
      WHERE r.deleted = 0 AND r.rid > ? ORDER BY r.rid LIMIT ?`,
  );
  db.transaction(() => {
    db.prepare(`DELETE FROM store_meta WHERE key = 'index_version'`).run();
    for (const t of tables) db.exec(`DELETE FROM ${t}`);
    db.exec(`INSERT INTO search_text (search_text) VALUES ('delete-all')`);
  })();
  let n = 0;
  for (let after = 0, chunk = 0; ; chunk++) {
    const rows = next.all(after, batch);
    if (rows.length === 0) break;
    db.transaction(() => {
      for (const row of rows) writeIndexRows(db, row.rid, JSON.parse(row.content) as Resource, true);
    })();
    n += rows.length;
    after = rows[rows.length - 1].rid;
    if (chunk % 25 === 24) db.pragma('wal_checkpoint(TRUNCATE)');
  }
  db.transaction(() => setIndexVersion(db))();
  db.pragma('wal_checkpoint(TRUNCATE)');
  return n;
}
