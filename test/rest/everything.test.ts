import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { call, patient } from './server.ts';
import { useIssuerServer } from '../auth/external-issuer.ts';
import { seeder } from '../auth/seeder.ts';

/** Patient/[id]/$everything: the record, paged, under every access rule. */
describe('Patient/$everything', () => {
  const t = useIssuerServer();
  const ids: Record<string, string> = {};
  let system: Record<string, string>;
  before(async () => {
    system = await t.auth('system');
    const seeded = await seeder(t);
    const create = async (name: string, body: Record<string, unknown>) => {
      await seeded.create(name, body);
      ids[name] = seeded.ids[name];
    };
    await create('doc', { resourceType: 'Practitioner', name: [{ family: 'Everydoc' }] });
    await create('p', patient('Everyone', { generalPractitioner: [{ reference: 'Practitioner/ev-d1' }] }));
    await create('other', patient('Everyother'));
    await create('o2019', { resourceType: 'Observation', status: 'final', code: { text: 'ev' }, subject: { reference: `Patient/${ids.p}` }, effectiveDateTime: '2019-05-01', performer: [{ reference: `Practitioner/${ids.doc}` }] });
    await create('o2023', { resourceType: 'Observation', status: 'final', code: { text: 'ev' }, subject: { reference: `Patient/${ids.p}` }, effectiveDateTime: '2023-05-01' });
    await create('v', { resourceType: 'Observation', status: 'final', meta: { security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'V' }] }, code: { text: 'ev' }, subject: { reference: `Patient/${ids.p}` } });
    await create('cond', { resourceType: 'Condition', subject: { reference: `Patient/${ids.p}` }, code: { text: 'ev' } });
    await create('otherObs', { resourceType: 'Observation', status: 'final', code: { text: 'ev' }, subject: { reference: `Patient/${ids.other}` } });
  });
  type Entries = { entry?: { resource: { resourceType: string; id: string }; search: { mode: string } }[] };
  // The Provenance the server recorded of the Patient's creation is in the compartment too (target: the Patient); set aside here.
  const refs = (body: Entries) => (body.entry ?? []).map((e) => `${e.resource.resourceType}/${e.resource.id}`).filter((r) => !r.startsWith('Provenance/')).sort();
  const matches = (body: Entries) => refs({ entry: (body.entry ?? []).filter((e) => e.search.mode === 'match') });

  test('returns the patient, their compartment and what it refers to, nothing of anyone else', async () => {
    const r = await call(`${t.base}/Patient/${ids.p}/$everything`, { headers: system });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.type, 'searchset');
    assert.deepEqual(refs(r.body), [`Condition/${ids.cond}`, `Observation/${ids.o2019}`, `Observation/${ids.o2023}`, `Observation/${ids.v}`, `Patient/${ids.p}`, `Practitioner/${ids.doc}`].sort());
  });

  test('_type, _since, start/end and _count narrow and page it', async () => {
    const typed = await call(`${t.base}/Patient/${ids.p}/$everything?_type=Condition`, { headers: system });
    assert.deepEqual(matches(typed.body), [`Condition/${ids.cond}`]);
    assert.deepEqual(refs(typed.body), [`Condition/${ids.cond}`, `Patient/${ids.p}`], 'with what it refers to');
    const dated = await call(`${t.base}/Patient/${ids.p}/$everything?_type=Observation&start=2020-01-01&end=2024-12-31`, { headers: system });
    assert.deepEqual(matches(dated.body), [`Observation/${ids.o2023}`]);
    const since = await call(`${t.base}/Patient/${ids.p}/$everything?_since=2100-01-01`, { headers: system });
    assert.deepEqual(refs(since.body), []);
    const page = await call(`${t.base}/Patient/${ids.p}/$everything?_count=2&_total=accurate`, { headers: system });
    assert.equal(page.body.total, 6, 'five records and the Provenance of the Patient\'s creation');
    const next = page.body.link.find((l: { relation: string }) => l.relation === 'next');
    assert.match(next.url, new RegExp(`/Patient/${ids.p}/\\$everything\\?`));
    const page2 = await call(next.url, { headers: system });
    assert.equal(page2.status, 200);
    assert.equal(page2.body.entry.filter((e: { search: { mode: string } }) => e.search.mode === 'match').length, 2);
    assert.equal((await call(`${t.base}/Patient/${ids.p}/$everything?start=yesterday`, { headers: system })).status, 400);
  });

  test('every access rule holds: relationship, labels, the patient compartment', async () => {
    const doc = await t.auth('physician', 'user/*.rs', { fhirUser: 'Practitioner/ev-d1' });
    const mine = await call(`${t.base}/Patient/${ids.p}/$everything`, { headers: doc });
    assert.equal(mine.status, 200, mine.text);
    assert.ok(!refs(mine.body).includes(`Observation/${ids.v}`), 'V is above a physician\'s clearance');
    assert.ok(refs(mine.body).includes(`Observation/${ids.o2019}`));
    assert.equal((await call(`${t.base}/Patient/${ids.other}/$everything`, { headers: doc })).status, 404, 'an unrelated patient is not known');
    const self = await t.auth('patient', 'patient/*.rs', { patient: ids.p, fhirUser: `Patient/${ids.p}` });
    assert.equal((await call(`${t.base}/Patient/${ids.p}/$everything`, { headers: self })).status, 200);
    assert.equal((await call(`${t.base}/Patient/${ids.other}/$everything`, { headers: self })).status, 404);
    assert.equal((await call(`${t.base}/Patient/${ids.p}/$everything`, { method: 'POST', headers: system, json: {} })).status, 405);
  });
});
