import type { StoreReader, StoredResource } from '../store/store.ts';
import type { Config } from '../config/config.ts';
import { parseSearch } from '../fhir/search/parse.ts';
import { badRequest } from '../fhir/outcome.ts';
import { resolveTerminology } from './search-terminology.ts';

/**
 * The resources a conditional create/update/delete or a conditional reference selects. Only
 * whether there are 0, 1 or several matters, so at most two are fetched.
 */
export async function findMatches(reader: StoreReader, config: Config, resourceType: string, criteria: string, terminology: StoreReader = reader): Promise<StoredResource[]> {
  const params = [...new URLSearchParams(criteria)];
  if (params.length === 0) throw badRequest(`The conditional criteria for ${resourceType} are empty`);
  const { request } = parseSearch(resourceType, params, { maxCount: config.search.maxCount, defaultCount: 2, lenient: false });
  request.count = 2;
  request.offset = 0;
  request.total = 'none';
  await resolveTerminology(request, terminology);
  const result = await reader.search(request);
  return result.matches;
}

/** `Patient?identifier=...` in a reference or an If-None-Exist header: type and criteria. */
export function splitConditional(value: string): { resourceType: string; criteria: string } | undefined {
  const m = /^([A-Z][A-Za-z]+)\?(.+)$/.exec(value);
  return m ? { resourceType: m[1], criteria: m[2] } : undefined;
}
