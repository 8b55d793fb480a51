import type { FhirRequest, FhirResponse, RestContext } from './context.ts';
import type { StoredResource } from '../store/store.ts';
import type { SearchRequest } from '../fhir/search/types.ts';
import { parseSearch } from '../fhir/search/parse.ts';
import { serializeBundle, type RawEntry } from '../fhir/bundle.ts';
import { FhirError, badRequest } from '../fhir/outcome.ts';
import { compartmentMemberTypes, isKnownCompartment } from '../fhir/compartments.ts';
import { compartmentConstraint } from '../fhir/search/compartment.ts';
import { lenientHandling } from './headers.ts';
import { shapeFrom, shapeJson } from './result-shape.ts';
import { resolveTerminology } from './search-terminology.ts';

/** search on one type (http.html#search), by GET or by POST to _search with a form body. */
export function searchType(ctx: RestContext, req: FhirRequest, resourceType: string): Promise<FhirResponse> {
  return search(ctx, req, resourceType, resourceType);
}

/** search across all types (optionally narrowed by `_type`). */
export function searchSystem(ctx: RestContext, req: FhirRequest): Promise<FhirResponse> {
  return search(ctx, req, undefined, '');
}

/**
 * search within a compartment (http.html#vsearch): `Patient/123/Observation?...`, or every type
 * that can be in it with `Patient/123/*`. The compartment is a constraint in the same query, so
 * counts and paging cover exactly its members.
 */
export function searchCompartment(ctx: RestContext, req: FhirRequest, compartmentType: string, id: string, resourceType: string | undefined): Promise<FhirResponse> {
  if (!isKnownCompartment(compartmentType)) {
    throw new FhirError(400, `Compartment searches are supported for the Patient compartment; ${compartmentType} is not one this server defines`, 'not-supported');
  }
  const types = resourceType ? [resourceType] : compartmentMemberTypes(compartmentType);
  const path = `${compartmentType}/${id}/${resourceType ?? '*'}`;
  return search(ctx, req, resourceType, path, (request) => {
    if (!resourceType) {
      // `*`: the types that can be members, narrowed by `_type` when given.
      request.resourceTypes = request.resourceTypes.length > 0 ? request.resourceTypes.filter((t) => types.includes(t)) : types;
    }
    (request.constraints ??= []).push(compartmentConstraint(compartmentType, id, request.resourceTypes));
  });
}

export async function search(
  ctx: RestContext, req: FhirRequest, resourceType: string | undefined, path: string, constrain?: (request: SearchRequest) => void,
): Promise<FhirResponse> {
  const params = [...req.query, ...formParams(req)];
  const { request, ignored, resultParams } = parseSearch(resourceType, params, {
    maxCount: ctx.config.search.maxCount,
    defaultCount: ctx.config.search.defaultCount,
    lenient: lenientHandling(req.prefer),
    baseUrl: ctx.config.baseUrl,
  });
  constrain?.(request);
  await resolveTerminology(request, ctx.terminology);
  const shape = shapeFrom(resultParams);
  if (shape.summary === 'count') {
    request.count = 0;
    request.total = 'accurate';
  }
  const result = await ctx.reader.search(request);
  const base = ctx.config.baseUrl;
  // Paging links carry the store's continuation tokens: positions in the sort order, so they stay
  // right while resources are created and deleted between one page and the next.
  const used = params.filter(([name]) => !ignored.includes(name) && name !== '_offset' && name !== '_cursor');
  const link = (at: { cursor?: string; offset?: number }) => {
    const p = new URLSearchParams(used);
    p.set('_count', String(request.count));
    if (at.cursor) p.set('_cursor', at.cursor);
    else if (at.offset) p.set('_offset', String(at.offset));
    return `${base}${path ? '/' + path : ''}?${p}`;
  };
  const links = [{ relation: 'self', url: link({ cursor: request.cursor, offset: request.offset }) }];
  if (result.next) links.push({ relation: 'next', url: link({ cursor: result.next }) });
  if (result.previous) links.push({ relation: 'previous', url: link({ cursor: result.previous }) });
  const entry = (r: StoredResource, mode: 'match' | 'include'): RawEntry => ({
    fullUrl: `${base}/${r.resourceType}/${r.id}`,
    resourceJson: shapeJson(r.json!, shape),
    rest: { search: { mode } },
  });
  const json = serializeBundle(
    { resourceType: 'Bundle', type: 'searchset', ...(result.total !== undefined ? { total: result.total } : {}), link: links },
    [...result.matches.map((r) => entry(r, 'match')), ...result.included.map((r) => entry(r, 'include'))],
  );
  const entities = [...result.matches, ...result.included].map((r) => `${r.resourceType}/${r.id}`);
  return { status: 200, headers: {}, json, entities };
}

/** POST _search carries its parameters as application/x-www-form-urlencoded. */
export function formParams(req: FhirRequest): [string, string][] {
  if (req.method !== 'POST') return [];
  if (req.body === undefined || req.body === '') return [];
  if (typeof req.body !== 'string') throw badRequest('POST _search takes its parameters as application/x-www-form-urlencoded');
  return [...new URLSearchParams(req.body)];
}
