import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { call, patient, useServer } from './server.ts';

const t = useServer();
const cs = 'urn:test:terminology:shapes';

const ids = (r: { body: { entry?: { resource: { id: string } }[] } }) => (r.body.entry ?? []).map((e) => e.resource.id).sort();

describe('token :in, :not-in, :below, :above', () => {
  const obs: Record<string, string> = {};
  let vsId = '';
  let female = '';
  let male = '';

  before(async () => {
    // Shape > Polygon > Triangle; Shape > Circle (by the `parent` property); Colour stands alone.
    await call(`${t.base}/CodeSystem`, { method: 'POST', json: {
      resourceType: 'CodeSystem', url: cs, status: 'active', content: 'complete', hierarchyMeaning: 'is-a',
      concept: [
        { code: 'shape', concept: [{ code: 'polygon', concept: [{ code: 'triangle' }] }] },
        { code: 'circle', property: [{ code: 'parent', valueCode: 'shape' }] },
        { code: 'colour' },
      ],
    } });
    const vs = await call(`${t.base}/ValueSet`, { method: 'POST', json: {
      resourceType: 'ValueSet', url: 'urn:test:vs:polygons', status: 'active',
      compose: { include: [{ system: cs, filter: [{ property: 'concept', op: 'is-a', value: 'polygon' }] }] },
    } });
    vsId = vs.body.id;
    await call(`${t.base}/ValueSet`, { method: 'POST', json: {
      resourceType: 'ValueSet', url: 'urn:test:vs:polygons-and-colour', status: 'active',
      compose: { include: [{ valueSet: ['urn:test:vs:polygons'] }, { system: cs, concept: [{ code: 'colour' }] }] },
    } });
    const f = await call(`${t.base}/Patient`, { method: 'POST', json: patient('Termfemale') });
    const m = await call(`${t.base}/Patient`, { method: 'POST', json: patient('Termmale', { gender: 'male' }) });
    female = f.body.id;
    male = m.body.id;
    for (const code of ['shape', 'polygon', 'triangle', 'circle', 'colour']) {
      const r = await call(`${t.base}/Observation`, { method: 'POST', json: {
        resourceType: 'Observation', status: 'final', code: { coding: [{ system: cs, code }] },
        subject: { reference: `Patient/${code === 'triangle' ? male : female}` },
      } });
      obs[code] = r.body.id;
    }
  });

  const expect = (...codes: string[]) => codes.map((c) => obs[c]).sort();

  test(':below follows nested concepts and parent properties; :above climbs', async () => {
    assert.deepEqual(ids(await call(`${t.base}/Observation?code:below=${cs}|shape`)), expect('shape', 'polygon', 'triangle', 'circle'));
    assert.deepEqual(ids(await call(`${t.base}/Observation?code:below=${cs}|polygon`)), expect('polygon', 'triangle'));
    assert.deepEqual(ids(await call(`${t.base}/Observation?code:above=${cs}|triangle`)), expect('shape', 'polygon', 'triangle'));
    assert.deepEqual(ids(await call(`${t.base}/Observation?code:below=${cs}|colour,${cs}|triangle`)), expect('colour', 'triangle'));
  });

  test(':in expands stored value sets (filters, nested value sets, ValueSet/<id>); :not-in is the complement', async () => {
    assert.deepEqual(ids(await call(`${t.base}/Observation?code:in=urn:test:vs:polygons`)), expect('polygon', 'triangle'));
    assert.deepEqual(ids(await call(`${t.base}/Observation?code:in=ValueSet/${vsId}`)), expect('polygon', 'triangle'));
    assert.deepEqual(ids(await call(`${t.base}/Observation?code:in=urn:test:vs:polygons-and-colour`)), expect('polygon', 'triangle', 'colour'));
    assert.deepEqual(ids(await call(`${t.base}/Observation?code:not-in=urn:test:vs:polygons-and-colour&code=${cs}|`)), expect('shape', 'circle'));
  });

  test('R4 value sets expand from the definitions, for code-typed elements too; inside chains and _has', async () => {
    const all = ids(await call(`${t.base}/Patient?gender:in=http://hl7.org/fhir/ValueSet/administrative-gender&family=termfemale,termmale`));
    assert.deepEqual(all, [female, male].sort());
    const viaChain = ids(await call(`${t.base}/Observation?subject:Patient.gender:in=http://hl7.org/fhir/ValueSet/administrative-gender&code:below=${cs}|polygon`));
    assert.deepEqual(viaChain, expect('polygon', 'triangle'));
    const viaHas = ids(await call(`${t.base}/Patient?_has:Observation:subject:code:in=urn:test:vs:polygons&family=termfemale,termmale`));
    assert.deepEqual(viaHas, [female, male].sort());
    const notIn = ids(await call(`${t.base}/Patient?_has:Observation:subject:code:below=${cs}|triangle&family=termfemale,termmale`));
    assert.deepEqual(notIn, [male]);
  });

  test('what cannot be expanded completely is refused with an OperationOutcome, never guessed', async () => {
    for (const q of [
      'Observation?code:in=urn:test:vs:nowhere',
      'Observation?code:in=ValueSet/nosuchvalueset',
      'Observation?code:in=not a url',
      // SNOMED CT is not held here: the value set cannot be expanded.
      'Condition?code:in=http://hl7.org/fhir/ValueSet/condition-code',
      `Observation?code:below=urn:test:terminology:unknown|x`,
      'Observation?code:below=polygon',
      'Observation?code:above=http://loinc.org|8867-4',
    ]) {
      const r = await call(`${t.base}/${q}`);
      assert.equal(r.status, 400, q);
      assert.equal(r.body.resourceType, 'OperationOutcome', q);
    }
  });

  test('a value set stored here takes precedence over the published one with the same URL', async () => {
    await call(`${t.base}/ValueSet`, { method: 'POST', json: {
      resourceType: 'ValueSet', url: 'http://hl7.org/fhir/ValueSet/administrative-gender', status: 'active',
      compose: { include: [{ system: 'http://hl7.org/fhir/administrative-gender', concept: [{ code: 'male' }] }] },
    } });
    const r = await call(`${t.base}/Patient?gender:in=http://hl7.org/fhir/ValueSet/administrative-gender&family=termfemale,termmale`);
    assert.deepEqual(ids(r), [male]);
  });
});
