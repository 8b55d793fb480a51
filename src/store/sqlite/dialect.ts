import type { Dialect } from '../sql/dialect.ts';
import { frag } from '../sql/sql-frag.ts';

const setTables = new WeakMap<ReadonlySet<string>, string>();
let setTablesNamed = 0;

/** The name of the temporary table holding an in-set criterion's ids (see search-sets.ts), the same for the set's lifetime. */
export function setTable(ids: ReadonlySet<string>): string {
  let name = setTables.get(ids);
  if (!name) setTables.set(ids, (name = `bastion_set_${++setTablesNamed}`));
  return name;
}

/**
 * SQLite's planner takes hints (INDEXED BY, a unary + on a column, CROSS JOIN's fixed order) where
 * its choice without statistics would read far more rows; in-set ids live in temporary tables
 * (search-sets.ts); full text is FTS5.
 */
export const sqliteDialect: Dialect = {
  name: 'sqlite',
  content: 'v.content',
  byRid: (table) => ` INDEXED BY ${table}_rid`,
  notDriving: (column) => `+${column}`,
  fixedJoin: 'CROSS JOIN',
  indexedText: (value) => value,
  contains: (column, value) => frag(`instr(${column}, ?) > 0`, value),
  endsWithCode: (column, code) => frag(`substr(${column}, -length(?) - 1) = ?`, code, `|${code}`),
  least: 'min',
  text: (alias, narrativeOnly, queries) => frag(
    `${alias}.rid IN (SELECT rowid FROM search_text WHERE search_text MATCH ?)`,
    queries.map((q) => (narrativeOnly ? `narrative : (${q})` : `(${q})`)).join(' OR '),
  ),
  idSet: (ids) => frag(`SELECT id FROM temp.${setTable(ids)}`),
  rids: (rids) => frag('SELECT value FROM json_each(?)', JSON.stringify(rids)),
  pairs: (pairs) => frag(`(SELECT json_extract(value, '$[0]') AS type, json_extract(value, '$[1]') AS id FROM json_each(?)) j`, JSON.stringify(pairs)),
};
