import type { Db } from './open.ts';
import type { Statement } from './statements.ts';
import type { Resource } from '../../fhir/types.ts';
import type { SearchCriterion, SearchRequest } from '../../fhir/search/types.ts';
import type { SearchResult, StoredResource } from '../store.ts';
import { writeIndexRows } from './search-index.ts';
import { buildSearchSql, cappedCountSql, lookupOf, type Frag } from '../sql/search-sql.ts';
import { decodeCursor, encodeCursor } from '../sql/search-cursor.ts';
import { findIncluded, type ResourceRow } from '../sql/search-include.ts';
import { ensureSetTables } from './search-sets.ts';
import type { ResourceCodec } from '../resource-codec.ts';
import type { CurrentCache } from './current-cache.ts';
import { sqliteDialect } from './dialect.ts';

/**
 * Writes the search index rows of one resource version (undefined: the resource was deleted).
 * A resource new to the store has no rows to replace (rids are never reused: rows of
 * `resources` are never deleted).
 */
export function indexResource(db: Db, rid: number, resource: Resource | undefined, isNew = false, previous?: Resource): void {
  writeIndexRows(db, rid, resource, isNew, previous);
}

export function searchResources(db: Db, codec: ResourceCodec, asked: SearchRequest, cache?: CurrentCache): SearchResult {
  const request = codec.searchable(asked);
  const toStored = (row: ResourceRow): StoredResource => {
    // A sealed body, or one with encrypted identifiers, is decoded once while it stays current: reads and searches share it.
    const cached = cache?.get(row.type, row.id);
    if (cached && cached.versionId === String(row.version)) return cached;
    const stored = {
      resourceType: row.type, id: row.id, versionId: String(row.version), lastUpdated: row.last_updated, deleted: false,
      json: codec.decode(row.type, row.id, row.version, row.content),
    };
    if (cache && stored.json !== row.content) cache.set(stored);
    return stored;
  };
  ensureSetTables(db, request);
  const keyCount = request.sort.length;
  const cursor = request.cursor === undefined ? undefined : decodeCursor(request.cursor, keyCount);
  const run = (f: Frag) => prepare(db, f).all(...f.args) as ResourceRow[];
  const { page, count } = buildSearchSql(request, sqliteDialect, cursor, commonCriteria(db, request));
  let rows = request.count > 0 ? run(page) : [];
  // One row more than the page was read: it says whether the page has a successor in its direction.
  const more = rows.length > request.count;
  rows = rows.slice(0, request.count);
  const backward = cursor?.d === 'p';
  if (backward) rows.reverse();
  const result: SearchResult = { matches: rows.map(toStored), included: findIncluded(request, rows, run, sqliteDialect).map(toStored) };
  if (rows.length > 0) {
    const at = (row: ResourceRow, d: 'n' | 'p') => encodeCursor({ d, k: Array.from({ length: keyCount }, (_, i) => row[`k${i}`] ?? null), r: row.rid });
    if (backward ? true : more) result.next = at(rows[rows.length - 1], 'n');
    if (backward ? more : cursor !== undefined || request.offset > 0) result.previous = at(rows[0], 'p');
  }
  // An estimate costs the same as the exact count here, so both get the exact count.
  if (request.total !== 'none') result.total = (prepare(db, count).get(...count.args) as { n: number }).n;
  return result;
}

/** A criterion matching more index rows than this is "common": listing its matches costs more than testing rows. */
const commonAt = 2000;

/**
 * The criteria to test row by row rather than list (search-sql.ts lookupSql). Listing the rids a
 * criterion matches costs as many steps as it has matches: right for `name=...` (a handful),
 * wasteful for `gender=male` over a large table when a page of 20 is wanted. Each plain criterion's
 * matches are counted up to a cap; the common ones are probed per row, so that a selective one
 * drives, or, when none is selective and the page is in rid order, the type is read in rid order
 * and stops once the page is full. Only the plan depends on this, never the results.
 */
function commonCriteria(db: Db, request: SearchRequest): Set<SearchCriterion> {
  const common = new Set<SearchCriterion>();
  if (request.count === 0) return common;
  let selective = 0;
  for (const c of request.criteria) {
    const lookup = lookupOf(c, request.resourceTypes, sqliteDialect);
    if (!lookup) continue;
    if (lookup.keys.length > 0 && isCommon(db, cappedCountSql(lookup, commonAt))) common.add(c);
    else selective++;
  }
  // With a sort, every match is read to be ordered anyway: probing only pays when one criterion is selective.
  if (request.sort.length > 0 && selective === 0) common.clear();
  return common;
}

const commonCache = new WeakMap<Db, Map<string, { common: boolean; until: number }>>();
const commonTtlMs = 30_000;

/** Whether a lookup reaches the cap; remembered for a while, as a value's frequency changes slowly. */
function isCommon(db: Db, q: Frag): boolean {
  let known = commonCache.get(db);
  if (!known) commonCache.set(db, (known = new Map()));
  const key = `${q.sql}\u0000${JSON.stringify(q.args)}`;
  const now = Date.now();
  const hit = known.get(key);
  if (hit && hit.until > now) return hit.common;
  const common = (prepare(db, q).get(...q.args) as { n: number }).n >= commonAt;
  if (known.size >= 1000) known.delete(known.keys().next().value!);
  known.set(key, { common, until: now + commonTtlMs });
  return common;
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
