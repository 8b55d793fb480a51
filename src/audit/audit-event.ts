import { actionOf } from '../access/interaction.ts';
import type { AuditRecordFacts } from './audit-record.ts';

const systemObject = { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '2', display: 'System Object' };
const queryRole = { system: 'http://terminology.hl7.org/CodeSystem/object-role', code: '24', display: 'Query' };

/**
 * The FHIR AuditEvent (DICOM/HL7 codes) of one stored audit record. It names resources by
 * reference and never copies clinical content; the query travels base64-encoded, as R4 defines.
 */
export function renderAuditEvent(facts: AuditRecordFacts, id?: string): Record<string, unknown> {
  const entity: Record<string, unknown>[] = (facts.what ?? []).map((reference) => ({ what: { reference }, type: systemObject }));
  if (facts.op) entity.push({ type: systemObject, detail: [{ type: 'operation', valueString: `$${facts.op}` }] });
  if (facts.q) entity.push({ type: systemObject, role: queryRole, query: Buffer.from(facts.q).toString('base64') });
  const outcome = outcomeCode(facts.st);
  return {
    resourceType: 'AuditEvent',
    ...(id ? { id } : {}),
    type: { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest', display: 'RESTful Operation' },
    subtype: [{ system: 'http://hl7.org/fhir/restful-interaction', code: facts.do }],
    action: actionOf(facts.do),
    recorded: facts.at,
    outcome: facts.why && outcome === '0' ? '4' : outcome,
    ...(facts.why ? { outcomeDesc: facts.why } : {}),
    agent: [
      {
        who: { identifier: { value: facts.who } },
        requestor: true,
        network: { address: facts.ip, type: '2' },
      },
    ],
    source: { observer: { display: 'Bastion' }, type: [{ system: 'http://terminology.hl7.org/CodeSystem/security-source-type', code: '4' }] },
    ...(entity.length > 0 ? { entity } : {}),
  };
}

/** 0 success, 4 minor failure (the client's), 8 serious failure (the server's). */
function outcomeCode(status: number): string {
  if (status < 400) return '0';
  if (status < 500) return '4';
  return '8';
}
