import type { Db } from './open.ts';
import type { Statement } from './statements.ts';
import type { Resource } from '../../fhir/types.ts';
import type { SearchRequest } from '../../fhir/search/types.ts';
import type { SearchResult, StoredResource } from '../store.ts';
import { writeIndexRows } from './search-index.ts';
import { buildSearchSql, sortKeyCount, type Frag } from './search-sql.ts';
import { decodeCursor, encodeCursor } from './search-cursor.ts';
import { findIncluded, type ResourceRow } from './search-include.ts';

/**
 * Writes the search index rows of one resource version (undefined: the resource was deleted).
 * A resource new to the store has no rows to replace (rids are never reused: rows of
 * `resources` are never deleted).
 */
export function indexResource(db: Db, rid: number, resource: Resource | undefined, isNew = false): void {
  writeIndexRows(db, rid, resource, isNew);
}

export function searchResources(db: Db, request: SearchRequest): SearchResult {
  const cursor = request.cursor === undefined ? undefined : decodeCursor(request.cursor, sortKeyCount(request));
  const { page, count, keyCount } = buildSearchSql(request, cursor);
  const run = (f: Frag) => prepare(db, f).all(...f.args) as ResourceRow[];
  let rows = request.count > 0 ? run(page) : [];
  // One row more than the page was read: it says whether the page has a successor in its direction.
  const more = rows.length > request.count;
  rows = rows.slice(0, request.count);
  const backward = cursor?.d === 'p';
  if (backward) rows.reverse();
  const result: SearchResult = { matches: rows.map(toStored), included: findIncluded(request, rows, run).map(toStored) };
  if (rows.length > 0) {
    const at = (row: ResourceRow, d: 'n' | 'p') => encodeCursor({ d, k: Array.from({ length: keyCount }, (_, i) => row[`k${i}`] ?? null), r: row.rid });
    if (backward ? true : more) result.next = at(rows[rows.length - 1], 'n');
    if (backward ? more : cursor !== undefined || request.offset > 0) result.previous = at(rows[0], 'p');
  }
  // An estimate costs the same as the exact count here, so both get the exact count.
  if (request.total !== 'none') result.total = (prepare(db, count).get(...count.args) as { n: number }).n;
  return result;
}

function toStored(row: ResourceRow): StoredResource {
  return {
    resourceType: row.type, id: row.id, versionId: String(row.version), lastUpdated: row.last_updated, deleted: false, json: row.content,
  };
}

const maxCached = 256;
const cache = new WeakMap<Db, Map<string, Statement>>();

/** Queries of the same shape share a prepared statement; preparing costs more than many searches. */
function prepare(db: Db, f: Frag): Statement {
  let statements = cache.get(db);
  if (!statements) cache.set(db, (statements = new Map()));
  let s = statements.get(f.sql);
  if (s) {
    statements.delete(f.sql);
  } else {
    s = db.prepare(f.sql);
    if (statements.size >= maxCached) statements.delete(statements.keys().next().value!);
  }
  statements.set(f.sql, s);
  return s;
}
