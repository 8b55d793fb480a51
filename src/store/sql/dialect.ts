import type { Frag } from './sql-frag.ts';

/**
 * What differs between the SQL of the embedded store (SQLite) and of PostgreSQL, for the one
 * search builder both use (search-sql.ts, search-include.ts). Everything else in a search's SQL is
 * common to both. Placeholders are `?` for both (the PostgreSQL pool numbers them).
 */
export interface Dialect {
  readonly name: 'sqlite' | 'postgres';
  /** The columns of a version's stored body (`v`: resource_versions), as a search reads them. */
  readonly content: string;
  /** After `FROM <table>`: walk the table by its (rid, pid) index, where the planner must be told. */
  byRid(table: string): string;
  /** A column the planner must not use an index for (it would drive the query the wrong way). */
  notDriving(column: string): string;
  /** A join whose order is fixed as written (it still takes an ON clause). */
  readonly fixedJoin: string;
  /**
   * Free text (a string parameter's normalised value, a token's display text) as the index keeps
   * it, and so as a search compares it: whole, or (PostgreSQL) its start only.
   */
  indexedText(value: string): string;
  /** `column` contains the bound text. */
  contains(column: string, value: string): Frag;
  /** `column` ends with `|` and the bound code (the `:of-type` system convention). */
  endsWithCode(column: string, code: string): Frag;
  /** The smaller of two numbers. */
  readonly least: string;
  /** Rows of `alias` whose full text matches any of the queries (text.ts fullTextQuery), in the narrative only or all text. */
  text(alias: string, narrativeOnly: boolean, queries: string[]): Frag;
  /** A subquery listing the ids of an in-set criterion (`SELECT ...` of one column). */
  idSet(ids: ReadonlySet<string>): Frag;
  /** A subquery listing these rids. */
  rids(rids: number[]): Frag;
  /** Rows `j(type, id)` of these (type, id) pairs, for a FROM clause. */
  pairs(pairs: [string, string][]): Frag;
}
