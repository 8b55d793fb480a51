/**
 * `node bench/decide.ts`: the cost of one access decision (src/access/decide.ts), per kind of
 * principal, as the median and p99 of many calls in a tight loop (after a warm-up). The issue's
 * target: median < 50 µs.
 */
import { decide } from '../src/access/decide.ts';
import { parseScopes } from '../src/access/smart-scopes.ts';
import type { Principal } from '../src/auth/principal.ts';
import type { Interaction } from '../src/access/interaction.ts';
import { consentPolicy, consentObligation, type ConsentPolicy } from '../src/access/consent.ts';

const withScopes = (p: Omit<Principal, 'resourceScopes'>): Principal => ({ ...p, resourceScopes: parseScopes(p.scopes.join(' ')).resource });
const cases: [string, Principal, Interaction, ConsentPolicy[]?][] = [
  ['backend service, system/*.rs, read', withScopes({ kind: 'client', id: 'svc', clientId: 'svc', role: 'system', scopes: ['system/*.rs'], address: '10.0.0.1' }), { kind: 'read', resourceType: 'Patient', id: 'p1' }],
  ['patient app, patient/*.rs, search', withScopes({ kind: 'user', id: 'u1', role: 'patient', scopes: ['launch/patient', 'patient/*.rs'], patient: 'p1', address: '10.0.0.1' }), { kind: 'search-type', resourceType: 'Observation' }],
  ['physician, user/*.cruds, read', withScopes({ kind: 'user', id: 'd1', role: 'physician', scopes: ['user/*.cruds'], fhirUser: 'Practitioner/d1', address: '10.0.0.1' }), { kind: 'read', resourceType: 'Observation', id: 'o1' }],
  ['nurse, granular scopes, search', withScopes({ kind: 'user', id: 'n1', role: 'nurse', scopes: ['user/Observation.rs?category=laboratory', 'user/Patient.rs'], fhirUser: 'Practitioner/n1', address: '10.0.0.1', breakGlass: ['p9'] }), { kind: 'search-type', resourceType: 'Observation' }],
];

// 10,000 active patient-privacy Consents (one per patient, some withholding a class from this
// physician, some denying everyone but another actor): the consent rule's share of a decision.
const consents: ConsentPolicy[] = [];
for (let i = 0; i < 10_000; i++) {
  const provision = i % 2 === 0
    ? { type: 'permit', provision: [{ type: 'deny', actor: [{ reference: { reference: 'Practitioner/d1' } }], class: [{ system: 'http://hl7.org/fhir/resource-types', code: 'Observation' }] }] }
    : { type: 'deny', provision: [{ type: 'permit', actor: [{ reference: { reference: `Practitioner/other-${i}` } }] }] };
  consents.push(consentPolicy({ resourceType: 'Consent', id: `c${i}`, status: 'active', scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] }, patient: { reference: `Patient/p${i}` }, provision })!);
}
cases.push(['physician, 10,000 consents, search', cases[2][1], { kind: 'search-type', resourceType: 'Observation' }, consents]);

const rounds = Number(process.env.BENCH_DECIDE_ROUNDS ?? 200_000);
console.log(`decide(): ${rounds.toLocaleString('en-US')} calls per case after a warm-up (node ${process.version})`);
for (const [label, principal, interaction, policies = []] of cases) {
  for (let i = 0; i < 20_000; i++) decide(principal, interaction, Date.now(), policies);
  const samples = new Float64Array(1000);
  const per = Math.floor(rounds / samples.length);
  for (let s = 0; s < samples.length; s++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < per; i++) decide(principal, interaction, Date.now(), policies);
    samples[s] = Number(process.hrtime.bigint() - t0) / per / 1000;
  }
  samples.sort();
  const p50 = samples[Math.floor(samples.length / 2)];
  const p99 = samples[Math.floor(samples.length * 0.99)];
  console.log(`  ${label.padEnd(40)} median ${p50.toFixed(2)} µs  p99 ${p99.toFixed(2)} µs  (target median < 50 µs: ${p50 < 50 ? 'met' : 'MISSED'})`);
}

// The consent rule without its memo: what one change of the consents costs the next request.
{
  const principal = cases[2][1];
  const t0 = process.hrtime.bigint();
  const n = 20;
  for (let i = 0; i < n; i++) consentObligation(consents, principal, Date.now());
  console.log(`  consent rule compiled afresh over ${consents.length.toLocaleString('en-US')} consents: ${(Number(process.hrtime.bigint() - t0) / n / 1e6).toFixed(2)} ms (once per commit that changes them)`);
}
