import type { StoreReader, StoreWriter, StoredResource } from '../store/store.ts';
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

/**
 * Before searching for what a conditional create or update would otherwise create: two such
 * requests with the same criteria, on any nodes, then run one after the other, and the second
 * finds what the first created (one resource, not two). Criteria are compared as sorted pairs.
 */
export async function lockCriteria(tx: StoreWriter, resourceType: string, criteria: string): Promise<void> {
  if (!tx.lock) return;
  const pairs = [...new URLSearchParams(criteria)].map(([k, v]) => `${k}=${v}`).sort();
  await tx.lock(`conditional:${resourceType}?${pairs.join('&')}`);
}

/** `Patient?identifier=...` in a reference or an If-None-Exist header: type and criteria. */
export function splitConditional(value: string): { resourceType: string; criteria: string } | undefined {
  const m = /^([A-Z][A-Za-z]+)\?(.+)$/.exec(value);
  return m ? { resourceType: m[1], criteria: m[2] } : undefined;
}
