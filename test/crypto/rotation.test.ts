import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/config.ts';
import { openKeys, openStore, startServer } from '../../src/main.ts';
import { openEncrypted } from '../../src/store/sqlite/open.ts';
import { sealedVersion } from '../../src/crypto/aead.ts';
import { keyAgeFindings } from '../../src/compliance/key-age.ts';
import { auditEventsIn } from '../audit/audit-file.ts';
import { storeKey } from '../store-key.ts';

const bin = new URL('../../bin/bastion.js', import.meta.url).pathname;
const sealedEnv = { BASTION_ENCRYPT_RESOURCE_BODIES: 'true' };
const cli = (env: Record<string, string>, ...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
/** The CLI without blocking this process (the server answering it may live here). */
const cliAsync = (env: Record<string, string>, ...args: string[]) => new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
  const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  child.on('close', (status) => resolve({ status, stdout, stderr }));
});

const patient = (id: string) => ({ resourceType: 'Patient', id, name: [{ family: `Rotated-${id}` }], identifier: [{ system: 'http://hl7.org/fhir/sid/us-ssn', value: `999-00-${id.padStart(4, '0')}` }] });

/** Each stored version's body key version, read from the raw rows. */
async function bodyKeyVersions(dir: string): Promise<(number | undefined)[]> {
  const db = openEncrypted(join(dir, 'bastion.db'), await storeKey(dir), { readonly: true });
  try {
    return (db.prepare('SELECT content FROM resource_versions WHERE content IS NOT NULL ORDER BY seq').pluck().all() as Buffer[]).map((c) => sealedVersion(c));
  } finally {
    db.close();
  }
}

