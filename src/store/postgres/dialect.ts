import type { Dialect } from '../sql/dialect.ts';
import { frag } from '../sql/sql-frag.ts';
import { tsQuery } from './search-text.ts';

/**
 * The UTF-16 units of free text an index row keeps. A btree entry holds 2704 bytes at most (a
 * longer value fails the write); UTF-8 takes at most 3 bytes per unit, so 512 always fit. A longer
 * value is found by its first 512 characters: a prefix search by them, `:exact` by them and then
 * the whole value (the exact column, not indexed, keeps it all); `:contains` only within them.
 */
export const indexedTextUnits = 512;

export function indexedText(value: string): string {
  if (value.length <= indexedTextUnits) return value;
  // Never half a surrogate pair: the cut is the same wherever it is made.
  const high = value.charCodeAt(indexedTextUnits - 1);
  return value.slice(0, high >= 0xd800 && high <= 0xdbff ? indexedTextUnits - 1 : indexedTextUnits);
}

/**
 * PostgreSQL plans with statistics and takes no hints: the SQLite hints are left out. Lists travel
 * as one array parameter each (`unnest`), full text is tsvector (search-text.ts).
 */
export const pgDialect: Dialect = {
  name: 'postgres',
  // JSON text, or the sealed body (schema.ts): a row has one or the other.
  content: 'v.content, v.sealed',
  byRid: () => '',
  notDriving: (column) => column,
  fixedJoin: 'JOIN',
  indexedText,
  contains: (column, value) => frag(`strpos(${column}, ?) > 0`, value),
  endsWithCode: (column, code) => frag(`right(${column}, length(?) + 1) = ?`, code, `|${code}`),
  least: 'least',
  text: (alias, narrativeOnly, queries) => {
    const query = queries.map(tsQuery).filter((q) => q !== '').map((q) => `(${q})`).join(' | ');
    if (query === '') return frag('FALSE');
    return frag(`${alias}.rid IN (SELECT rid FROM search_text WHERE ${narrativeOnly ? 'narrative' : 'everything'} @@ to_tsquery('simple', ?))`, query);
  },
  idSet: (ids) => frag('SELECT unnest(CAST(? AS TEXT[]))', [...ids]),
  rids: (rids) => frag('SELECT unnest(CAST(? AS BIGINT[]))', rids),
  pairs: (pairs) => frag('unnest(CAST(? AS TEXT[]), CAST(? AS TEXT[])) AS j(type, id)', pairs.map((p) => p[0]), pairs.map((p) => p[1])),
};
