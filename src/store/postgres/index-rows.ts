import type { Resource } from '../../fhir/types.ts';
import { extractIndexRows, type IndexRows } from '../../fhir/search/extract.ts';
import { contentText, narrativeText } from '../../fhir/search/text.ts';
import { frag, join, type Frag, type SqlArg } from '../sql/sql-frag.ts';
import { securityMask } from '../../fhir/security-label-bits.ts';
import { indexedWords } from './search-text.ts';
import { indexedText } from './dialect.ts';

type RowKind = keyof IndexRows;
type Row = IndexRows[RowKind][number];

interface Layout {
  table: string;
  /** Value columns after rid and pid, with their SQL types (grp follows). */
  columns: [string, string][];
  values: (row: never) => SqlArg[];
}

/** PostgreSQL text holds no NUL character; a value with one is indexed without it. */
const text = (v: string | null): string | null => (v === null || !v.includes('\0') ? v : v.replaceAll('\0', ''));
/** Free text that a btree indexes, bounded (dialect.ts indexedText). */
const bounded = (v: string | null): string | null => text(v === null ? null : indexedText(v));
/** Instants are whole milliseconds in a BIGINT. */
const ms = (v: number): number => (Number.isFinite(v) ? Math.round(v) : v > 0 ? Number.MAX_SAFE_INTEGER : Number.MIN_SAFE_INTEGER);

const layouts: Record<RowKind, Layout> = {
  string: { table: 'search_string', columns: [['norm', 'TEXT'], ['exact', 'TEXT']], values: (r: IndexRows['string'][number]) => [bounded(r.norm), text(r.exact)] },
  token: { table: 'search_token', columns: [['system', 'TEXT'], ['code', 'TEXT'], ['text', 'TEXT']], values: (r: IndexRows['token'][number]) => [text(r.system), text(r.code), bounded(r.text)] },
  reference: {
    table: 'search_reference', columns: [['target_type', 'TEXT'], ['target_id', 'TEXT'], ['ref', 'TEXT']],
    values: (r: IndexRows['reference'][number]) => [text(r.type), text(r.id), text(r.ref)],
  },
  date: { table: 'search_date', columns: [['lo', 'BIGINT'], ['hi', 'BIGINT']], values: (r: IndexRows['date'][number]) => [ms(r.lo), ms(r.hi)] },
  number: { table: 'search_number', columns: [['lo', 'DOUBLE PRECISION'], ['hi', 'DOUBLE PRECISION']], values: (r: IndexRows['number'][number]) => [r.lo, r.hi] },
  quantity: {
    table: 'search_quantity', columns: [['system', 'TEXT'], ['code', 'TEXT'], ['unit', 'TEXT'], ['lo', 'DOUBLE PRECISION'], ['hi', 'DOUBLE PRECISION']],
    values: (r: IndexRows['quantity'][number]) => [text(r.system), text(r.code), text(r.unit), r.lo, r.hi],
  },
  uri: { table: 'search_uri', columns: [['uri', 'TEXT']], values: (r: IndexRows['uri'][number]) => [text(r.uri)] },
};
export const rowKinds = Object.keys(layouts) as RowKind[];
export const indexTables = rowKinds.map((k) => layouts[k].table);

const valuesOf = (kind: RowKind, r: Row): SqlArg[] => (layouts[kind].values as (r: Row) => SqlArg[])(r);

/** A kind's rows as one array per column (pid, values..., grp), for `unnest`. */
function columnsOf(kind: RowKind, rows: Row[]): SqlArg[] {
  const width = layouts[kind].columns.length;
  const cols: (string | number | null)[][] = Array.from({ length: width + 2 }, () => []);
  for (const r of rows) {
    cols[0].push(r.key);
    const v = valuesOf(kind, r) as (string | number | null)[];
    for (let i = 0; i < width; i++) cols[i + 1].push(v[i]);
    cols[width + 1].push(r.grp ?? null);
  }
  return cols as unknown as SqlArg[];
}

/** One index table's rows of a resource, as the arrays `unnest` takes (pid, the values, grp). */
export interface TableRows {
  table: string;
  /** Column names after rid, and their SQL types (each array is `<type>[]`). */
  columns: string[];
  types: string[];
  arrays: SqlArg[];
}

/** A resource's rows for every index table (empty arrays for a table it has none in). */
export function tableRowsOf(resource: Resource): TableRows[] {
  const rows = extractIndexRows(resource);
  return rowKinds.map((kind) => tableRows(kind, rows[kind] as Row[]));
}

function tableRows(kind: RowKind, rows: Row[]): TableRows {
  const { table, columns } = layouts[kind];
  return { table, columns: ['pid', ...columns.map(([c]) => c), 'grp'], types: ['BIGINT', ...columns.map(([, t]) => t), 'INTEGER'], arrays: columnsOf(kind, rows) };
}

/** `unnest(CAST(? AS t1[]), ...)` of a table's arrays. */
export function unnestOf(types: string[]): string {
  return `unnest(${types.map((t) => `CAST(? AS ${t}[])`).join(', ')})`;
}

/**
 * The common table expressions that bring a resource's index rows to those of its new current
 * version, all in the one statement that writes the version: an earlier expression `w` of that
 * statement gives the resource's rid (none: nothing is written). The statement's text depends only
 * on `replacing` (whether old rows may exist), never on the rows: it is prepared once per
 * connection. A kind whose rows did not change is left alone (its arrays empty, its delete off).
 */
