import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { call, patient, useServer } from './server.ts';

const t = useServer();

const observation = (subject: string, code: string, extra: Record<string, unknown> = {}) => ({
  resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code }] }, subject: { reference: subject }, ...extra,
});
const ids = (bundle: { entry?: { resource: { resourceType: string; id: string } }[] }) =>
  (bundle.entry ?? []).map((e) => `${e.resource.resourceType}/${e.resource.id}`).sort();

describe('compartment search (http.html#vsearch)', () => {
  const ref: Record<string, string> = {};
  before(async () => {
    const create = async (body: unknown) => {
      const r = await call(`${t.base}/${(body as { resourceType: string }).resourceType}`, { method: 'POST', json: body });
      assert.equal(r.status, 201, r.text);
      return `${r.body.resourceType}/${r.body.id}`;
    };
    ref.alice = await create(patient('Compalice'));
    ref.bob = await create(patient('Compbob'));
    ref.practitioner = await create({ resourceType: 'Practitioner', name: [{ family: 'Who' }] });
    ref.aliceHr = await create(observation(ref.alice, '8867-4'));
    ref.aliceWeight = await create(observation(ref.alice, '29463-7'));
    ref.bobHr = await create(observation(ref.bob, '8867-4'));
    // In Bob's compartment by performer, not subject.
    ref.performedByBob = await create(observation(ref.alice, '8310-5', { performer: [{ reference: ref.bob }] }));
    // Refers to Alice, but not by a parameter of the Patient compartment's rule for Observation.
    ref.focusAlice = await create(observation(ref.practitioner, '8310-5', { focus: [{ reference: ref.alice }] }));
    ref.aliceCondition = await create({ resourceType: 'Condition', subject: { reference: ref.alice }, code: { text: 'x' } });
  });

  test('Patient/[id]/Observation: the observations in her compartment, nobody else\'s', async () => {
    const r = await call(`${t.base}/${ref.alice}/Observation`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.type, 'searchset');
    assert.deepEqual(ids(r.body), [ref.aliceHr, ref.aliceWeight, ref.performedByBob].sort());
    const bob = await call(`${t.base}/${ref.bob}/Observation?_total=accurate`);
    assert.deepEqual(ids(bob.body), [ref.bobHr, ref.performedByBob].sort(), 'performer is a membership parameter too');
    assert.equal(bob.body.total, 2);
  });

  test('parameters narrow the compartment; the self link keeps the compartment path', async () => {
    const r = await call(`${t.base}/${ref.alice}/Observation?code=http://loinc.org|8867-4`);
    assert.deepEqual(ids(r.body), [ref.aliceHr]);
    const self = r.body.link.find((l: { relation: string }) => l.relation === 'self').url;
    assert.ok(self.startsWith(`${t.base}/${ref.alice}/Observation?`), self);
    const post = await call(`${t.base}/${ref.alice}/Observation/_search`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'code=http://loinc.org|8867-4',
    });
    assert.deepEqual(ids(post.body), [ref.aliceHr]);
  });

  test('Patient/[id]/*: every type in the compartment, the patient included', async () => {
    const r = await call(`${t.base}/${ref.alice}/*`);
    assert.equal(r.status, 200, r.text);
    // With the Provenance the server recorded of alice's creation (its target is alice).
    const provenance = ids(r.body).filter((x) => x.startsWith('Provenance/'));
    assert.equal(provenance.length, 1);
    assert.deepEqual(ids(r.body).filter((x) => !provenance.includes(x)), [ref.alice, ref.aliceHr, ref.aliceWeight, ref.performedByBob, ref.aliceCondition].sort());
    const narrowed = await call(`${t.base}/${ref.alice}/*?_type=Condition`);
    assert.deepEqual(ids(narrowed.body), [ref.aliceCondition]);
  });

  test('a type that is never in the compartment yields an empty searchset', async () => {
    const r = await call(`${t.base}/${ref.alice}/Practitioner`);
    assert.equal(r.status, 200);
    assert.deepEqual(ids(r.body), []);
  });

  test('an unknown patient has an empty compartment; unsupported compartments and bad methods are refused', async () => {
    assert.deepEqual(ids((await call(`${t.base}/Patient/nobody/Observation`)).body), []);
    const practitioner = await call(`${t.base}/${ref.practitioner}/Observation`);
    assert.equal(practitioner.status, 400);
    assert.equal(practitioner.body.resourceType, 'OperationOutcome');
    assert.equal((await call(`${t.base}/${ref.alice}/Observation`, { method: 'DELETE' })).status, 405);
    assert.equal((await call(`${t.base}/${ref.alice}/NotAType`)).status, 404);
  });
});
