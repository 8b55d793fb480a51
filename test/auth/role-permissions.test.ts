import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { call, patient } from '../rest/server.ts';
import { useIssuerServer } from './external-issuer.ts';
import { compileRolePermissions } from '../../src/access/role-permissions.ts';

/** Role permissions: with broad user/ scopes, the role's table still decides. */
const t = useIssuerServer();
const ref: Record<string, string> = {};
const clinician = { fhirUser: 'Practitioner/p1' };

describe('role permissions', () => {
  before(async () => {
    const seed = await t.auth('system');
    const create = async (body: Record<string, unknown>) => {
      const r = await call(`${t.base}/${body.resourceType}`, { method: 'POST', headers: seed, json: body });
      assert.equal(r.status, 201, r.text);
      return `${body.resourceType}/${r.body.id}`;
    };
    // The clinicians below are Practitioner/p1, this patient's GP (the relationship rule).
    ref.patient = await create(patient('Rolepatient', { generalPractitioner: [{ reference: 'Practitioner/p1' }] }));
    ref.obs = await create({ resourceType: 'Observation', status: 'final', code: { text: 'role-obs' }, subject: { reference: ref.patient } });
    ref.claim = await create({ resourceType: 'Claim', status: 'active', use: 'claim', type: { text: 't' }, patient: { reference: ref.patient }, created: '2026-01-01', provider: { display: 'x' }, priority: { text: 'normal' }, insurance: [{ sequence: 1, focal: true, coverage: { display: 'c' } }] });
    ref.org = await create({ resourceType: 'Organization', name: 'Role Clinic' });
  });

  test('billing reads claims and demographics, not clinical data', async () => {
    const billing = await t.auth('billing');
    assert.equal((await call(`${t.base}/${ref.claim}`, { headers: billing })).status, 200);
    assert.equal((await call(`${t.base}/${ref.patient}`, { headers: billing })).status, 200);
    assert.equal((await call(`${t.base}/${ref.obs}`, { headers: billing })).status, 403);
    assert.equal((await call(`${t.base}/Observation?code:text=role`, { headers: billing })).status, 403);
    const withObs = await call(`${t.base}/Patient?_id=${ref.patient.split('/')[1]}&_revinclude=Observation:subject`, { headers: billing });
    assert.deepEqual(withObs.body.entry.map((e: { resource: { resourceType: string } }) => e.resource.resourceType), ['Patient'], 'no Observation comes along');
  });

  test('physicians write orders; nurses may not', async () => {
    const order = { resourceType: 'MedicationRequest', status: 'active', intent: 'order', subject: { reference: ref.patient }, medicationCodeableConcept: { text: 'aspirin' } };
    assert.equal((await call(`${t.base}/MedicationRequest`, { method: 'POST', headers: await t.auth('physician', undefined, clinician), json: order })).status, 201);
    assert.equal((await call(`${t.base}/MedicationRequest`, { method: 'POST', headers: await t.auth('nurse', undefined, clinician), json: order })).status, 403);
    assert.equal((await call(`${t.base}/Observation`, { method: 'POST', headers: await t.auth('nurse', undefined, clinician), json: { resourceType: 'Observation', status: 'final', code: { text: 'bp' }, subject: { reference: ref.patient } } })).status, 201);
  });

  test('admins manage organisations, not clinical notes; lab technicians lab data, not conditions', async () => {
    const admin = await t.auth('admin');
    assert.equal((await call(`${t.base}/${ref.org}`, { headers: admin })).status, 200);
    assert.equal((await call(`${t.base}/${ref.obs}`, { headers: admin })).status, 403);
    const lab = await t.auth('lab-technician', undefined, clinician);
    assert.equal((await call(`${t.base}/${ref.obs}`, { headers: lab })).status, 200);
    assert.equal((await call(`${t.base}/Condition`, { headers: lab })).status, 403);
  });

  test('the table is data: unknown letters are refused, groups expand, * covers all', () => {
    const table = compileRolePermissions({ groups: { g: ['Observation', 'Condition'] }, roles: { a: { g: 'rs', Patient: 'c' }, b: { '*': 'r' } } });
    assert.ok(table.permits('a', 'Condition', 's'));
    assert.ok(!table.permits('a', 'Condition', 'c'));
    assert.ok(table.permits('a', 'Patient', 'c'));
    assert.ok(table.permits('b', 'Claim', 'r'));
    assert.ok(!table.permits('b', 'Claim', 's'));
    assert.ok(!table.permits('nobody', 'Patient', 'r'));
    assert.deepEqual(table.readableTypes('a')?.sort(), ['Condition', 'Observation']);
    assert.throws(() => compileRolePermissions({ groups: {}, roles: { a: { Patient: 'rx' } } }));
  });
});
