import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { call, patient, useServer } from './server.ts';
import { syntheaBundles } from '../shared-data.ts';

const t = useServer();
const post = (bundle: unknown) => call(t.base, { method: 'POST', json: bundle });

describe('transaction', () => {
  test('urn:uuid references are rewritten to the ids the server assigns', async () => {
    const r = await post({
      resourceType: 'Bundle', type: 'transaction', entry: [
        { fullUrl: 'urn:uuid:11111111-1111-4111-8111-111111111111', resource: { resourceType: 'Observation', status: 'final', code: { text: 'hr' }, subject: { reference: 'urn:uuid:22222222-2222-4222-8222-222222222222' } }, request: { method: 'POST', url: 'Observation' } },
        { fullUrl: 'urn:uuid:22222222-2222-4222-8222-222222222222', resource: patient('Tx'), request: { method: 'POST', url: 'Patient' } },
      ],
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.type, 'transaction-response');
    assert.equal(r.body.entry.length, 2);
    assert.match(r.body.entry[0].response.status, /^201/);
    const obs = r.body.entry[0].resource;
    const pat = r.body.entry[1].resource;
    assert.equal(obs.subject.reference, `Patient/${pat.id}`);
    assert.equal((await call(`${t.base}/${obs.subject.reference}`)).status, 200);
    assert.ok(r.body.entry[0].response.location.includes(`/Observation/${obs.id}/_history/1`));
  });

  test('all or nothing: one invalid entry leaves no trace of the others', async () => {
    const r = await post({
      resourceType: 'Bundle', type: 'transaction', entry: [
        { resource: patient('AtomicA', { identifier: [{ system: 'urn:atomic', value: 'a' }] }), request: { method: 'POST', url: 'Patient' } },
        { resource: { resourceType: 'Patient', gender: 'invalid-code' }, request: { method: 'POST', url: 'Patient' } },
      ],
    });
    assert.equal(r.status, 400);
    assert.equal(r.body.resourceType, 'OperationOutcome');
    assert.match(r.body.issue[0].diagnostics, /entry 1/);
    const s = await call(`${t.base}/Patient?identifier=urn:atomic|a&_total=accurate`);
    assert.equal(s.body.total, 0);
  });

  test('a version conflict inside a transaction rolls back everything (412)', async () => {
    await call(`${t.base}/Patient/txv`, { method: 'PUT', json: { ...patient('V'), id: 'txv' } });
    const r = await post({
      resourceType: 'Bundle', type: 'transaction', entry: [
        { resource: patient('Rollback', { identifier: [{ system: 'urn:atomic', value: 'b' }] }), request: { method: 'POST', url: 'Patient' } },
        { resource: { ...patient('V2'), id: 'txv' }, request: { method: 'PUT', url: 'Patient/txv', ifMatch: 'W/"5"' } },
      ],
    });
    assert.equal(r.status, 412);
    assert.equal((await call(`${t.base}/Patient?identifier=urn:atomic|b&_total=accurate`)).body.total, 0);
    assert.equal((await call(`${t.base}/Patient/txv`)).body.meta.versionId, '1');
  });

  test('processing order: DELETE before POST before PUT before GET, responses in request order', async () => {
    await call(`${t.base}/Patient/ord1`, { method: 'PUT', json: { ...patient('Ord'), id: 'ord1' } });
    const r = await post({
      resourceType: 'Bundle', type: 'transaction', entry: [
        { request: { method: 'GET', url: 'Patient/ord2' } },
        { resource: { ...patient('Ord2'), id: 'ord2' }, request: { method: 'PUT', url: 'Patient/ord2' } },
        { request: { method: 'DELETE', url: 'Patient/ord1' } },
      ],
    });
    assert.equal(r.status, 200, r.text);
    assert.match(r.body.entry[0].response.status, /^200/);
    assert.equal(r.body.entry[0].resource.id, 'ord2', 'the GET ran after the PUT');
    assert.match(r.body.entry[1].response.status, /^201/);
    assert.equal((await call(`${t.base}/Patient/ord1`)).status, 410);
  });

  test('conditional references resolve to the single match; none or several fail the transaction', async () => {
    await call(`${t.base}/Practitioner`, { method: 'POST', json: { resourceType: 'Practitioner', identifier: [{ system: 'http://hl7.org/fhir/sid/us-npi', value: '111' }] } });
    const ok = await post({
      resourceType: 'Bundle', type: 'transaction', entry: [
        { resource: patient('CR', { generalPractitioner: [{ reference: 'Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|111' }] }), request: { method: 'POST', url: 'Patient' } },
      ],
    });
    assert.equal(ok.status, 200, ok.text);
    assert.match(ok.body.entry[0].resource.generalPractitioner[0].reference, /^Practitioner\/[\w-]+$/);
    const none = await post({
      resourceType: 'Bundle', type: 'transaction', entry: [
        { resource: patient('CR2', { generalPractitioner: [{ reference: 'Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|999' }] }), request: { method: 'POST', url: 'Patient' } },
      ],
    });
    assert.equal(none.status, 404);
  });

  test('conditional create inside a transaction reuses the existing resource for references', async () => {
    const existing = await call(`${t.base}/Patient`, { method: 'POST', json: patient('Existing', { identifier: [{ system: 'urn:cc', value: 'e1' }] }) });
    const r = await post({
      resourceType: 'Bundle', type: 'transaction', entry: [
        { fullUrl: 'urn:uuid:33333333-3333-4333-8333-333333333333', resource: patient('Existing', { identifier: [{ system: 'urn:cc', value: 'e1' }] }), request: { method: 'POST', url: 'Patient', ifNoneExist: 'identifier=urn:cc|e1' } },
        { resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: 'urn:uuid:33333333-3333-4333-8333-333333333333' } }, request: { method: 'POST', url: 'Observation' } },
      ],
    });
    assert.equal(r.status, 200, r.text);
    assert.match(r.body.entry[0].response.status, /^200/);
    assert.equal(r.body.entry[1].resource.subject.reference, `Patient/${existing.body.id}`);
  });

  test('a Synthea patient bundle (transaction with urn:uuid references) loads completely', async () => {
    const file = `${syntheaBundles}/Antonio_Runolfsson_a1795152-808d-4cb9-b259-ce6e3716dedf.json`;
    const bundle = JSON.parse(readFileSync(file, 'utf8'));
    const r = await post(bundle);
    assert.equal(r.status, 200, r.text.slice(0, 500));
    assert.equal(r.body.entry.length, bundle.entry.length);
    assert.ok(r.body.entry.every((e: { response: { status: string } }) => e.response.status.startsWith('201')));
    const text = JSON.stringify(r.body);
    assert.ok(!text.includes('"reference":"urn:uuid:'), 'no urn:uuid reference is left');
  });
});

