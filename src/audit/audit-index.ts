import type { AuditRecordFacts } from './audit-record.ts';

/**
 * The keys an audit record is found by (the audit file's audit_key table, written with the record):
 * the patients it concerns (`p|id`), who acted (`a|` the user or client id, and their fhirUser),
 * the application (`a|` too: it is an agent of the event) and the resources touched (`e|Type/id`,
 * Patients excepted: `p|` finds those). Searching the trail narrows by one of these and then tests
 * every criterion on the records themselves (audit/audit-search.ts), so a key only has to find a
 * superset.
 */
export function indexKeysOf(facts: AuditRecordFacts): string[] {
  const keys = new Set<string>();
  keys.add(`a|${facts.who}`);
  if (facts.fu) keys.add(`a|${facts.fu}`);
  if (facts.app) keys.add(`a|${facts.app}`);
  for (const id of facts.pt ?? []) keys.add(`p|${id}`);
  for (const w of facts.what ?? []) {
    const versionless = entityOf(w);
    if (versionless.startsWith('Patient/')) keys.add(`p|${versionless.slice('Patient/'.length)}`);
    else keys.add(`e|${versionless}`);
  }
  return [...keys];
}

/** `Observation/5/_history/2` -> `Observation/5`. */
export function entityOf(reference: string): string {
  const at = reference.indexOf('/_history/');
  return at < 0 ? reference : reference.slice(0, at);
}
