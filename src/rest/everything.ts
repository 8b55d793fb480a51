import type { FhirRequest, FhirResponse, RestContext } from './context.ts';
import type { SearchCriterion } from '../fhir/search/types.ts';
import { search } from './search.ts';
import { compartmentMemberTypes } from '../fhir/compartments.ts';
import { compartmentConstraint } from '../fhir/search/compartment.ts';
import { searchParam } from '../fhir/search/params.ts';
import { parseSearch } from '../fhir/search/parse.ts';
import { badRequest, notFound } from '../fhir/outcome.ts';

/**
 * Patient/[id]/$everything (patient-operation-everything): the patient, every resource in their
 * compartment and the resources those refer to, as one paged searchset. It is a compartment search
 * underneath, so every access rule (relationship, labels, consent, scopes, masks) holds for each
 * entry, its includes and its total, exactly as for `Patient/[id]/*`.
 *
 * Parameters: `_since` (changed since), `start` / `end` (care dates: applied through each type's
 * `date` parameter; types without one are not narrowed), `_type`, `_count`; result parameters
 * (`_elements`, `_summary`, `_total`) pass through.
 */
export async function everything(ctx: RestContext, req: FhirRequest, id: string): Promise<FhirResponse> {
  // A patient the caller may not see (or that does not exist) has no "everything".
  const patient = await ctx.reader.read('Patient', id);
  if (!patient || patient.deleted) throw notFound(`Patient/${id} is not known`);
  const query: [string, string][] = [];
  let start: string | undefined;
  let end: string | undefined;
  for (const [name, value] of req.query) {
    if (name === '_since') query.push(['_lastUpdated', `ge${value}`]);
    else if (name === 'start') start = value;
    else if (name === 'end') end = value;
    else query.push([name, value]);
  }
  const types = compartmentMemberTypes('Patient');
  // What the record refers to (practitioners, organisations, medications) comes along, unless the caller chose includes.
  const includeAll = !query.some(([name]) => name === '_include');
  const careDates = careDateCriteria(start, end);
  return search(ctx, { ...req, query }, undefined, `Patient/${id}/$everything`, (request) => {
    request.resourceTypes = request.resourceTypes.length > 0 ? request.resourceTypes.filter((t) => types.includes(t)) : [...types];
    if (includeAll) request.include = everyReferenceOf(request.resourceTypes);
    // Criteria, not constraints: they choose the matches; what those refer to is included wherever it lives.
    request.criteria.push({ kind: 'any-of', code: '_compartment', criteria: compartmentConstraint('Patient', id, request.resourceTypes).anyOf });
    if (careDates.length > 0) {
      const dated = request.resourceTypes.filter((t) => searchParam(t, 'date')?.type === 'date');
      const undated = request.resourceTypes.filter((t) => !dated.includes(t));
      request.criteria.push({ kind: 'any-of', code: 'date', criteria: [
        { kind: 'for-types', code: 'date', resourceTypes: dated, criterion: { kind: 'all-of', code: 'date', criteria: careDates } },
        { kind: 'for-types', code: 'date', resourceTypes: undated, criterion: { kind: 'all-of', code: 'date', criteria: [] } },
      ] });
    }
  });
}

function everyReferenceOf(types: string[]) {
  if (types.length === 0) return [];
  return parseSearch(undefined, [['_type', types.join(',')], ['_include', '*']], { maxCount: 1, defaultCount: 1, lenient: false }).request.include;
}

/** `start` and `end` as date criteria on `date` (parsed like any search value, so bad dates are 400s). */
function careDateCriteria(start: string | undefined, end: string | undefined): SearchCriterion[] {
  const params: [string, string][] = [];
  if (start !== undefined) params.push(['date', `ge${start}`]);
  if (end !== undefined) params.push(['date', `le${end}`]);
  if (params.length === 0) return [];
  try {
    return parseSearch('Observation', params, { maxCount: 1, defaultCount: 1, lenient: false }).request.criteria;
  } catch {
    throw badRequest('start and end of $everything are dates (YYYY, YYYY-MM, YYYY-MM-DD or a dateTime)');
  }
}
