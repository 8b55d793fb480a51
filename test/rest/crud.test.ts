import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { call, patient, useServer } from './server.ts';

const t = useServer();

describe('create, read, vread', () => {
  test('create assigns an id, ignores a client id and versionId, and answers 201 with Location, ETag, Last-Modified', async () => {
    const r = await call(`${t.base}/Patient`, { method: 'POST', json: patient('Create', { id: 'client-chose', meta: { versionId: '7' } }) });
    assert.equal(r.status, 201);
    assert.notEqual(r.body.id, 'client-chose');
    assert.equal(r.body.meta.versionId, '1');
    assert.equal(r.headers.get('location'), `${t.base}/Patient/${r.body.id}/_history/1`);
    assert.equal(r.headers.get('etag'), 'W/"1"');
    assert.ok(r.headers.get('last-modified'));
    assert.match(r.headers.get('content-type')!, /^application\/fhir\+json/);
    const read = await call(`${t.base}/Patient/${r.body.id}`);
    assert.equal(read.status, 200);
    assert.deepEqual(read.body, r.body);
    assert.equal(read.headers.get('etag'), 'W/"1"');
  });

  test('read of an unknown id is 404 and of an unknown type 404, both OperationOutcomes', async () => {
    const a = await call(`${t.base}/Patient/does-not-exist`);
    assert.equal(a.status, 404);
    assert.equal(a.body.resourceType, 'OperationOutcome');
    const b = await call(`${t.base}/NotAType/1`);
    assert.equal(b.status, 404);
    assert.match(b.body.issue[0].diagnostics, /Unknown resource type/);
  });

  test('an invalid id is 400', async () => {
    const r = await call(`${t.base}/Patient/${'x'.repeat(65)}`);
    assert.equal(r.status, 400);
    const r2 = await call(`${t.base}/Patient/a_b`);
    assert.equal(r2.status, 400);
  });

  test('vread returns each version; an unknown version is 404', async () => {
    const c = await call(`${t.base}/Patient/vr1`, { method: 'PUT', json: { ...patient('One'), id: 'vr1' } });
    assert.equal(c.status, 201);
    await call(`${t.base}/Patient/vr1`, { method: 'PUT', json: { ...patient('Two'), id: 'vr1' } });
    assert.equal((await call(`${t.base}/Patient/vr1/_history/1`)).body.name[0].family, 'One');
    assert.equal((await call(`${t.base}/Patient/vr1/_history/2`)).body.name[0].family, 'Two');
    assert.equal((await call(`${t.base}/Patient/vr1/_history/3`)).status, 404);
  });

  test('conditional read: If-None-Match and If-Modified-Since give 304', async () => {
    const c = await call(`${t.base}/Patient`, { method: 'POST', json: patient('Cond') });
    const url = `${t.base}/Patient/${c.body.id}`;
    assert.equal((await call(url, { headers: { 'if-none-match': 'W/"1"' } })).status, 304);
    assert.equal((await call(url, { headers: { 'if-none-match': 'W/"2"' } })).status, 200);
    const later = new Date(Date.now() + 60_000).toUTCString();
    assert.equal((await call(url, { headers: { 'if-modified-since': later } })).status, 304);
    assert.equal((await call(url, { headers: { 'if-modified-since': 'Mon, 01 Jan 2001 00:00:00 GMT' } })).status, 200);
  });

  test('HEAD answers headers without a body', async () => {
    const c = await call(`${t.base}/Patient`, { method: 'POST', json: patient('Head') });
    const r = await call(`${t.base}/Patient/${c.body.id}`, { method: 'HEAD' });
    assert.equal(r.status, 200);
    assert.equal(r.text, '');
    assert.equal(r.headers.get('etag'), 'W/"1"');
  });
});

