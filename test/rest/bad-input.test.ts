import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { call, patient, useServer } from './server.ts';

const t = useServer({ BASTION_MAX_BODY_BYTES: '65536' });

const isOutcome = (body: any) => body?.resourceType === 'OperationOutcome' && Array.isArray(body.issue) && body.issue.length > 0;

describe('bad input gets a precise OperationOutcome and the right status, and writes nothing', () => {
  test('malformed JSON is 400', async () => {
    const r = await call(`${t.base}/Patient`, { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: '{"resourceType": "Patient",' });
    assert.equal(r.status, 400);
    assert.ok(isOutcome(r.body));
    assert.match(r.body.issue[0].diagnostics, /not valid JSON/);
  });

  test('a body that is not an object, or has no resourceType, is 400', async () => {
    assert.equal((await call(`${t.base}/Patient`, { method: 'POST', json: [1, 2] })).status, 400);
    assert.equal((await call(`${t.base}/Patient`, { method: 'POST', json: { name: [] } })).status, 400);
    assert.equal((await call(`${t.base}/Patient`, { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: '' })).status, 400);
  });

  test('a resourceType different from the URL is 400', async () => {
    const r = await call(`${t.base}/Patient`, { method: 'POST', json: { resourceType: 'Observation', status: 'final', code: { text: 'x' } } });
    assert.equal(r.status, 400);
    assert.match(r.body.issue[0].diagnostics, /Observation.*Patient/);
  });

  test('an invalid resource is 400 with issues pointing at the element', async () => {
    const r = await call(`${t.base}/Patient`, { method: 'POST', json: patient('Bad', { birthDate: '2020-02-30', unknownThing: 1 }) });
    assert.equal(r.status, 400);
    const where = r.body.issue.flatMap((i: { expression?: string[] }) => i.expression ?? []);
    assert.ok(where.includes('Patient.birthDate'), JSON.stringify(r.body));
    assert.ok(where.some((e: string) => e.includes('unknownThing')), JSON.stringify(r.body));
  });

  test('an oversized body is 413', async () => {
    const big = patient('Big', { text: { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml">${'x'.repeat(70000)}</div>` } });
    const r = await call(`${t.base}/Patient`, { method: 'POST', json: big });
    assert.equal(r.status, 413);
    assert.ok(isOutcome(r.body));
  });

  test('XML and unknown content types are 415', async () => {
    const xml = await call(`${t.base}/Patient`, { method: 'POST', headers: { 'content-type': 'application/fhir+xml' }, body: '<Patient xmlns="http://hl7.org/fhir"/>' });
    assert.equal(xml.status, 415);
    assert.ok(isOutcome(xml.body));
    assert.equal((await call(`${t.base}/Patient`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hi' })).status, 415);
  });

  test('formats that are not served are 406: _format=xml, Accept xml only', async () => {
    const c = await call(`${t.base}/Patient`, { method: 'POST', json: patient('Fmt') });
    const url = `${t.base}/Patient/${c.body.id}`;
    assert.equal((await call(`${url}?_format=xml`)).status, 406);
    assert.equal((await call(url, { headers: { accept: 'application/fhir+xml' } })).status, 406);
    assert.equal((await call(`${url}?_format=json`)).status, 200);
    const asJson = await call(url, { headers: { accept: 'application/json' } });
    assert.match(asJson.headers.get('content-type')!, /^application\/json/);
    assert.equal((await call(url, { headers: { accept: 'text/html, */*;q=0.8' } })).status, 200);
  });

  test('unknown search parameters are 400, or ignored with Prefer: handling=lenient', async () => {
    const strict = await call(`${t.base}/Patient?nonsense=1`);
    assert.equal(strict.status, 400);
    assert.match(strict.body.issue[0].diagnostics, /nonsense/);
    const lenient = await call(`${t.base}/Patient?nonsense=1&gender=female`, { headers: { prefer: 'handling=lenient' } });
    assert.equal(lenient.status, 200);
    const self = lenient.body.link.find((l: { relation: string }) => l.relation === 'self').url;
    assert.ok(!self.includes('nonsense'), 'the self link shows what was actually used');
  });

  test('unknown paths are 404, disallowed methods 405, unsupported operations 400', async () => {
    assert.equal((await call(`${t.base.replace('/fhir', '')}/nothing`)).status, 404);
    assert.equal((await call(`${t.base}/Patient/x/y/z/w`)).status, 404);
    assert.equal((await call(`${t.base}/metadata`, { method: 'DELETE' })).status, 405);
    assert.equal((await call(`${t.base}/Patient/_history`, { method: 'POST', json: {} })).status, 405);
    assert.equal((await call(`${t.base}/Patient/$nope`, { method: 'POST', json: {} })).status, 400);
  });

  test('no request reaches a 500: an assortment of odd requests', async () => {
    const odd: [string, RequestInit][] = [
      [`${t.base}/Patient/%E0%A4%A`, {}],
      [`${t.base}/Patient?_count=abc`, {}],
      [`${t.base}/Patient?birthdate=notadate`, {}],
      [`${t.base}/Patient?_sort=nonsense`, {}],
      [`${t.base}/Patient/x`, { method: 'PUT', headers: { 'content-type': 'application/fhir+json' }, body: 'null' }],
      [`${t.base}/Patient/x`, { method: 'PATCH', headers: { 'content-type': 'application/json-patch+json' }, body: '{"op":"add"}' }],
      [`${t.base}`, { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: '{"resourceType":"Bundle","type":"document"}' }],
      [`${t.base}`, { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: '{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"FOO","url":"x"}}]}' }],
      [`${t.base}`, { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: '{"resourceType":"Bundle","type":"transaction","entry":{}}' }],
      [`${t.base}/Patient/$validate`, { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: '"x"' }],
    ];
    for (const [url, init] of odd) {
      const r = await call(url, init);
      assert.ok(r.status >= 400 && r.status < 500, `${init.method ?? 'GET'} ${url} -> ${r.status} ${r.text}`);
      assert.ok(isOutcome(r.body), `${url}: ${r.text}`);
    }
  });
});

describe('result parameters', () => {
  test('_summary=true, _elements and _pretty on read', async () => {
    const c = await call(`${t.base}/Patient`, { method: 'POST', json: patient('Sum', { text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">x</div>' }, maritalStatus: { text: 'M' } }) });
    const url = `${t.base}/Patient/${c.body.id}`;
    const s = await call(`${url}?_summary=true`);
    assert.equal(s.body.text, undefined);
    assert.equal(s.body.maritalStatus, undefined, 'maritalStatus is not a summary element');
    assert.deepEqual(s.body.name, c.body.name);
    assert.ok(s.body.meta.tag.some((tag: { code: string }) => tag.code === 'SUBSETTED'));
    const e = await call(`${url}?_elements=gender`);
    assert.equal(e.body.gender, 'female');
    assert.equal(e.body.name, undefined);
    assert.equal(e.body.id, c.body.id);
    const d = await call(`${url}?_summary=data`);
    assert.equal(d.body.text, undefined);
    assert.ok(d.body.maritalStatus);
    const p = await call(`${url}?_pretty=true`);
    assert.match(p.text, /\n {2}"resourceType"/);
    assert.equal((await call(`${url}?_summary=bogus`)).status, 400);
  });
});

describe('capabilities and $validate', () => {
  test('metadata is a CapabilityStatement for R4 listing every type and its search parameters', async () => {
    const r = await call(`${t.base}/metadata`);
    assert.equal(r.status, 200);
    assert.equal(r.body.resourceType, 'CapabilityStatement');
    assert.equal(r.body.fhirVersion, '4.0.1');
    const types = r.body.rest[0].resource.map((x: { type: string }) => x.type);
    assert.ok(types.length >= 140);
    assert.ok(types.includes('Patient') && types.includes('Observation'));
    const p = r.body.rest[0].resource.find((x: { type: string }) => x.type === 'Patient');
    assert.ok(p.searchParam.some((s: { name: string }) => s.name === 'name'));
    assert.ok(p.interaction.some((i: { code: string }) => i.code === 'vread'));
  });

  test('$validate reports issues without storing anything', async () => {
    const ok = await call(`${t.base}/Patient/$validate`, { method: 'POST', json: patient('V') });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.issue[0].severity, 'information');
    const bad = await call(`${t.base}/Patient/$validate`, { method: 'POST', json: { resourceType: 'Parameters', parameter: [{ name: 'resource', resource: patient('V', { gender: 'x' }) }] } });
    assert.equal(bad.status, 200);
    assert.equal(bad.body.issue[0].severity, 'error');
    assert.deepEqual(bad.body.issue[0].expression, ['Patient.gender']);
    const search = await call(`${t.base}/Patient?family=V&_total=accurate`);
    assert.equal(search.body.total, 0);
  });
});
