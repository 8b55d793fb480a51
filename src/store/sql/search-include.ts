import type { IncludeSpec, SearchRequest } from '../../fhir/search/types.ts';
import { paramKey, searchParam } from '../../fhir/search/params.ts';
import { and, constraintsSql, frag, join, type Frag } from './search-sql.ts';
import type { Dialect } from './dialect.ts';

/** A resources row with its current content, as searches return them. */
export interface ResourceRow {
  rid: number;
  type: string;
  id: string;
  version: number;
  last_updated: string;
  content: string | Uint8Array;
  /** PostgreSQL: the sealed body, when `content` is null (postgres/schema.ts). */
  sealed?: Uint8Array | null;
  /** Sort key values of a match (k0, k1, ...), for its cursor. */
  [key: `k${number}`]: string | number | null;
}

export type Run = (query: Frag) => ResourceRow[];

/** Enough for any page a client can use; stops a `:iterate` over a dense graph from running away. */
export const maxIncluded = 1000;
const maxRounds = 4;

const columns = (alias: string, dialect: Dialect) => `${alias}.rid, ${alias}.type, ${alias}.id, ${alias}.version, ${alias}.last_updated, ${dialect.content}`;

/**
 * `_include` and `_revinclude`: one query per spec and round, each keyed on the rows found so far
 * (passed as one JSON array, so the statement text does not depend on their number). Included
 * resources pass the same access constraints as matches.
 */
export function findIncluded(request: SearchRequest, matches: ResourceRow[], run: Run, dialect: Dialect): ResourceRow[] {
  const specs = [...request.include.map((s) => ({ s, rev: false })), ...request.revinclude.map((s) => ({ s, rev: true }))];
  if (specs.length === 0 || matches.length === 0) return [];
  const seen = new Set(matches.map((m) => m.rid));
  const included: ResourceRow[] = [];
  let frontier = matches;
  for (let round = 0; round < maxRounds && frontier.length > 0 && included.length < maxIncluded; round++) {
    const added: ResourceRow[] = [];
    for (const { s, rev } of specs) {
      if (round > 0 && !s.iterate) continue;
      const query = rev ? revIncludeSql(s, frontier, request, dialect) : includeSql(s, frontier, request, dialect);
      if (!query) continue;
      for (const row of run(query)) {
        if (seen.has(row.rid) || included.length + added.length >= maxIncluded) continue;
        seen.add(row.rid);
        added.push(row);
      }
    }
    included.push(...added);
    frontier = added;
  }
  return included;
}

/** The resources that `spec.code` references of the frontier's `spec.sourceType` rows point at. */
function includeSql(spec: IncludeSpec, frontier: ResourceRow[], request: SearchRequest, dialect: Dialect): Frag | undefined {
  const sources = frontier.filter((r) => r.type === spec.sourceType).map((r) => r.rid);
  const param = searchParam(spec.sourceType, spec.code);
  if (sources.length === 0 || !param) return undefined;
  const targetTypes = spec.targetType ? [spec.targetType] : [...param.targets];
  const parts: Frag[] = [
    join([
      frag(
        `t.rid IN (SELECT t2.rid FROM search_reference c${dialect.byRid('search_reference')} JOIN resources t2 ON t2.type = c.target_type AND t2.id = c.target_id` +
          ' WHERE c.rid IN (',
      ),
      dialect.rids(sources),
      frag(`) AND c.pid = ?${spec.targetType ? ' AND c.target_type = ?' : ''})`, paramKey(param.base, spec.code), ...(spec.targetType ? [spec.targetType] : [])),
    ], ''),
    frag('t.deleted = 0'),
    ...constraintsSql(request.constraints, targetTypes, 't', dialect),
  ];
  return join([frag(`SELECT ${columns('t', dialect)} FROM resources t JOIN resource_versions v ON v.seq = t.seq WHERE `), and(parts), frag(' LIMIT ?', maxIncluded)], '');
}

/** The `spec.sourceType` resources whose `spec.code` references point at a frontier row (a fixed join: by each target, through the index). */
function revIncludeSql(spec: IncludeSpec, frontier: ResourceRow[], request: SearchRequest, dialect: Dialect): Frag | undefined {
  const targets = frontier.filter((r) => !spec.targetType || r.type === spec.targetType).map((r): [string, string] => [r.type, r.id]);
  const param = searchParam(spec.sourceType, spec.code);
  if (targets.length === 0 || !param) return undefined;
  const parts: Frag[] = [
    join([
      frag('s.rid IN (SELECT c.rid FROM '),
      dialect.pairs(targets),
      frag(` ${dialect.fixedJoin} search_reference c ON c.pid = ? AND c.target_id = j.id AND c.target_type = j.type)`, paramKey(param.base, spec.code)),
    ], ''),
    frag('s.type = ?', spec.sourceType),
    frag('s.deleted = 0'),
    ...constraintsSql(request.constraints, [spec.sourceType], 's', dialect),
  ];
  return join([frag(`SELECT ${columns('s', dialect)} FROM resources s JOIN resource_versions v ON v.seq = s.seq WHERE `), and(parts), frag(' LIMIT ?', maxIncluded)], '');
}