test('a transaction that writes one resource twice fails and writes nothing', async () => {
  const r = await post({
    resourceType: 'Bundle', type: 'transaction', entry: [
      { resource: { ...patient('Twice'), id: 'twice' }, request: { method: 'PUT', url: 'Patient/twice' } },
      { resource: { ...patient('Twice2'), id: 'twice' }, request: { method: 'PUT', url: 'Patient/twice' } },
    ],
  });
  assert.equal(r.status, 400);
  assert.match(r.body.issue[0].diagnostics, /entry 1.*also written by entry 0/);
  assert.equal((await call(`${t.base}/Patient/twice`)).status, 404);
});

test('a malformed entry request fails the transaction naming the entry', async () => {
  const r = await post({ resourceType: 'Bundle', type: 'transaction', entry: [{ request: { method: 'GET', url: 'metadata' } }, { request: { method: 'NOPE', url: 'Patient' } }] });
  assert.equal(r.status, 400);
  assert.match(r.body.issue[0].diagnostics, /Transaction failed at entry 1/);
});

describe('batch', () => {
  test('entries are independent: each gets its own status', async () => {
    const r = await post({
      resourceType: 'Bundle', type: 'batch', entry: [
        { resource: patient('BatchOk'), request: { method: 'POST', url: 'Patient' } },
        { resource: { resourceType: 'Patient', gender: 'nope' }, request: { method: 'POST', url: 'Patient' } },
        { request: { method: 'GET', url: 'Patient/does-not-exist' } },
        { request: { method: 'GET', url: 'metadata' } },
      ],
    });
    assert.equal(r.status, 200);
    assert.equal(r.body.type, 'batch-response');
    assert.match(r.body.entry[0].response.status, /^201/);
    assert.match(r.body.entry[1].response.status, /^400/);
    assert.equal(r.body.entry[1].response.outcome.resourceType, 'OperationOutcome');
    assert.match(r.body.entry[2].response.status, /^404/);
    assert.match(r.body.entry[3].response.status, /^200/);
    assert.equal((await call(`${t.base}/${r.body.entry[0].response.location.split('/fhir/')[1]}`)).status, 200);
  });

  test('a Bundle of another type, or a nested transaction, is refused', async () => {
    assert.equal((await post({ resourceType: 'Bundle', type: 'collection' })).status, 400);
    const nested = await post({ resourceType: 'Bundle', type: 'transaction', entry: [{ resource: { resourceType: 'Bundle', type: 'batch' }, request: { method: 'POST', url: '' } }] });
    assert.equal(nested.status, 400);
  });
});
