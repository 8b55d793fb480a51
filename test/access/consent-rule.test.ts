import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { consentObligation, consentObligationFor, consentPolicy, holds, unenforceableConsent, type ConsentPolicy } from '../../src/access/consent.ts';
import type { Principal } from '../../src/auth/principal.ts';

/** The Consent rule as a pure function: which part of a record each consent withholds from whom. */
const scope = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] };
const rt = (code: string) => ({ system: 'http://hl7.org/fhir/resource-types', code });
const psy = 'http://terminology.hl7.org/CodeSystem/v3-ActCode|PSY';
const actor = (reference: string) => ({ reference: { reference } });

function policy(provision: Record<string, unknown>, extra: Record<string, unknown> = {}): ConsentPolicy {
  const p = consentPolicy({ resourceType: 'Consent', id: 'c1', status: 'active', scope, patient: { reference: 'Patient/p1' }, provision, ...extra });
  assert.ok(p);
  return p;
}

const doc = (fhirUser = 'Practitioner/d1', role = 'physician'): Principal => ({ kind: 'user', id: 'u', role: role as Principal['role'], scopes: [], fhirUser, address: '127.0.0.1' });
const now = Date.parse('2026-06-01T00:00:00Z');

/** Whether a resource of p1 of this type and labels is withheld from `who`. */
function withheld(p: ConsentPolicy, who: Principal, type: string, labels: string[] = []): boolean {
  const o = consentObligation([p], who, now);
  return o.rules.some((r) => r.patient === 'p1' && holds(r.withheld, type, labels));
}

