import type { Db } from './open.ts';
import type { Statement } from './statements.ts';
import type { SearchConstraint, SearchCriterion, SearchRequest } from '../../fhir/search/types.ts';
import { setTable } from './dialect.ts';

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
  if (sets.size === 0) return;
  const known = tablesOf(db);
  for (const ids of sets) ensure(db, known, ids);
  // The oldest go, but never one this request is about to use.
  const needed = new Set([...sets].map(setTable));
  for (let i = 0; known.names.length > kept && i < known.names.length;) {
    const name = known.names[i];
    if (needed.has(name)) {
      i++;
      continue;
    }
    known.names.splice(i, 1);
    known.lasting.delete(name);
    db.exec(`DROP TABLE IF EXISTS temp.${name}`);
  }
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
interface Tables {
  exists: Statement;
  /** Oldest first. */
  names: string[];
  /** Made outside any transaction: nothing can roll them back. */
  lasting: Set<string>;
}
const connections = new WeakMap<Db, Tables>();

function tablesOf(db: Db): Tables {
  let known = connections.get(db);
  if (!known) connections.set(db, (known = { exists: db.prepare('SELECT 1 FROM temp.sqlite_master WHERE name = ?'), names: [], lasting: new Set() }));
  return known;
}

function ensure(db: Db, known: Tables, ids: ReadonlySet<string>): void {
  const name = setTable(ids);
  if (known.lasting.has(name)) return;
  if (known.exists.get(name)) return;
  // Made inside a transaction that rolled back, it is gone: made again.
  db.exec(`CREATE TEMP TABLE ${name} (id TEXT PRIMARY KEY) WITHOUT ROWID`);
  const insert = db.prepare(`INSERT OR IGNORE INTO temp.${name} (id) VALUES (?)`);
  for (const id of ids) insert.run(id);
  const at = known.names.indexOf(name);
  if (at >= 0) known.names.splice(at, 1);
  known.names.push(name);
  if (!db.inTransaction) known.lasting.add(name);
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
