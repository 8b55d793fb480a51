import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { call } from '../rest/server.ts';
import { useIssuerServer } from '../auth/external-issuer.ts';
import { seeder } from '../auth/seeder.ts';

/** Researchers get the Safe Harbor de-identified view, end to end: reads, cohort searches, counts, includes. */
describe('de-identified view (researcher)', () => {
  const t = useIssuerServer();
  const ids: Record<string, string> = {};
  let researcher: Record<string, string>;
  const person = {
    resourceType: 'Patient', gender: 'female', birthDate: '1961-07-14',
    name: [{ family: 'Deidfamily', given: ['Rosalind'] }], identifier: [{ system: 'http://hl7.org/fhir/sid/us-ssn', value: '999-12-3456' }],
    telecom: [{ system: 'phone', value: '555-867-5309' }], address: [{ line: ['12 Hidden Lane'], city: 'Smalltown', state: 'MA', postalCode: '02139' }],
  };
  before(async () => {
    const seeded = await seeder(t);
    const create = async (name: string, body: Record<string, unknown>) => {
      await seeded.create(name, body);
      ids[name] = seeded.ids[name];
    };
    await create('p', person);
    for (const [n, code] of [['o1', 'deid-a'], ['o2', 'deid-a'], ['o3', 'deid-b']]) {
      await create(n, { resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code }] }, subject: { reference: `Patient/${ids.p}`, display: 'Rosalind Deidfamily' }, effectiveDateTime: '2020-03-04T10:11:12Z' });
    }
    await create('v', { resourceType: 'Observation', status: 'final', meta: { security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'V' }] }, code: { coding: [{ system: 'http://loinc.org', code: 'deid-a' }] }, subject: { reference: `Patient/${ids.p}` } });
    await create('spec', { resourceType: 'Specimen', accessionIdentifier: { system: 'urn:lab', value: 'ACC-4711' }, subject: { reference: `Patient/${ids.p}` } });
    researcher = await t.auth('researcher', 'user/*.rs');
  });
  const get = (path: string) => call(`${t.base}/${path}`, { headers: researcher });
  const leaks = (text: string) => ['Deidfamily', 'Rosalind', '999-12-3456', '555-867-5309', 'Hidden Lane', 'Smalltown', '1961-07-14', '02139', ids.p, '2020-03-04'].filter((s) => text.includes(s));

  test('a cohort search returns de-identified records under pseudonyms', async () => {
    const r = await get('Observation?code=http://loinc.org|deid-a&_include=Observation:subject');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(leaks(r.text), []);
    const matches = r.body.entry.filter((e: { search: { mode: string } }) => e.search.mode === 'match');
    assert.equal(matches.length, 2, 'two visible; the V-labelled one is above the researcher\'s clearance');
    const patient = r.body.entry.find((e: { resource: { resourceType: string } }) => e.resource.resourceType === 'Patient').resource;
    assert.notEqual(patient.id, ids.p);
    assert.equal(patient.birthDate, '1961');
    assert.deepEqual(patient.address, [{ state: 'MA', postalCode: '021' }]);
    for (const m of matches) {
      assert.equal(m.resource.subject.reference, `Patient/${patient.id}`, 'references are rewritten consistently');
      assert.equal(m.resource.effectiveDateTime, '2020');
      assert.ok(m.resource.meta.security.some((c: { code: string }) => c.code === 'PSEUDED'));
      assert.equal(m.fullUrl, `${t.base}/Observation/${m.resource.id}`);
    }
    assert.ok(!r.body.link.some((l: { url: string }) => l.url.includes(ids.p)));
  });

  test('reads and searches by pseudonym; real ids are unknown', async () => {
    const search = await get('Patient?gender=female&birthdate=1961');
    const pseudonym = search.body.entry.find((e: { resource: { gender: string } }) => e.resource.gender === 'female').resource.id;
    const read = await get(`Patient/${pseudonym}`);
    assert.equal(read.status, 200, read.text);
    assert.deepEqual(leaks(read.text), []);
    assert.equal(read.headers.get('etag'), null, 'no version');
    assert.equal(read.headers.get('last-modified'), null, 'no exact time');
    assert.equal((await get(`Patient/${ids.p}`)).status, 404);
    const obs = await get(`Observation?subject=Patient/${pseudonym}&_total=accurate`);
    assert.equal(obs.body.total, 3);
    assert.ok(obs.body.link[0].url.includes(pseudonym), 'the self link speaks in pseudonyms');
    const missing = await get('Patient/xAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
    assert.equal(missing.status, 404);
  });

  test('cohort counts work on the same view', async () => {
    const count = await get('Observation?code=http://loinc.org|deid-a&_summary=count');
    assert.equal(count.status, 200);
    assert.equal(count.body.total, 2);
  });

  test('searches that would probe what the view hides are refused', async () => {
    for (const q of ['Patient?name=Deidfamily', 'Patient?birthdate=1961-07-14', 'Patient?identifier=999-12-3456', 'Patient?address-city=Smalltown', 'Observation?subject.name=Deidfamily', 'Patient?_sort=birthdate']) {
      const r = await get(q);
      assert.equal(r.status, 403, `${q}: ${r.text}`);
      assert.equal(r.body.resourceType, 'OperationOutcome');
    }
  });

  test('identifiers under any name are removed, and cannot be searched', async () => {
    const r = await get(`Specimen?_count=10`);
    assert.equal(r.status, 200, r.text);
    assert.ok(!r.text.includes('ACC-4711'), r.text);
    assert.equal((await get('Specimen?accession=ACC-4711')).status, 403);
  });

  test('only reads and type searches are served on the view', async () => {
    const search = await get('Patient?gender=female&birthdate=1961');
    const pseudonym = search.body.entry[0].resource.id;
    assert.equal((await get(`Patient/${pseudonym}/_history`)).status, 403);
    assert.equal((await get(`Patient/${pseudonym}/Observation`)).status, 403);
    assert.equal((await call(`${t.base}/Observation`, { method: 'POST', headers: researcher, json: { resourceType: 'Observation', status: 'final', code: { text: 'x' } } })).status, 403);
  });
});
