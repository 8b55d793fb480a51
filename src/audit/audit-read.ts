import type { StoredAuditRecord } from '../store/store.ts';
import type { AuditRecordFacts } from './audit-record.ts';
import { renderAuditEvent } from './audit-event.ts';

/** A stored audit record as the FHIR AuditEvent it stands for; its id is its position in the log. */
export function auditEventOf(record: StoredAuditRecord): Record<string, unknown> {
  return renderAuditEvent(JSON.parse(record.json) as AuditRecordFacts, String(record.seq));
}
