import type { SearchRequest } from '../../fhir/search/types.ts';
import type { SearchResult, StoredResource } from '../store.ts';
import type { ResourceCodec } from '../resource-codec.ts';
import type { Queryable } from './database.ts';
import { buildSearchSql, type Frag } from '../sql/search-sql.ts';
import { decodeCursor, encodeCursor } from '../sql/search-cursor.ts';
import { findIncluded, type ResourceRow } from '../sql/search-include.ts';
import { pgDialect } from './dialect.ts';
import type { Bodies } from './body-cache.ts';

/**
 * A search on PostgreSQL: the SQL both stores share (store/sql/search-sql.ts) in PostgreSQL's
 * dialect. Its planner has statistics, so unlike the embedded store it needs no probing of how
 * common a criterion is before choosing how to run the query.
 */
export async function searchResources(conn: Queryable, codec: ResourceCodec, asked: SearchRequest, bodies?: Bodies): Promise<SearchResult> {
  const request = codec.searchable(asked);
  const toStored = (row: ResourceRow): StoredResource => ({
    resourceType: row.type, id: row.id, versionId: String(row.version), lastUpdated: row.last_updated, deleted: false,
    json: decodeBody(codec, bodies, row.type, row.id, row.version, row.sealed ?? row.content),
  });
  const keyCount = request.sort.length;
  const cursor = request.cursor === undefined ? undefined : decodeCursor(request.cursor, keyCount);
  const run = (f: Frag) => conn.query<ResourceRow>(f.sql, f.args);
  const { page, count } = buildSearchSql(request, pgDialect, cursor);
  const [found, total] = await Promise.all([
    request.count > 0 ? run(page) : [],
    request.total !== 'none' ? conn.query<{ n: number }>(count.sql, count.args) : undefined,
  ]);
  // One row more than the page was read: it says whether the page has a successor in its direction.
  const more = found.length > request.count;
  const rows = found.slice(0, request.count);
  const backward = cursor?.d === 'p';
  if (backward) rows.reverse();
  const included = await includedRows(request, rows, run);
  const result: SearchResult = { matches: rows.map(toStored), included: included.map(toStored) };
  if (rows.length > 0) {
    const at = (row: ResourceRow, d: 'n' | 'p') => encodeCursor({ d, k: Array.from({ length: keyCount }, (_, i) => row[`k${i}`] ?? null), r: row.rid });
    if (backward ? true : more) result.next = at(rows[rows.length - 1], 'n');
    if (backward ? more : cursor !== undefined || request.offset > 0) result.previous = at(rows[0], 'p');
  }
  if (total) result.total = total[0].n;
  return result;
}

/**
 * `_include`/`_revinclude` rounds: the shared builder runs synchronously, so each query it asks
 * for is answered from rows fetched beforehand, round by round.
 */
async function includedRows(request: SearchRequest, matches: ResourceRow[], run: (f: Frag) => Promise<ResourceRow[]>): Promise<ResourceRow[]> {
  if (request.include.length === 0 && request.revinclude.length === 0) return [];
  // Ask the builder which queries it wants; answer them; ask again with the answers, until it needs nothing new.
  const answers = new Map<string, ResourceRow[]>();
  for (;;) {
    const missing: Frag[] = [];
    const rows = findIncluded(request, matches, (q) => {
      const key = `${q.sql}\u0000${JSON.stringify(q.args)}`;
      const known = answers.get(key);
      if (known) return known;
      missing.push(q);
      return [];
    }, pgDialect);
    if (missing.length === 0) return rows;
    const results = await Promise.all(missing.map(run));
    missing.forEach((q, i) => answers.set(`${q.sql}\u0000${JSON.stringify(q.args)}`, results[i]));
  }
}

/** A stored body as served: through the codec, or from the cache of decoded bodies. */
export function decodeBody(codec: ResourceCodec, bodies: Bodies | undefined, type: string, id: string, version: number, content: string | Uint8Array): string {
  if (typeof content === 'string' && bodies === undefined) return codec.decode(type, id, version, content);
  const cached = bodies?.get(type, id, version);
  if (cached !== undefined) return cached;
  const json = codec.decode(type, id, version, content);
  if (json !== content) bodies?.set(type, id, version, json);
  return json;
}
