import type { Config } from '../config/config.ts';
import type { StoredResource } from '../store/store.ts';
import type { FhirResponse } from './context.ts';
import type { ReturnPreference } from './headers.ts';
import { versionHeaders } from './headers.ts';
import { issue, operationOutcome } from '../fhir/outcome.ts';

/** The response to a write, shaped by `Prefer: return=` (http.html#ops). */
export function writeResponse(config: Config, status: number, stored: StoredResource, prefer: ReturnPreference, message: string): FhirResponse {
  const headers = versionHeaders(config.baseUrl, stored);
  const entities = [`${stored.resourceType}/${stored.id}/_history/${stored.versionId}`];
  if (prefer === 'minimal') return { status, headers, entities };
  if (prefer === 'OperationOutcome') {
    return { status, headers, entities, resource: operationOutcome([issue('information', 'informational', message)]) };
  }
  return { status, headers, entities, json: stored.json };
}
