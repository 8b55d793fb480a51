import type { StoredResource } from '../store/store.ts';
import { badRequest } from '../fhir/outcome.ts';

export function etag(versionId: string): string {
  return `W/"${versionId}"`;
}

/** The version an If-Match / If-None-Match header names: `W/"3"`, `"3"` or (leniently) `3`. */
export function versionFromEtag(value: string, header: string): string {
  const m = /^(?:W\/)?"?([A-Za-z0-9\-.]{1,64})"?$/.exec(value.trim());
  if (!m) throw badRequest(`${header} must be an ETag such as W/"1" (got ${JSON.stringify(value)})`);
  return m[1];
}

export function versionHeaders(baseUrl: string, stored: StoredResource): Record<string, string> {
  return {
    etag: etag(stored.versionId),
    'last-modified': httpDate(stored.lastUpdated),
    location: `${baseUrl}/${stored.resourceType}/${stored.id}/_history/${stored.versionId}`,
  };
}

/** ETag and Last-Modified of a version, as a read returns them (no Location). */
export function readHeaders(stored: StoredResource): Record<string, string> {
  return { etag: etag(stored.versionId), 'last-modified': httpDate(stored.lastUpdated) };
}

/** RFC 9110 date of a FHIR instant. */
function httpDate(instant: string): string {
  return new Date(instant).toUTCString();
}

export type ReturnPreference = 'minimal' | 'representation' | 'OperationOutcome';

/** `Prefer: return=...` (RFC 7240 as FHIR uses it); representation when absent or unknown. */
export function returnPreference(prefer: string | undefined): ReturnPreference {
  const m = prefer && /(?:^|[;,\s])return\s*=\s*"?(minimal|representation|OperationOutcome)"?/i.exec(prefer);
  if (!m) return 'representation';
  const v = m[1].toLowerCase();
  return v === 'minimal' ? 'minimal' : v === 'operationoutcome' ? 'OperationOutcome' : 'representation';
}

export function lenientHandling(prefer: string | undefined): boolean {
  return !!prefer && /(?:^|[;,\s])handling\s*=\s*"?lenient"?/i.test(prefer);
}
