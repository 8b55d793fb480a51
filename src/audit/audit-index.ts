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

/**
 * A key as the index stores it: 52 bits of FNV-1a over its UTF-16 code units (a safe integer).
 * Two keys sharing a hash only make a search test a few more records.
 */
export function keyHash(key: string): number {
  // Two 32-bit FNV-1a lanes with different offsets, combined into 52 bits.
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 13);
  }
  return (a >>> 0) * 0x100000 + ((b >>> 0) & 0xfffff);
}
