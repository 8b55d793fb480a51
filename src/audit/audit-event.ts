import { actionOf } from '../access/interaction.ts';
import type { AuditRecordFacts } from './audit-record.ts';

const systemObject = { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '2', display: 'System Object' };
const queryRole = { system: 'http://terminology.hl7.org/CodeSystem/object-role', code: '24', display: 'Query' };

/**
 * The FHIR AuditEvent (DICOM/HL7 codes) of one stored audit record. It names resources by
 * reference and never copies clinical content; the query travels base64-encoded, as R4 defines.
 */
export function renderAuditEvent(facts: AuditRecordFacts, id?: string): Record<string, unknown> {
  if (facts.do === 'authn') return renderAuthEvent(facts, id);
  const entity: Record<string, unknown>[] = (facts.what ?? []).map((reference) => ({ what: { reference }, type: systemObject }));
  if (facts.op) entity.push({ type: systemObject, detail: [{ type: 'operation', valueString: `$${facts.op}` }] });
  if (facts.q) entity.push({ type: systemObject, role: queryRole, query: Buffer.from(facts.q).toString('base64') });
  if (facts.fl) entity.push({ type: systemObject, detail: facts.fl.map((f) => ({ type: 'access-flag', valueString: f })) });
  if (facts.rs) entity.push({ type: systemObject, detail: facts.rs.map((r) => ({ type: 'access-decision', valueString: r })) });
  for (const checked of facts.cs ?? []) {
    const [reference, result] = checked.split(' ');
    entity.push({ what: { reference }, type: systemObject, detail: [{ type: 'consent-decision', valueString: result }] });
  }
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

const dcm = 'http://dicom.nema.org/resources/ontology/DCM';

/** A sign-in, second factor, lockout, approval or token event: DICOM "User Authentication" (110114). */
function renderAuthEvent(facts: AuditRecordFacts, id?: string): Record<string, unknown> {
  const logout = facts.ev === 'logout';
  const agent: Record<string, unknown>[] = [{ who: { identifier: { value: facts.who } }, requestor: true, network: { address: facts.ip, type: '2' } }];
  if (facts.app) agent.push({ who: { identifier: { value: facts.app } }, requestor: false, type: { coding: [{ system: dcm, code: '110150', display: 'Application' }] } });
  return {
    resourceType: 'AuditEvent',
    ...(id ? { id } : {}),
    type: { system: dcm, code: '110114', display: 'User Authentication' },
    subtype: [logout ? { system: dcm, code: '110123', display: 'Logout' } : { system: dcm, code: '110122', display: 'Login' }],
    action: 'E',
    recorded: facts.at,
    outcome: outcomeCode(facts.st),
    ...(facts.why ? { outcomeDesc: facts.why } : {}),
    agent,
    source: { observer: { display: 'Bastion' }, type: [{ system: 'http://terminology.hl7.org/CodeSystem/security-source-type', code: '4' }] },
    entity: [{ type: systemObject, detail: [{ type: 'event', valueString: facts.ev ?? 'login' }] }],
  };
}

/** 0 success, 4 minor failure (the client's), 8 serious failure (the server's). */
function outcomeCode(status: number): string {
  if (status < 400) return '0';
  if (status < 500) return '4';
  return '8';
}
