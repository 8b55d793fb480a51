import type { Db } from './open.ts';
import type { Statement } from './statements.ts';
import type { SearchConstraint, SearchCriterion, SearchRequest } from '../../fhir/search/types.ts';
import { setTable } from './search-sql.ts';

/**
 * The temporary tables of a request's in-set criteria, created on the connection that runs it
 * when missing. A table is checked for, not remembered: one created inside a transaction that
 * rolled back is gone. Each connection keeps the newest few; an older set asked for again is
 * simply filled again.
 */
export function ensureSetTables(db: Db, request: SearchRequest): void {
  const sets = new Set<ReadonlySet<string>>();
  for (const c of request.criteria) collect(c, sets);
  for (const k of request.constraints ?? []) for (const ids of setsOf(k)) sets.add(ids);
  for (const ids of sets) ensure(db, ids);
}

const constraintSets = new WeakMap<SearchConstraint, ReadonlySet<string>[]>();

/** Constraints are reused from request to request (src/rest/confinement.ts): walked once each. */
function setsOf(k: SearchConstraint): ReadonlySet<string>[] {
  let found = constraintSets.get(k);
  if (!found) {
    const sets = new Set<ReadonlySet<string>>();
    for (const c of k.anyOf) collect(c, sets);
    constraintSets.set(k, (found = [...sets]));
  }
  return found;
}

const kept = 32;
const connections = new WeakMap<Db, { exists: Statement; names: string[]; lasting: Set<string> }>();

function ensure(db: Db, ids: ReadonlySet<string>): void {
  const name = setTable(ids);
  let known = connections.get(db);
  if (!known) connections.set(db, (known = { exists: db.prepare('SELECT 1 FROM temp.sqlite_master WHERE name = ?'), names: [], lasting: new Set() }));
  // Made outside any transaction, nothing can roll it back: no need to look.
  if (known.lasting.has(name)) return;
  if (known.exists.get(name)) return;
  const names = known.names;
  db.exec(`CREATE TEMP TABLE ${name} (id TEXT PRIMARY KEY) WITHOUT ROWID`);
  const insert = db.prepare(`INSERT OR IGNORE INTO temp.${name} (id) VALUES (?)`);
  for (const id of ids) insert.run(id);
  names.push(name);
  if (!db.inTransaction) known.lasting.add(name);
  while (names.length > kept) {
    const oldest = names.shift()!;
    known.lasting.delete(oldest);
    db.exec(`DROP TABLE IF EXISTS temp.${oldest}`);
  }
}

function collect(c: SearchCriterion, out: Set<ReadonlySet<string>>): void {
  switch (c.kind) {
    case 'in-set': out.add(c.ids); return;
    case 'chain': case 'has': case 'for-types': case 'not': collect(c.criterion, out); return;
    case 'all-of': case 'any-of': for (const part of c.criteria) collect(part, out); return;
    case 'composite': for (const tuple of c.values) for (const part of tuple) collect(part, out); return;
    default:
  }
}