test('bastion keys rotate with the server stopped: new versions, files re-keyed, every version re-encrypted and readable, old keys retired, all audited', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bastion-rotate-'));
  try {
    let store = await openStore(dir, undefined, { encryptResourceBodies: true });
    await store.transaction(async (tx) => {
      for (let i = 1; i <= 30; i++) await tx.create(patient(String(i)));
      await tx.update({ ...patient('1'), gender: 'female' });
    });
    await store.close();
    const oldStoreKey = await storeKey(dir);
    const r = cli({ ...sealedEnv, BASTION_DATA_DIR: dir }, 'keys', 'rotate');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /KEK rotated to local:2; 8 data keys re-wrapped/);
    assert.match(r.stdout, /re-encrypted 31 of 31 versions/);
    assert.deepEqual(await bodyKeyVersions(dir), Array(31).fill(2));
    for (const file of ['bastion.db', 'bastion-audit.db', 'bastion-auth.db']) {
      assert.throws(() => openEncrypted(join(dir, file), oldStoreKey), /cannot be decrypted/, `${file} is under the new key only`);
    }
    const keys = await openKeys(dir);
    assert.deepEqual(['store-file', 'resource-body', 'identifier'].map((p) => keys.liveIds(p as 'store-file')), [['store-file.2'], ['resource-body.2'], ['identifier.2']], 'old versions retired');
    assert.deepEqual(keys.liveIds('blind-index'), ['blind-index.1'], 'untouched');
    store = await openStore(dir, keys, { encryptResourceBodies: true });
    assert.equal(JSON.parse((await store.vread('Patient', '1', '1'))!.json!).identifier[0].value, '999-00-0001');
    assert.equal(JSON.parse((await store.read('Patient', '1'))!.json!).gender, 'female');
    assert.equal(await store.staleCount!(), 0);
    await store.close();
    const status = cli({ ...sealedEnv, BASTION_DATA_DIR: dir }, 'keys', 'status');
    assert.equal(status.status, 0, status.stderr);
    assert.match(status.stdout, /key provider: local/);
    assert.match(status.stdout, /KEK local:2 \(current\)/);
    assert.match(status.stdout, /stored versions not under the current keys: 0/);
    await (await startServer(loadConfig({ port: 0, dataDir: dir }, { BASTION_AUTH: 'smart', BASTION_TLS: 'off', ...sealedEnv }))).close();
    const events = (await auditEventsIn(dir)).filter((e) => e.agent?.some((a: { who?: { identifier?: { value?: string } } }) => a.who?.identifier?.value === 'console'));
    const kinds = events.map((e) => e.subtype?.[0]?.code ?? e.type?.code).join(' ');
    const details = JSON.stringify(events);
    for (const detail of ['key=kek', 'keys-rewrapped', 'key=store-file.2', 'key=resource-body.2', 'key=identifier.2', 'store-rekeyed', 'reencrypted', 'key=resource-body.1 reason=nothing-encrypted-under-it']) {
      assert.ok(details.includes(detail), `audited: ${detail} (${kinds})`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bastion keys rotate beside a running server: it takes the new key, re-encrypts in the background and retires the old one', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bastion-rotate-live-'));
  const server = await startServer(loadConfig({ port: 0, dataDir: dir }, { BASTION_AUTH: 'off', BASTION_TLS: 'off', ...sealedEnv }));
  try {
    for (let i = 1; i <= 20; i++) {
      const res = await fetch(`${server.baseUrl}/Patient/${i}`, { method: 'PUT', headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify(patient(String(i))) });
      assert.equal(res.status, 201);
    }
    await server.reencryption.idle();
    const refused = await cliAsync({ ...sealedEnv, BASTION_DATA_DIR: dir }, 'keys', 'rotate', '--purpose', 'blind-index');
    assert.equal(refused.status, 2);
    assert.match(refused.stderr, /stop the server first/);
    const r = await cliAsync({ ...sealedEnv, BASTION_DATA_DIR: dir }, 'keys', 'rotate', '--purpose', 'resource-body');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /the running server takes the new keys/);
    const keysFile = join(dir, 'data-keys.json');
    const retired = () => (JSON.parse(readFileSync(keysFile, 'utf8')) as { keys: { 'resource-body': { retired?: string }[] } }).keys['resource-body'][0].retired;
    for (let i = 0; i < 100 && !retired(); i++) {
      await new Promise((res) => setTimeout(res, 100));
      await server.reencryption.idle();
    }
    assert.ok(retired(), 'resource-body.1 retired once nothing used it');
    for (let i = 1; i <= 20; i++) {
      const res = await fetch(`${server.baseUrl}/Patient/${i}`);
      assert.equal(((await res.json()) as { identifier: { value: string }[] }).identifier[0].value, `999-00-${String(i).padStart(4, '0')}`);
    }
  } finally {
    await server.close();
  }
  try {
    // Patients plus the Provenance of each write: every version under resource-body.2.
    assert.ok((await bodyKeyVersions(dir)).every((v) => v === 2));
    const trail = JSON.stringify(await auditEventsIn(dir));
    for (const detail of ['keys-unwrapped', 'new=resource-body.2', 'key=resource-body.1 reason=nothing-encrypted-under-it']) assert.ok(trail.includes(detail), detail);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('key age: a KEK or data key older than a quarter is a finding; cookie and pseudonym keys are not urged', () => {
  const now = Date.parse('2026-11-29T00:00:00Z');
  const old = '2026-08-01T00:00:00Z';
  const fresh = '2026-11-01T00:00:00Z';
  const findings = keyAgeFindings([{ id: 'local:1', created: old, current: true }], [
    { purpose: 'resource-body', id: 'resource-body.1', created: old }, { purpose: 'identifier', id: 'identifier.3', created: fresh }, { purpose: 'cookie', id: 'cookie.1', created: old },
  ], now);
  assert.deepEqual(findings.map((f) => f.message.split(' is ')[0]), ['the key-encryption key local:1', 'the resource-body data key resource-body.1']);
  assert.deepEqual(keyAgeFindings([{ id: 'local:2', created: fresh, current: true }], [], now), []);
});

test('bastion compliance reports the development master key and exits 1', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bastion-compliance-'));
  try {
    const r = cli({ BASTION_DATA_DIR: dir, BASTION_MASTER_KEY: '', BASTION_MASTER_PASSPHRASE: '' }, 'compliance');
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stdout, /\[high\] .*a master key file \(master\.key\) is in the data dir/);
    assert.match(r.stdout, /\[medium\] .*self-signed development certificate/);
    const plain = cli({ BASTION_DATA_DIR: dir, BASTION_TLS: 'off' }, 'compliance', '--json');
    assert.match(plain.stdout, /plain HTTP \(tls=off\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bastion keys change-master moves a keyring off the development master.key; without the new key it does not open', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bastion-master-'));
  try {
    const clean = { BASTION_DATA_DIR: dir, BASTION_MASTER_KEY: '', BASTION_MASTER_PASSPHRASE: '' };
    await (await openStore(dir)).close();
    const key = '11'.repeat(32);
    const missing = cli(clean, 'keys', 'change-master');
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /needs BASTION_NEW_MASTER_KEY/);
    const moved = cli({ ...clean, BASTION_NEW_MASTER_KEY: key }, 'keys', 'change-master');
    assert.equal(moved.status, 0, moved.stderr);
    assert.ok(!readdirSync(dir).includes('master.key'), 'the development master key is gone');
    const without = cli(clean, 'keys', 'status');
    assert.equal(without.status, 2);
    assert.match(without.stderr, /No master key for the existing keyring/);
    assert.ok(!readdirSync(dir).includes('master.key'), 'no new development key made for an existing keyring');
    const wrong = cli({ ...clean, BASTION_MASTER_KEY: '22'.repeat(32) }, 'keys', 'status');
    assert.match(wrong.stderr, /master key does not open/);
    const right = cli({ ...clean, BASTION_MASTER_KEY: key }, 'keys', 'status');
    assert.equal(right.status, 0, right.stderr);
    assert.ok(JSON.stringify(await auditEventsInWith(dir, key)).includes('key=master from=file to=key'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** The trail of a data dir whose keyring is under `masterKey` (the environment variable, for this process). */
async function auditEventsInWith(dir: string, masterKey: string) {
  process.env.BASTION_MASTER_KEY = masterKey;
  try {
    return await auditEventsIn(dir);
  } finally {
    delete process.env.BASTION_MASTER_KEY;
  }
}
