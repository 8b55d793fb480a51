import { badRequest } from '../../fhir/outcome.ts';
import { frag, join, type Frag, type SqlArg } from './sql-frag.ts';

/**
 * A position in a search's sort order: the sort key values and rid of one row, and which way the
 * page runs from it ('n': the rows after it, 'p': the rows before it). Keyset paging: a page
 * fetched later starts after that row wherever it now is, instead of after a count of rows that
 * creates and deletes have shifted.
 */
export interface Cursor {
  d: 'n' | 'p';
  k: SqlArg[];
  r: number;
}

export function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify(cursor)).toString('base64url');
}

export function decodeCursor(token: string, keyCount: number): Cursor {
  let c: unknown;
  try {
    c = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw invalidCursor();
  }
  const cursor = c as Partial<Cursor>;
  const scalar = (v: unknown) => v === null || typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));
  if (
    typeof c !== 'object' || c === null || (cursor.d !== 'n' && cursor.d !== 'p') || !Array.isArray(cursor.k) ||
    cursor.k.length !== keyCount || !cursor.k.every(scalar) || !Number.isSafeInteger(cursor.r) || cursor.r! < 1
  ) {
    throw invalidCursor();
  }
  return cursor as Cursor;
}

export function invalidCursor() {
  return badRequest('_cursor is not a continuation token of this search (use the next and previous links as given)');
}

export interface KeyColumn {
  column: string;
  descending: boolean;
}

/**
 * The rows strictly beyond the cursor in the direction it runs, for keys sorted with missing
 * values last and the rid as the final tie-breaker (search-sql.ts sortKeys).
 */
export function keysetCondition(keys: readonly KeyColumn[], ridColumn: string, cursor: Cursor): Frag {
  const forward = cursor.d === 'n';
  const from = (i: number): Frag => {
    if (i === keys.length) return frag(`${ridColumn} ${forward ? '>' : '<'} ?`, cursor.r);
    const { column, descending } = keys[i];
    const v = cursor.k[i];
    const rest = from(i + 1);
    if (v === null) {
      // Nothing sorts after a missing value but other missing values; everything valued sorts before.
      const tie = join([frag(`(${column} IS NULL AND `), rest, frag(')')], '');
      return forward ? tie : join([frag(`(${column} IS NOT NULL OR `), tie, frag(')')], '');
    }
    const beyond = forward !== descending ? '>' : '<';
    const ahead = frag(`${column} ${beyond} ?`, v);
    const tie = join([frag(`(${column} = ? AND `, v), rest, frag(')')], '');
    return forward
      ? join([frag('('), ahead, frag(` OR ${column} IS NULL OR `), tie, frag(')')], '')
      : join([frag('('), ahead, frag(' OR '), tie, frag(')')], '');
  };
  return from(0);
}