describe('update and delete', () => {
  test('update creates a new version; update-as-create answers 201', async () => {
    const a = await call(`${t.base}/Patient/up1`, { method: 'PUT', json: { ...patient('A'), id: 'up1' } });
    assert.equal(a.status, 201);
    const b = await call(`${t.base}/Patient/up1`, { method: 'PUT', json: { ...patient('B'), id: 'up1' } });
    assert.equal(b.status, 200);
    assert.equal(b.body.meta.versionId, '2');
    assert.equal(b.headers.get('etag'), 'W/"2"');
  });

  test('update with a missing or different id in the body is 400 and stores nothing', async () => {
    assert.equal((await call(`${t.base}/Patient/up2`, { method: 'PUT', json: patient('NoId') })).status, 400);
    const r = await call(`${t.base}/Patient/up2`, { method: 'PUT', json: { ...patient('Other'), id: 'other' } });
    assert.equal(r.status, 400);
    assert.match(r.body.issue[0].diagnostics, /does not match/);
    assert.equal((await call(`${t.base}/Patient/up2`)).status, 404);
  });

  test('If-Match with a stale version is 412; with the current one it succeeds', async () => {
    await call(`${t.base}/Patient/im1`, { method: 'PUT', json: { ...patient('A'), id: 'im1' } });
    await call(`${t.base}/Patient/im1`, { method: 'PUT', json: { ...patient('B'), id: 'im1' } });
    const stale = await call(`${t.base}/Patient/im1`, { method: 'PUT', headers: { 'if-match': 'W/"1"' }, json: { ...patient('C'), id: 'im1' } });
    assert.equal(stale.status, 412);
    assert.equal((await call(`${t.base}/Patient/im1`)).body.name[0].family, 'B');
    const ok = await call(`${t.base}/Patient/im1`, { method: 'PUT', headers: { 'if-match': 'W/"2"' }, json: { ...patient('C'), id: 'im1' } });
    assert.equal(ok.status, 200);
    const bad = await call(`${t.base}/Patient/im1`, { method: 'PUT', headers: { 'if-match': 'garbage value' }, json: { ...patient('D'), id: 'im1' } });
    assert.equal(bad.status, 400);
  });

  test('delete: read is then 410 Gone, old versions stay readable, deleting again succeeds', async () => {
    const c = await call(`${t.base}/Patient`, { method: 'POST', json: patient('Del') });
    const url = `${t.base}/Patient/${c.body.id}`;
    const d = await call(url, { method: 'DELETE' });
    assert.equal(d.status, 200);
    assert.equal(d.headers.get('etag'), 'W/"2"');
    const gone = await call(url);
    assert.equal(gone.status, 410);
    assert.equal(gone.body.resourceType, 'OperationOutcome');
    assert.equal((await call(`${url}/_history/1`)).status, 200);
    assert.equal((await call(`${url}/_history/2`)).status, 410);
    assert.equal((await call(url, { method: 'DELETE' })).status, 200);
    const h = await call(`${url}/_history`);
    assert.equal(h.body.total, 2);
    assert.equal(h.body.entry[0].request.method, 'DELETE');
    assert.equal(h.body.entry[0].resource, undefined);
  });

  test('Prefer: return=minimal and return=OperationOutcome', async () => {
    const min = await call(`${t.base}/Patient`, { method: 'POST', headers: { prefer: 'return=minimal' }, json: patient('Min') });
    assert.equal(min.status, 201);
    assert.equal(min.text, '');
    assert.ok(min.headers.get('location'));
    const oo = await call(`${t.base}/Patient`, { method: 'POST', headers: { prefer: 'return=OperationOutcome' }, json: patient('OO') });
    assert.equal(oo.status, 201);
    assert.equal(oo.body.resourceType, 'OperationOutcome');
  });
});

describe('conditional operations', () => {
  const ident = (value: string) => ({ identifier: [{ system: 'urn:test:mrn', value }] });

  test('conditional create: no match creates, one match returns it (200), several fail (412)', async () => {
    const first = await call(`${t.base}/Patient`, { method: 'POST', headers: { 'if-none-exist': 'identifier=urn:test:mrn|cc1' }, json: patient('CC', ident('cc1')) });
    assert.equal(first.status, 201);
    const second = await call(`${t.base}/Patient`, { method: 'POST', headers: { 'if-none-exist': 'identifier=urn:test:mrn|cc1' }, json: patient('CC', ident('cc1')) });
    assert.equal(second.status, 200);
    assert.equal(second.body.id, first.body.id);
    await call(`${t.base}/Patient`, { method: 'POST', json: patient('Dup', ident('dup')) });
    await call(`${t.base}/Patient`, { method: 'POST', json: patient('Dup', ident('dup')) });
    const many = await call(`${t.base}/Patient`, { method: 'POST', headers: { 'if-none-exist': 'identifier=urn:test:mrn|dup' }, json: patient('Dup', ident('dup')) });
    assert.equal(many.status, 412);
  });

  test('conditional update: creates when nothing matches, updates the one match, 412 on several', async () => {
    const created = await call(`${t.base}/Patient?identifier=urn:test:mrn|cu1`, { method: 'PUT', json: patient('CU', ident('cu1')) });
    assert.equal(created.status, 201);
    const updated = await call(`${t.base}/Patient?identifier=urn:test:mrn|cu1`, { method: 'PUT', json: patient('CU2', ident('cu1')) });
    assert.equal(updated.status, 200);
    assert.equal(updated.body.id, created.body.id);
    assert.equal(updated.body.meta.versionId, '2');
    await call(`${t.base}/Patient`, { method: 'POST', json: patient('Dup2', ident('dup2')) });
    await call(`${t.base}/Patient`, { method: 'POST', json: patient('Dup2', ident('dup2')) });
    assert.equal((await call(`${t.base}/Patient?identifier=urn:test:mrn|dup2`, { method: 'PUT', json: patient('X', ident('dup2')) })).status, 412);
    assert.equal((await call(`${t.base}/Patient`, { method: 'PUT', json: patient('X') })).status, 400, 'conditional update needs criteria');
  });

  test('conditional delete: deletes the single match; several matches are 412', async () => {
    const c = await call(`${t.base}/Patient`, { method: 'POST', json: patient('CD', ident('cd1')) });
    const d = await call(`${t.base}/Patient?identifier=urn:test:mrn|cd1`, { method: 'DELETE' });
    assert.equal(d.status, 200);
    assert.equal((await call(`${t.base}/Patient/${c.body.id}`)).status, 410);
    assert.equal((await call(`${t.base}/Patient?identifier=urn:test:mrn|nothing-here`, { method: 'DELETE' })).status, 200);
    await call(`${t.base}/Patient`, { method: 'POST', json: patient('Dup3', ident('dup3')) });
    await call(`${t.base}/Patient`, { method: 'POST', json: patient('Dup3', ident('dup3')) });
    assert.equal((await call(`${t.base}/Patient?identifier=urn:test:mrn|dup3`, { method: 'DELETE' })).status, 412);
  });
});

