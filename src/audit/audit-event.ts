import { actionOf } from '../access/interaction.ts';
import { purposeOfRole } from '../access/consent.ts';
import type { AuditRecordFacts } from './audit-record.ts';

const systemObject = { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '2', display: 'System Object' };
const personObject = { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '1', display: 'Person' };
const patientRole = { system: 'http://terminology.hl7.org/CodeSystem/object-role', code: '1', display: 'Patient' };
const searches = new Set(['search-type', 'search-system', 'history-instance', 'history-type', 'history-system']);
const queryRole = { system: 'http://terminology.hl7.org/CodeSystem/object-role', code: '24', display: 'Query' };

/**
 * The FHIR AuditEvent (DICOM/HL7 codes) of one stored audit record. It names resources by
 * reference and never copies clinical content; the query travels base64-encoded, as R4 defines.
 */
export function renderAuditEvent(facts: AuditRecordFacts, id?: string): Record<string, unknown> {
  if (facts.do === 'authn') return renderAuthEvent(facts, id);
  const entity: Record<string, unknown>[] = (facts.what ?? []).map((reference) => ({ what: { reference }, type: systemObject }));
  if (facts.op) entity.push({ type: systemObject, detail: [{ type: 'operation', valueString: `$${facts.op}` }] });
  if (facts.q || searches.has(facts.do)) {
    // The query, and how many resources it returned (matches and included ones).
    const count = searches.has(facts.do) && facts.st < 400 ? [{ type: 'result-count', valueString: String(facts.what?.length ?? 0) }] : [];
    entity.push({ type: systemObject, role: queryRole, ...(facts.q ? { query: Buffer.from(facts.q).toString('base64') } : {}), ...(count.length ? { detail: count } : {}) });
  }
  if (facts.fl) entity.push({ type: systemObject, detail: facts.fl.map((f) => ({ type: 'access-flag', valueString: f })) });
  if (facts.rs) entity.push({ type: systemObject, detail: facts.rs.map((r) => ({ type: 'access-decision', valueString: r })) });
  for (const id of facts.pt ?? []) {
    const reference = `Patient/${id}`;
    if (facts.what?.some((w) => w === reference || w.startsWith(`${reference}/`))) continue;
    entity.push({ what: { reference }, type: personObject, role: patientRole });
  }
  for (const checked of facts.cs ?? []) {
    const [reference, result] = checked.split(' ');
    entity.push({ what: { reference }, type: systemObject, detail: [{ type: 'consent-decision', valueString: result }] });
  }
  return {
    ...header(facts, id),
    ...(entity.length > 0 ? { entity } : {}),
  };
}

/** What every AuditEvent states the same way: type, subtype, action, time, outcome, agents, source. */
function header(facts: AuditRecordFacts, id: string | undefined): Record<string, unknown> {
  return {
    resourceType: 'AuditEvent',
    ...(id ? { id } : {}),
    type: eventTypeOf(facts),
    subtype: subtypesOf(facts),
    action: actionOfRecord(facts),
    recorded: facts.at,
    outcome: outcomeOf(facts),
    ...(facts.why ? { outcomeDesc: facts.why } : {}),
    agent: agentsOf(facts),
    source: facts.node ? { site: facts.node, ...source } : source,
  };
}