export function indexCtes(resource: Resource | undefined, previous: Resource | undefined, replacing: boolean): Frag[] {
  const after = resource ? extractIndexRows(resource) : undefined;
  const before = previous ? extractIndexRows(previous) : undefined;
  const ctes: Frag[] = [];
  rowKinds.forEach((kind, n) => {
    const rows = (after?.[kind] ?? []) as Row[];
    const changed = !before || !sameRows(kind, before[kind] as Row[], rows);
    const t = tableRows(kind, changed ? rows : []);
    if (replacing) ctes.push(frag(`d${n} AS (DELETE FROM ${t.table} WHERE rid = (SELECT rid FROM w) AND CAST(? AS BOOLEAN))`, changed ? 1 : 0));
    ctes.push(frag(`i${n} AS (INSERT INTO ${t.table} (rid, ${t.columns.join(', ')}) SELECT w.rid, u.* FROM w, ${unnestOf(t.types)} AS u)`, ...t.arrays));
  });
  const [narrative, everything] = resource ? textOf(resource) : ['', ''];
  const [oldNarrative, oldEverything] = previous ? textOf(previous) : ['', ''];
  const textChanged = !previous || narrative !== oldNarrative || everything !== oldEverything;
  const set = textChanged && everything !== '';
  ctes.push(frag(
    `ts AS (INSERT INTO search_text (rid, narrative, everything) SELECT w.rid, to_tsvector('simple', ?), to_tsvector('simple', ?) FROM w WHERE CAST(? AS BOOLEAN)` +
      ' ON CONFLICT (rid) DO UPDATE SET narrative = excluded.narrative, everything = excluded.everything)',
    narrative, everything, set ? 1 : 0,
  ));
  if (replacing) ctes.push(frag(`td AS (DELETE FROM search_text WHERE rid = (SELECT rid FROM w) AND CAST(? AS BOOLEAN))`, textChanged && !set ? 1 : 0));
  return ctes;
}

/** The words of the narrative, and of all of the resource's text (narrative included), as search_text indexes them. */
export function textOf(resource: Resource): [string, string] {
  const narrative = indexedWords(narrativeText(resource));
  const content = indexedWords(contentText(resource));
  return [narrative, narrative && content ? `${narrative} ${content}` : narrative || content];
}

function sameRows(kind: RowKind, a: Row[], b: Row[]): boolean {
  if (a.length !== b.length) return false;
  const identity = (r: Row) => JSON.stringify([r.key, r.grp ?? null, ...valuesOf(kind, r)]);
  const seen = new Set(a.map(identity));
  return b.every((r) => seen.has(identity(r)));
}

/** `WITH a AS (...), b AS (...) <final>`. */
export function withCtes(ctes: Frag[], final: Frag): Frag {
  return join([frag('WITH '), join(ctes, ', '), frag(' '), final], '');
}

/**
 * The search index rows of many new resources (a rebuild, a migration), one statement per table:
 * the rows indexCtes writes for one resource, with a rid column, since a statement per resource
 * costs about a millisecond each in planning and round trips.
 */
export class IndexBatch {
  size = 0;
  private readonly tables = new Map<string, { sql: string; columns: unknown[][] }>();
  private readonly text: [number[], string[], string[]] = [[], [], []];
  private readonly security: [number[], number[]] = [[], []];

  add(rid: number, indexed: Resource): void {
    const mask = securityMask(indexed);
    if (mask !== 0) {
      this.security[0].push(rid);
      this.security[1].push(mask);
    }
    for (const t of tableRowsOf(indexed)) {
      let batch = this.tables.get(t.table);
      if (!batch) {
        batch = { sql: `INSERT INTO ${t.table} (rid, ${t.columns.join(', ')}) SELECT * FROM ${unnestOf(['BIGINT', ...t.types])}`, columns: Array.from({ length: t.columns.length + 1 }, () => []) };
        this.tables.set(t.table, batch);
      }
      const n = (t.arrays[0] as unknown[]).length;
      for (let i = 0; i < n; i++) batch.columns[0].push(rid);
      t.arrays.forEach((values, c) => {
        for (const value of values as unknown[]) batch!.columns[c + 1].push(value);
      });
    }
    const [narrative, everything] = textOf(indexed);
    if (everything !== '') {
      this.text[0].push(rid);
      this.text[1].push(narrative);
      this.text[2].push(everything);
    }
    this.size++;
  }

  statements(): Frag[] {
    const out: Frag[] = [];
    for (const { sql, columns } of this.tables.values()) if (columns[0].length > 0) out.push(frag(sql, ...(columns as unknown as SqlArg[])));
    if (this.text[0].length > 0) {
      out.push(frag(
        `INSERT INTO search_text (rid, narrative, everything) SELECT r, to_tsvector('simple', n), to_tsvector('simple', e)
         FROM unnest(CAST(? AS BIGINT[]), CAST(? AS TEXT[]), CAST(? AS TEXT[])) AS u(r, n, e)`,
        ...this.text,
      ));
    }
    if (this.security[0].length > 0) {
      out.push(frag('UPDATE resources SET security = u.m FROM unnest(CAST(? AS BIGINT[]), CAST(? AS INTEGER[])) AS u(r, m) WHERE rid = u.r', ...this.security));
    }
    return out;
  }
}
