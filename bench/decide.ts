/**
 * `node bench/decide.ts`: the cost of one access decision (src/access/decide.ts), per kind of
 * principal, as the median and p99 of many calls in a tight loop (after a warm-up). The issue's
 * target: median < 50 µs.
 */
import { decide } from '../src/access/decide.ts';
import { parseScopes } from '../src/access/smart-scopes.ts';
import type { Principal } from '../src/auth/principal.ts';
import type { Interaction } from '../src/access/interaction.ts';

const withScopes = (p: Omit<Principal, 'resourceScopes'>): Principal => ({ ...p, resourceScopes: parseScopes(p.scopes.join(' ')).resource });
const cases: [string, Principal, Interaction][] = [
  ['backend service, system/*.rs, read', withScopes({ kind: 'client', id: 'svc', clientId: 'svc', role: 'system', scopes: ['system/*.rs'], address: '10.0.0.1' }), { kind: 'read', resourceType: 'Patient', id: 'p1' }],
  ['patient app, patient/*.rs, search', withScopes({ kind: 'user', id: 'u1', role: 'patient', scopes: ['launch/patient', 'patient/*.rs'], patient: 'p1', address: '10.0.0.1' }), { kind: 'search-type', resourceType: 'Observation' }],
  ['physician, user/*.cruds, read', withScopes({ kind: 'user', id: 'd1', role: 'physician', scopes: ['user/*.cruds'], fhirUser: 'Practitioner/d1', address: '10.0.0.1' }), { kind: 'read', resourceType: 'Observation', id: 'o1' }],
  ['nurse, granular scopes, search', withScopes({ kind: 'user', id: 'n1', role: 'nurse', scopes: ['user/Observation.rs?category=laboratory', 'user/Patient.rs'], fhirUser: 'Practitioner/n1', address: '10.0.0.1', breakGlass: ['p9'] }), { kind: 'search-type', resourceType: 'Observation' }],
];

const rounds = Number(process.env.BENCH_DECIDE_ROUNDS ?? 200_000);
console.log(`decide(): ${rounds.toLocaleString('en-US')} calls per case after a warm-up (node ${process.version})`);
for (const [label, principal, interaction] of cases) {
  for (let i = 0; i < 20_000; i++) decide(principal, interaction);
  const samples = new Float64Array(1000);
  const per = Math.floor(rounds / samples.length);
  for (let s = 0; s < samples.length; s++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < per; i++) decide(principal, interaction);
    samples[s] = Number(process.hrtime.bigint() - t0) / per / 1000;
  }
  samples.sort();
  const p50 = samples[Math.floor(samples.length / 2)];
  const p99 = samples[Math.floor(samples.length * 0.99)];
  console.log(`  ${label.padEnd(40)} median ${p50.toFixed(2)} µs  p99 ${p99.toFixed(2)} µs  (target median < 50 µs: ${p50 < 50 ? 'met' : 'MISSED'})`);
}