const source = { observer: { display: 'Bastion' }, type: [{ system: 'http://terminology.hl7.org/CodeSystem/security-source-type', code: '4', display: 'Application Server' }] };
const restType = { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest', display: 'RESTful Operation' };
const authnType = { system: 'http://dicom.nema.org/resources/ontology/DCM', code: '110114', display: 'User Authentication' };

export function eventTypeOf(facts: AuditRecordFacts): { system: string; code: string; display: string } {
  if (facts.do !== 'authn') return restType;
  return facts.ev && alertTypes[facts.ev] ? securityAlert : authnType;
}

/** The FHIR interaction; for authorization server events, the DICOM subtype (Login, Logout, the alert's type) and the event itself. */
export function subtypesOf(facts: AuditRecordFacts): { system: string; code: string; display?: string }[] {
  if (facts.do !== 'authn') return [{ system: 'http://hl7.org/fhir/restful-interaction', code: facts.do }];
  const alert = facts.ev ? alertTypes[facts.ev] : undefined;
  const dicom = alert ? { system: dcm, ...alert } : signedOut.has(facts.ev ?? '') ? { system: dcm, code: '110123', display: 'Logout' } : { system: dcm, code: '110122', display: 'Login' };
  return [dicom, { system: authEventSystem, code: facts.ev ?? 'login' }];
}

/** Bastion's own codes for its authorization server events (auth/auth-events.ts AuthEventKind). */
export const authEventSystem = 'urn:bastion:auth-event';

export function actionOfRecord(facts: AuditRecordFacts): 'C' | 'R' | 'U' | 'D' | 'E' {
  return facts.do === 'authn' ? 'E' : actionOf(facts.do);
}

/** 0 success, 4 minor failure (the client's, or an entry whose transaction was rolled back), 8 serious failure (the server's). */
export function outcomeOf(facts: AuditRecordFacts): '0' | '4' | '8' {
  if (facts.st >= 500) return '8';
  // An interaction's `why` says it was not applied (its transaction rolled back); an auth event's is detail.
  if (facts.st >= 400 || (facts.why && facts.do !== 'authn')) return '4';
  return '0';
}

const dcm = 'http://dicom.nema.org/resources/ontology/DCM';

/**
 * An authorization server event: a sign-in, second factor, lockout, approval or token event is
 * DICOM "User Authentication" (110114); break-the-glass and administrative changes are "Security
 * Alert" (110113). Break-the-glass is marked high severity (R4's AuditEvent has no severity).
 */
function renderAuthEvent(facts: AuditRecordFacts, id?: string): Record<string, unknown> {
  const detail = [{ type: 'event', valueString: facts.ev ?? 'login' }];
  if (facts.ev?.startsWith('break-glass')) detail.push({ type: 'severity', valueString: 'high' });
  const entity: Record<string, unknown>[] = [{ type: systemObject, detail }];
  for (const p of facts.pt ?? []) entity.push({ what: { reference: `Patient/${p}` }, type: personObject, role: patientRole });
  return { ...header(facts, id), entity };
}

const securityAlert = { system: dcm, code: '110113', display: 'Security Alert' };
/** DICOM CID 403 security alert types of the events that are not sign-ins. */
const alertTypes: Record<string, { code: string; display: string }> = {
  'break-glass': { code: '110127', display: 'Emergency Override Started' },
  'break-glass-refused': { code: '110127', display: 'Emergency Override Started' },
  'user-created': { code: '110137', display: 'User Security Attributes Changed' },
  'password-changed': { code: '110137', display: 'User Security Attributes Changed' },
  'mfa-enrolled': { code: '110137', display: 'User Security Attributes Changed' },
  'client-registered': { code: '110129', display: 'Security Configuration' },
  'key-created': { code: '110129', display: 'Security Configuration' },
  'config-loaded': { code: '110129', display: 'Security Configuration' },
  'keys-unwrapped': { code: '110129', display: 'Security Configuration' },
  'key-rotated': { code: '110129', display: 'Security Configuration' },
  'keys-rewrapped': { code: '110129', display: 'Security Configuration' },
  'store-rekeyed': { code: '110129', display: 'Security Configuration' },
  'reencrypted': { code: '110129', display: 'Security Configuration' },
  'key-retired': { code: '110129', display: 'Security Configuration' },
  'backup': { code: '110106', display: 'Export' },
  'restore': { code: '110107', display: 'Import' },
  // The whole store copied out of the data dir into PostgreSQL.
  'migrated': { code: '110106', display: 'Export' },
};
const signedOut = new Set(['logout', 'session-expired']);

const actReason = 'http://terminology.hl7.org/CodeSystem/v3-ActReason';

/**
 * The requestor (the user as their fhirUser reference, or the client acting on its own; the id the
 * trail knows them by as altId; the role; where from; why) and the application a user acted through.
 */
function agentsOf(facts: AuditRecordFacts): Record<string, unknown>[] {
  const identifier = { value: facts.who };
  const requestor: Record<string, unknown> = {
    ...(facts.rl ? { role: [{ text: facts.rl }] } : {}),
    who: facts.fu ? { reference: facts.fu, identifier } : { identifier },
    altId: facts.who,
    requestor: true,
    network: { address: facts.ip, type: '2' },
  };
  const purposes = purposesOfRecord(facts);
  if (purposes.length > 0) requestor.purposeOfUse = purposes.map((p) => ({ coding: [p] }));
  const agents = [requestor];
  if (facts.app) agents.push({ type: { coding: [{ system: dcm, code: '110150', display: 'Application' }] }, who: { identifier: { value: facts.app } }, requestor: false });
  return agents;
}

/** Why: the purpose of use the role implies, the ones the token stated, and break-the-glass when it opened the record. */
export function purposesOfRecord(facts: AuditRecordFacts): { system: string; code: string }[] {
  const out: { system: string; code: string }[] = [];
  const add = (system: string, code: string) => {
    if (!out.some((c) => c.system === system && c.code === code)) out.push({ system, code });
  };
  const byRole = facts.rl ? purposeOfRole[facts.rl] : undefined;
  if (byRole) add(actReason, byRole);
  for (const stated of facts.pou ?? []) {
    const bar = stated.lastIndexOf('|');
    add(bar > 0 ? stated.slice(0, bar) : actReason, stated.slice(bar + 1));
  }
  if (facts.rs?.includes('break-the-glass')) add(actReason, 'BTG');
  return out;
}