describe('patch', () => {
  test('JSON Patch creates a new version', async () => {
    const c = await call(`${t.base}/Patient`, { method: 'POST', json: patient('Patch') });
    const r = await call(`${t.base}/Patient/${c.body.id}`, {
      method: 'PATCH', headers: { 'content-type': 'application/json-patch+json' }, body: JSON.stringify([{ op: 'replace', path: '/gender', value: 'male' }]),
    });
    assert.equal(r.status, 200);
    assert.equal(r.body.gender, 'male');
    assert.equal(r.body.meta.versionId, '2');
  });

  test('FHIRPath Patch (Parameters) replaces a value', async () => {
    const c = await call(`${t.base}/Patient`, { method: 'POST', json: patient('FPPatch') });
    const r = await call(`${t.base}/Patient/${c.body.id}`, {
      method: 'PATCH',
      json: { resourceType: 'Parameters', parameter: [{ name: 'operation', part: [
        { name: 'type', valueCode: 'replace' }, { name: 'path', valueString: 'Patient.birthDate' }, { name: 'value', valueDate: '1999-09-09' },
      ] }] },
    });
    assert.equal(r.status, 200);
    assert.equal(r.body.birthDate, '1999-09-09');
  });

  test('a patch yielding an invalid resource is 422 and stores nothing; wrong media type 415; stale If-Match 412', async () => {
    const c = await call(`${t.base}/Patient`, { method: 'POST', json: patient('BadPatch') });
    const url = `${t.base}/Patient/${c.body.id}`;
    const invalid = await call(url, {
      method: 'PATCH', headers: { 'content-type': 'application/json-patch+json' }, body: JSON.stringify([{ op: 'replace', path: '/gender', value: 'robot' }]),
    });
    assert.equal(invalid.status, 422);
    assert.equal((await call(url)).body.meta.versionId, '1');
    assert.equal((await call(url, { method: 'PATCH', headers: { 'content-type': 'text/plain' }, body: 'x' })).status, 415);
    const stale = await call(url, {
      method: 'PATCH', headers: { 'content-type': 'application/json-patch+json', 'if-match': 'W/"9"' }, body: JSON.stringify([{ op: 'remove', path: '/gender' }]),
    });
    assert.equal(stale.status, 412);
  });
});

describe('history', () => {
  test('type and system history with _count paging and _since', async () => {
    const start = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 5));
    for (let i = 0; i < 3; i++) await call(`${t.base}/Practitioner`, { method: 'POST', json: { resourceType: 'Practitioner', name: [{ family: `H${i}` }] } });
    const page1 = await call(`${t.base}/Practitioner/_history?_count=2`);
    assert.equal(page1.status, 200);
    assert.equal(page1.body.type, 'history');
    assert.equal(page1.body.total, 3);
    assert.equal(page1.body.entry.length, 2);
    const next = page1.body.link.find((l: { relation: string }) => l.relation === 'next').url;
    await call(`${t.base}/Practitioner`, { method: 'POST', json: { resourceType: 'Practitioner', name: [{ family: 'Later' }] } });
    const page2 = await call(next);
    assert.equal(page2.body.entry.length, 1, 'a write after page 1 does not shift page 2');
    const since = await call(`${t.base}/_history?_since=${encodeURIComponent(start)}`);
    assert.ok(since.body.entry.every((e: { response: { lastModified: string } }) => e.response.lastModified >= start));
    assert.equal((await call(`${t.base}/_history?_since=yesterday`)).status, 400);
    assert.equal((await call(`${t.base}/Practitioner/_history?bogus=1`)).status, 400);
  });
});