describe('consent rule', () => {
  test('only active patient-privacy consents with a patient are policies', () => {
    assert.equal(consentPolicy({ resourceType: 'Consent', id: 'x', status: 'inactive', scope, patient: { reference: 'Patient/p1' } }), undefined);
    assert.equal(consentPolicy({ resourceType: 'Consent', id: 'x', status: 'active', scope: { coding: [{ code: 'treatment' }] }, patient: { reference: 'Patient/p1' } }), undefined);
    assert.equal(consentPolicy({ resourceType: 'Consent', id: 'x', status: 'active', scope }), undefined);
  });

  test('nested provisions are exceptions to the one above, to any depth', () => {
    const p = policy({ type: 'permit', provision: [{ type: 'deny', class: [rt('Observation')], provision: [{ type: 'permit', securityLabel: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'PSY' }] }] }] });
    assert.equal(withheld(p, doc(), 'Patient'), false);
    assert.equal(withheld(p, doc(), 'Observation'), true);
    assert.equal(withheld(p, doc(), 'Observation', [psy]), false, 'the innermost permit wins where it applies');
  });

  test('a denial among sibling provisions wins', () => {
    const p = policy({ type: 'deny', provision: [{ type: 'permit', actor: [actor('Practitioner/d1')] }, { type: 'deny', class: [rt('Observation')] }] });
    assert.equal(withheld(p, doc(), 'Condition'), false);
    assert.equal(withheld(p, doc(), 'Observation'), true);
    assert.equal(withheld(p, doc('Practitioner/d2'), 'Condition'), true, 'the base denies who is not named');
  });

  test('the policy rule gives the base when the root has no type', () => {
    const optOut = policy({}, { policyRule: { coding: [{ code: 'OPTOUT' }] } });
    assert.equal(withheld(optOut, doc(), 'Observation'), true);
    const optIn = policy({}, { policyRule: { coding: [{ code: 'OPTIN' }] } });
    assert.equal(withheld(optIn, doc(), 'Observation'), false);
  });

  test('purpose of use follows the role', () => {
    const p = policy({ type: 'permit', provision: [{ type: 'deny', purpose: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'HRESCH' }] }] });
    assert.equal(withheld(p, doc(), 'Observation'), false);
    assert.equal(withheld(p, doc('Practitioner/r', 'researcher'), 'Observation'), true);
  });

  test('conditions it cannot evaluate: a deny applies anyway, a permit never', () => {
    const deny = policy({ type: 'permit', provision: [{ type: 'deny', code: [{ coding: [{ code: 'x' }] }] }] });
    assert.equal(withheld(deny, doc(), 'Observation'), true);
    const permit = policy({ type: 'deny', provision: [{ type: 'permit', actor: [actor('Practitioner/d1')], data: [{ meaning: 'instance', reference: { reference: 'Observation/1' } }] }] });
    assert.equal(withheld(permit, doc(), 'Observation'), true);
  });

  test('the consents themselves are never withheld, the patient is not subject, nor break-the-glass', () => {
    const p = policy({ type: 'deny' });
    assert.equal(withheld(p, doc(), 'Consent'), false);
    assert.equal(consentObligation([p], { ...doc(), role: 'patient', patient: 'p1' }, now).rules.length, 0);
    assert.equal(consentObligation([p], { ...doc(), breakGlass: ['p1'] }, now).rules.length, 0);
  });

  test('a provision applies within its period only, and a remembered result expires at the boundary', () => {
    const p = policy({ type: 'permit', provision: [{ type: 'deny', period: { start: '2026-06-01T00:00:01Z' } }] });
    assert.equal(consentObligationFor([p], doc(), now).rules.length, 0);
    const policies = [p];
    assert.equal(consentObligationFor(policies, doc(), now).rules.length, 0);
    assert.equal(consentObligationFor(policies, doc(), now + 2000).rules.length, 1, 'not the result remembered from before the start');
  });

  test('a root permit with conditions the rule cannot read keeps its nested denials', () => {
    const p = policy({ type: 'permit', action: [{ coding: [{ code: 'access' }] }], provision: [{ type: 'deny', actor: [actor('Practitioner/d1')] }] });
    assert.equal(withheld(p, doc(), 'Observation'), true);
    assert.equal(withheld(p, doc('Practitioner/d2'), 'Observation'), false);
  });

  test('actors it cannot tell the principal from: a permit for them opens nothing, a denial of them applies to all', () => {
    const byIdentifier = policy({ type: 'deny', provision: [{ type: 'permit', actor: [{ reference: { identifier: { system: 'http://hl7.org/fhir/sid/us-npi', value: '123' } } }] }] });
    assert.equal(withheld(byIdentifier, doc(), 'Observation'), true);
    const organisation = policy({ type: 'permit', provision: [{ type: 'deny', actor: [actor('Organization/o1')] }] });
    assert.equal(withheld(organisation, doc(), 'Observation'), true);
    const versioned = policy({ type: 'permit', provision: [{ type: 'deny', actor: [actor('https://ehr.example/fhir/Practitioner/d1/_history/3')] }] });
    assert.equal(withheld(versioned, doc(), 'Observation'), true, 'an absolute, versioned reference names the same practitioner');
    assert.equal(withheld(versioned, doc('Practitioner/d2'), 'Observation'), false);
  });

  test('labels and purposes given without a system match the code in any system', () => {
    const p = policy({ type: 'permit', provision: [{ type: 'deny', securityLabel: [{ code: 'PSY' }] }, { type: 'deny', purpose: [{ code: 'HPAYMT' }] }] });
    assert.equal(withheld(p, doc(), 'Observation', [psy]), true);
    assert.equal(withheld(p, doc(), 'Observation'), false);
    assert.equal(withheld(p, doc('Practitioner/b', 'billing'), 'Observation'), true);
  });

  test('a token that states purpose BTG opens no BTG exception (only a granted break-the-glass does)', () => {
    const p = policy({ type: 'deny', provision: [{ type: 'permit', purpose: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'BTG' }] }] });
    assert.equal(withheld(p, { ...doc(), purposeOfUse: ['http://terminology.hl7.org/CodeSystem/v3-ActReason|BTG'] }, 'Observation'), true);
  });

  test('a versioned patient reference is that patient; nesting beyond what is evaluated withholds everything', () => {
    const p = consentPolicy({ resourceType: 'Consent', id: 'c2', status: 'active', scope, patient: { reference: 'Patient/p1/_history/4' }, provision: { type: 'permit' } });
    assert.equal(p?.patient, 'p1');
    let deep: Record<string, unknown> = { type: 'permit' };
    for (let i = 0; i < 12; i++) deep = { type: i % 2 ? 'permit' : 'deny', provision: [deep] };
    const overflow = policy(deep);
    assert.equal(overflow.overflow, true);
    assert.equal(withheld(overflow, doc(), 'Patient'), true);
    assert.equal(withheld(overflow, doc(), 'Consent'), false);
    assert.match(unenforceableConsent({ resourceType: 'Consent', status: 'active', scope, provision: deep, patient: { reference: 'Patient/p1' } }) ?? '', /nested/);
    assert.match(unenforceableConsent({ resourceType: 'Consent', status: 'active', scope, patient: { identifier: { value: 'MRN-1' } } }) ?? '', /reference its patient/);
  });
});
