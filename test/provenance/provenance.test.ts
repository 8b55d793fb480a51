import { after, before, describe, test } from 'node:test';
import { storeKey } from '../store-key.ts';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../../src/config/config.ts';
import { startServer, type Server } from '../../src/main.ts';
import { openEncrypted } from '../../src/store/sqlite/open.ts';
import { call, patient } from '../rest/server.ts';

const provenanceOf = async (base: string, target: string) =>
  ((await call(`${base}/Provenance?target=${target}&_count=100`)).body.entry ?? []).map((e: { resource: any }) => e.resource);

const verify = async (base: string, id: string) => {
  const r = await call(`${base}/Provenance/${id}/$verify-signature`);
  assert.equal(r.status, 200, r.text);
  const param = (name: string) => r.body.parameter.filter((p: { name: string }) => p.name === name);
  return {
    valid: param('valid')[0].valueBoolean as boolean,
    targets: Object.fromEntries(param('target').map((p: any) => [p.part[0].valueReference.reference, p.part[1].valueCode])) as Record<string, string>,
  };
};

describe('Provenance of every write', () => {
  let dir: string;
  let server: Server;
  let base: string;
  const start = async (env: Record<string, string> = {}) => {
    server = await startServer(loadConfig({ port: 0, dataDir: dir }, { BASTION_AUTH: 'off', BASTION_TLS: 'off', ...env }));
    base = server.baseUrl;
  };
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bastion-provenance-'));
    await start();
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('create, update and delete each record a signed Provenance naming the version written', async () => {
    const created = await call(`${base}/Patient`, { method: 'POST', json: patient('Provfamily') });
    const id = created.body.id;
    await call(`${base}/Patient/${id}`, { method: 'PUT', json: { ...patient('Provfamily', { gender: 'male' }), id } });
    await call(`${base}/Patient/${id}`, { method: 'DELETE' });
    const records = await provenanceOf(base, `Patient/${id}`);
    assert.equal(records.length, 3);
    const byActivity = Object.fromEntries(records.map((p: any) => [p.activity.coding[0].code, p]));
    assert.deepEqual(byActivity.CREATE.target, [{ reference: `Patient/${id}/_history/1` }]);
    assert.deepEqual(byActivity.UPDATE.target, [{ reference: `Patient/${id}/_history/2` }]);
    assert.deepEqual(byActivity.DELETE.target, [{ reference: `Patient/${id}/_history/3` }]);
    for (const p of records) {
      assert.equal(p.agent[0].type.coding[0].code, 'author');
      assert.equal(p.agent[0].who.identifier.value, 'local');
      assert.equal(p.signature[0].sigFormat, 'application/jose');
      assert.ok(Date.parse(p.recorded) <= Date.now());
      const v = await verify(base, p.id);
      assert.equal(v.valid, true, JSON.stringify(v));
    }
  });

  test('a transaction records one Provenance per kind of write, with all its targets, atomically', async () => {
    const existing = (await call(`${base}/Patient`, { method: 'POST', json: patient('Txprov') })).body.id;
    const ok = await call(base, { method: 'POST', json: { resourceType: 'Bundle', type: 'transaction', entry: [
      { fullUrl: 'urn:uuid:1', resource: patient('Txprov'), request: { method: 'POST', url: 'Patient' } },
      { resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: 'urn:uuid:1' } }, request: { method: 'POST', url: 'Observation' } },
      { resource: { ...patient('Txprov', { gender: 'other' }), id: existing }, request: { method: 'PUT', url: `Patient/${existing}` } },
    ] } });
    assert.equal(ok.status, 200, ok.text);
    const updated = await provenanceOf(base, `Patient/${existing}`);
    assert.equal(updated.length, 2, 'its create, and the transaction\'s update');
    const txUpdate = updated.find((p: any) => p.activity.coding[0].code === 'UPDATE');
    assert.equal(txUpdate.target.length, 1);
    const newPatient = ok.body.entry[0].response.location.split('/_history')[0];
    const txCreate = (await provenanceOf(base, newPatient))[0];
    assert.equal(txCreate.target.length, 2, 'the Patient and the Observation');
    assert.equal(txCreate.recorded, txUpdate.recorded);

    const before = (await call(`${base}/Provenance?_summary=count`)).body.total;
    const failed = await call(base, { method: 'POST', json: { resourceType: 'Bundle', type: 'transaction', entry: [
      { resource: patient('Txfail'), request: { method: 'POST', url: 'Patient' } },
      { resource: { resourceType: 'Patient', gender: 'robot' }, request: { method: 'POST', url: 'Patient' } },
    ] } });
    assert.equal(failed.status, 400);
    assert.equal((await call(`${base}/Provenance?_summary=count`)).body.total, before, 'a rolled-back transaction leaves no Provenance');
  });

  test('the AuditEvent of a write names its Provenance', async () => {
    const id = (await call(`${base}/Patient`, { method: 'POST', json: patient('Auditprov') })).body.id;
    const provenance = (await provenanceOf(base, `Patient/${id}`))[0];
    await sleep(100);
    const events = (await call(`${base}/AuditEvent?entity=Patient/${id}&subtype=create`)).body.entry.map((e: { resource: any }) => e.resource);
    assert.equal(events.length, 1);
    assert.ok(events[0].entity.some((e: any) => e.what?.reference === `Provenance/${provenance.id}/_history/1`), JSON.stringify(events[0].entity));
  });

  test('verification fails for an altered Provenance, a forged signature, or a target changed in the store', async () => {
    const id = (await call(`${base}/Patient`, { method: 'POST', json: patient('Tamperprov') })).body.id;
    const provenance = (await provenanceOf(base, `Patient/${id}`))[0];
    // Pointed at another version: the signature no longer covers what it names.
    const moved = await call(`${base}/Provenance`, { method: 'POST', json: { ...provenance, id: undefined, meta: undefined, target: [{ reference: `Patient/${id}/_history/2` }] } });
    assert.equal((await verify(base, moved.body.id)).valid, false);
    const forged = await call(`${base}/Provenance`, { method: 'POST', json: { ...provenance, id: undefined, meta: undefined, signature: [{ ...provenance.signature[0], data: Buffer.from('eyJhbGciOiJFUzI1NiJ9.e30.AAAA').toString('base64') }] } });
    assert.equal((await verify(base, forged.body.id)).valid, false);
    const unsigned = await call(`${base}/Provenance`, { method: 'POST', json: { ...provenance, id: undefined, meta: undefined, signature: undefined } });
    assert.equal((await verify(base, unsigned.body.id)).valid, false);

    // The signed version itself rewritten in the store file (the server stopped meanwhile).
    await server.close();
    const key = await storeKey(dir);
    const db = openEncrypted(join(dir, 'bastion.db'), key);
    const changed = db.prepare(`UPDATE resource_versions SET content = replace(content, 'Tamperprov', 'Forgedname') WHERE content LIKE '%Tamperprov%'`).run().changes;
    db.close();
    assert.equal(changed, 1);
    await start();
    const v = await verify(base, provenance.id);
    assert.equal(v.valid, false);
    assert.equal(v.targets[`Patient/${id}/_history/1`], 'altered');
  });

  test('with signatures off, Provenance is recorded unsigned and nothing is verified', async () => {
    await server.close();
    await start({ BASTION_PROVENANCE_SIGNATURES: 'false' });
    const id = (await call(`${base}/Patient`, { method: 'POST', json: patient('Unsignedprov') })).body.id;
    const provenance = (await provenanceOf(base, `Patient/${id}`))[0];
    assert.equal(provenance.signature, undefined);
    assert.equal((await call(`${base}/Provenance/${provenance.id}/$verify-signature`)).status, 501);
  });
});
