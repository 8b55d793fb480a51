import type { Resource } from '../fhir/types.ts';
import { FhirError, preconditionFailed } from '../fhir/outcome.ts';

/** What both stores know of a resource's current row when writing over it. */
interface Current {
  version: number;
  deleted: number;
}

/** If-Match: the current version must be this one (a deleted or absent resource has none). */
export function checkIfMatch(current: Current | undefined, ifMatch: string | undefined, ref: string): void {
  if (ifMatch === undefined) return;
  if (!current || current.deleted === 1) throw preconditionFailed(`${ref} does not exist, so it cannot be at version ${ifMatch}`);
  if (String(current.version) !== ifMatch) throw preconditionFailed(`${ref} is at version ${current.version}, not ${ifMatch}`);
}

/** resourceType, id and meta lead, as readers of FHIR JSON expect; the server owns versionId and lastUpdated. */
export function withVersion(resource: Resource, versionId: string, lastUpdated: string): Resource {
  const { resourceType, id, meta, ...rest } = resource;
  const { versionId: _v, lastUpdated: _l, ...otherMeta } = meta ?? {};
  return { resourceType, id, meta: { versionId, lastUpdated, ...otherMeta }, ...rest };
}

/** AuditEvent is the audit trail, kept apart: the resource store never holds one. */
export function refuseAuditEvent(type: string): void {
  if (type === 'AuditEvent') throw new FhirError(405, 'AuditEvents are the audit trail, not stored resources: the server alone appends them', 'not-supported');
}
