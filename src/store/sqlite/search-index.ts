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
 * Rebuilds the index rows of every current resource, in one transaction. For files whose
 * resources were written before the index existed (schema 1), or after a change in what is
 * indexed. Reads in batches (a connection cannot write while it iterates), so memory stays flat.
 */
export function rebuildSearchIndex(db: Db, batch = 500): number {
  const next = db.prepare<[number, number], { rid: number; content: string }>(
    `SELECT r.rid, v.content FROM resources r JOIN resource_versions v ON v.seq = r.seq
      WHERE r.deleted = 0 AND r.rid > ? ORDER BY r.rid LIMIT ?`,
  );
  let n = 0;
  db.transaction(() => {
    for (const t of tables) db.exec(`DELETE FROM ${t}`);
    db.exec(`INSERT INTO search_text (search_text) VALUES ('delete-all')`);
    for (let after = 0; ;) {
      const rows = next.all(after, batch);
      if (rows.length === 0) break;
      for (const row of rows) writeIndexRows(db, row.rid, JSON.parse(row.content) as Resource);
      n += rows.length;
      after = rows[rows.length - 1].rid;
    }
  })();
  return n;
}
