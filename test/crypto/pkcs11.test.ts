import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyProviderError, type WrappedKey } from '../../src/crypto/key-provider.ts';
import { Pkcs11KeyProvider, type Pkcs11Settings } from '../../src/crypto/providers/pkcs11.ts';

/**
 * Against a real SoftHSM2 token in a temp dir. Needs Debian's softhsm2 and the pkcs11js addon;
 * without either the suite is skipped, saying which is missing.
 */
const MODULE = '/usr/lib/softhsm/libsofthsm2.so';
const TOKEN = 'bastion-test';
const PIN = 'user-pin-81726354';
const SO_PIN = 'so-pin-18273645';
const CONTEXT = 'bastion:data-key:resource-body.1';

const skip = whyUnavailable();

function whyUnavailable(): string | false {
  if (spawnSync('softhsm2-util', ['--version']).status !== 0) return 'softhsm2-util not installed (apt-get install softhsm2)';
  if (!existsSync(MODULE)) return `no SoftHSM2 PKCS#11 module at ${MODULE} (apt-get install softhsm2)`;
  try {
    createRequire(import.meta.url).resolve('pkcs11js');
  } catch {
    return 'pkcs11js not installed (npm install pkcs11js)';
  }
  return false;
}

/** The tests' own view of the token, from another process: what any logged-in application could try. */
function probeToken(keyLabel: string): { valueRead: string; wrapOut: string; extractable: boolean; sensitive: boolean; neverExtractable: boolean } {
  const script = `
    const p = require(${JSON.stringify(createRequire(import.meta.url).resolve('pkcs11js'))});
    const lib = new p.PKCS11(); lib.load(${JSON.stringify(MODULE)}); lib.C_Initialize();
    const slot = lib.C_GetSlotList(true).find((s) => lib.C_GetTokenInfo(s).label.trim() === ${JSON.stringify(TOKEN)});
    const s = lib.C_OpenSession(slot, p.CKF_SERIAL_SESSION | p.CKF_RW_SESSION);
    lib.C_Login(s, p.CKU_USER, ${JSON.stringify(PIN)});
    lib.C_FindObjectsInit(s, [{ type: p.CKA_LABEL, value: ${JSON.stringify(keyLabel)} }]);
    const [kek] = lib.C_FindObjects(s, 2); lib.C_FindObjectsFinal(s);
    const out = {};
    try { lib.C_GetAttributeValue(s, kek, [{ type: p.CKA_VALUE }]); out.valueRead = 'READ'; } catch (e) { out.valueRead = e.message; }
    const flags = lib.C_GetAttributeValue(s, kek, [{ type: p.CKA_EXTRACTABLE }, { type: p.CKA_SENSITIVE }, { type: p.CKA_NEVER_EXTRACTABLE }]);
    [out.extractable, out.sensitive, out.neverExtractable] = flags.map((a) => a.value[0] === 1);
    const outer = lib.C_GenerateKey(s, { mechanism: p.CKM_AES_KEY_GEN }, [
      { type: p.CKA_CLASS, value: p.CKO_SECRET_KEY }, { type: p.CKA_KEY_TYPE, value: p.CKK_AES }, { type: p.CKA_VALUE_LEN, value: 32 },
      { type: p.CKA_TOKEN, value: false }, { type: p.CKA_WRAP, value: true }]);
    try { lib.C_WrapKey(s, { mechanism: p.CKM_AES_KEY_WRAP_PAD }, outer, kek, Buffer.alloc(64)); out.wrapOut = 'WRAPPED'; } catch (e) { out.wrapOut = e.message; }
    lib.C_Logout(s); lib.C_CloseSession(s); lib.C_Finalize();
    process.stdout.write(JSON.stringify(out));`;
  return JSON.parse(execFileSync(process.execPath, ['-e', script], { env: process.env, encoding: 'utf8' })) as ReturnType<typeof probeToken>;
}

async function refused(promise: Promise<unknown>, pattern?: RegExp): Promise<KeyProviderError> {
  let caught: unknown;
  await promise.then(
    () => assert.fail('expected a KeyProviderError'),
    (err: unknown) => (caught = err),
  );
  assert.ok(caught instanceof KeyProviderError, `expected a KeyProviderError, got ${String(caught)}`);
  if (pattern) assert.match(caught.message, pattern);
  assert.ok(!caught.message.includes(PIN), 'the PIN must never appear in an error');
  return caught;
}

function altered(wrapped: WrappedKey, at: number): WrappedKey {
  const [prefix, body] = [wrapped.ciphertext.slice(0, 4), Buffer.from(wrapped.ciphertext.slice(4), 'base64')];
  body[at < 0 ? body.length + at : at]! ^= 0x01;
  return { ...wrapped, ciphertext: prefix + body.toString('base64') };
}

describe('PKCS#11 key provider on SoftHSM2', { skip }, () => {
  let dir = '';
  const opened: Pkcs11KeyProvider[] = [];
  const provider = (overrides: Partial<Pkcs11Settings> = {}): Pkcs11KeyProvider => {
    const p = new Pkcs11KeyProvider({ module: MODULE, tokenLabel: TOKEN, pin: PIN, keyLabel: 'bastion-kek', ...overrides });
    opened.push(p);
    return p;
  };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'bastion-softhsm-'));
    mkdirSync(join(dir, 'tokens'));
    writeFileSync(join(dir, 'softhsm2.conf'), `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`);
    // Read by SoftHSM at C_Initialize, which happens on the first provider call, after this.
    process.env.SOFTHSM2_CONF = join(dir, 'softhsm2.conf');
    execFileSync('softhsm2-util', ['--init-token', '--free', '--label', TOKEN, '--pin', PIN, '--so-pin', SO_PIN], { stdio: 'ignore' });
  });

  after(async () => {
    for (const p of opened) await p.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('ensureKey creates version 1 once; wrap before it is refused', async () => {
    const hsm = provider();
    await refused(hsm.wrap(randomBytes(32), CONTEXT), /no KEK 'bastion-kek\.v<N>'/);
    const first = await hsm.ensureKey();
    assert.equal(first.id, 'pkcs11:bastion-kek.v1');
    assert.equal(first.current, true);
    assert.ok(Math.abs(Date.parse(first.created) - Date.now()) < 60_000, first.created);
    assert.deepEqual(await hsm.ensureKey(), first);
    assert.deepEqual(await hsm.versions(), [first]);
  });

  test('round trip with AES-GCM; each wrap has a fresh IV', async () => {
    const hsm = provider();
    const dataKey = randomBytes(32);
    const a = await hsm.wrap(dataKey, CONTEXT);
    const b = await hsm.wrap(dataKey, CONTEXT);
    assert.equal(a.provider, 'pkcs11');
    assert.equal(a.kek, 'pkcs11:bastion-kek.v1');
    assert.match(a.ciphertext, /^gcm:[A-Za-z0-9+/]+={0,2}$/);
    assert.equal(Buffer.from(a.ciphertext.slice(4), 'base64').length, 12 + 32 + 16);
    assert.notEqual(a.ciphertext, b.ciphertext);
    assert.deepEqual(await hsm.unwrap(a, CONTEXT), dataKey);
    assert.deepEqual(await hsm.unwrap(b, CONTEXT), dataKey);
  });

  test('a different context is refused', async () => {
    const hsm = provider();
    const wrapped = await hsm.wrap(randomBytes(32), CONTEXT);
    await refused(hsm.unwrap(wrapped, 'bastion:data-key:identifier.1'), /context differs or the wrapped bytes were altered/);
  });

  test('altered or truncated bytes are refused', async () => {
    const hsm = provider();
    const wrapped = await hsm.wrap(randomBytes(32), CONTEXT);
    await refused(hsm.unwrap(altered(wrapped, 0), CONTEXT)); // IV
    await refused(hsm.unwrap(altered(wrapped, 20), CONTEXT)); // ciphertext
    await refused(hsm.unwrap(altered(wrapped, -1), CONTEXT)); // tag
    await refused(hsm.unwrap({ ...wrapped, ciphertext: wrapped.ciphertext.slice(0, 30) }, CONTEXT));
    await refused(hsm.unwrap({ ...wrapped, ciphertext: 'xyz:' + wrapped.ciphertext.slice(4) }, CONTEXT), /not a PKCS#11 provider ciphertext/);
    await refused(hsm.unwrap({ ...wrapped, ciphertext: 'gcm:not base64!' }, CONTEXT), /not base64/);
  });

  test('an unknown or foreign KEK is refused', async () => {
    const hsm = provider();
    const wrapped = await hsm.wrap(randomBytes(32), CONTEXT);
    await refused(hsm.unwrap({ ...wrapped, kek: 'pkcs11:bastion-kek.v99' }, CONTEXT), /has no KEK pkcs11:bastion-kek\.v99/);
    await refused(hsm.unwrap({ ...wrapped, kek: 'pkcs11:other-kek.v1' }, CONTEXT), /this provider uses KEK 'bastion-kek\.v<N>'/);
    await refused(hsm.unwrap({ ...wrapped, provider: 'vault-transit' }, CONTEXT), /wrapped by vault-transit/);
  });

  test('rotate makes a new current version; the old one still unwraps what it wrapped', async () => {
    const hsm = provider();
    const oldKey = randomBytes(32);
    const oldWrapped = await hsm.wrap(oldKey, CONTEXT);
    assert.equal(oldWrapped.kek, 'pkcs11:bastion-kek.v1');

    const rotated = await hsm.rotate();
    assert.equal(rotated.id, 'pkcs11:bastion-kek.v2');
    assert.equal(rotated.current, true);

    const newKey = randomBytes(32);
    const newWrapped = await hsm.wrap(newKey, CONTEXT);
    assert.equal(newWrapped.kek, 'pkcs11:bastion-kek.v2');
    assert.deepEqual(await hsm.unwrap(oldWrapped, CONTEXT), oldKey);
    assert.deepEqual(await hsm.unwrap(newWrapped, CONTEXT), newKey);

    const versions = await hsm.versions();
    assert.deepEqual(versions.map((v) => [v.id, v.current]), [['pkcs11:bastion-kek.v1', false], ['pkcs11:bastion-kek.v2', true]]);
    assert.ok(versions[0]!.created <= versions[1]!.created);
    // Another provider instance (a restart) sees the same state.
    assert.deepEqual(await provider().versions(), versions);
  });

  test('a wrong PIN is a KeyProviderError that does not quote the PIN', async () => {
    const wrongPin = 'wrong-pin-50505050';
    const hsm = provider({ pin: wrongPin });
    const err = await refused(hsm.versions(), /refused the PIN/);
    assert.ok(!err.message.includes(wrongPin));
    assert.match(err.message, /CKR_PIN_INCORRECT/);
    // The good PIN still works in the same process (the failed login left nothing behind).
    assert.equal((await provider().versions()).length, 2);
  });

  test('the KEK cannot be read or wrapped out of the token', () => {
    const seen = probeToken('bastion-kek.v1');
    assert.equal(seen.valueRead, 'CKR_ATTRIBUTE_SENSITIVE');
    assert.equal(seen.wrapOut, 'CKR_KEY_UNEXTRACTABLE');
    assert.deepEqual([seen.extractable, seen.sensitive, seen.neverExtractable], [false, true, true]);
  });

  test('AES key wrap with padding (the fallback mechanism) binds the context too', async () => {
    const hsm = provider({ keyLabel: 'bastion-kwp', mechanism: 'aes-key-wrap-pad' });
    await hsm.ensureKey();
    const dataKey = randomBytes(32);
    const wrapped = await hsm.wrap(dataKey, CONTEXT);
    assert.match(wrapped.ciphertext, /^kwp:/);
    assert.equal(wrapped.kek, 'pkcs11:bastion-kwp.v1');
    assert.equal(wrapped.ciphertext, (await hsm.wrap(dataKey, CONTEXT)).ciphertext, 'key wrap is deterministic');
    assert.deepEqual(await hsm.unwrap(wrapped, CONTEXT), dataKey);
    await refused(hsm.unwrap(wrapped, 'bastion:data-key:identifier.1'), /another context/);
    await refused(hsm.unwrap(altered(wrapped, 5), CONTEXT), /context differs or the wrapped bytes were altered/);
    // A GCM-configured provider on the same KEK still unwraps it: the ciphertext names its mechanism.
    assert.deepEqual(await provider({ keyLabel: 'bastion-kwp', mechanism: 'aes-gcm' }).unwrap(wrapped, CONTEXT), dataKey);
  });

  test('a missing token, a bad setting and a closed provider are KeyProviderErrors', async () => {
    await refused(provider({ tokenLabel: 'no-such-token' }).versions(), /'no-such-token' is not present/);
    await refused(provider({ module: '/nonexistent/libpkcs11.so' }).versions(), /Cannot load the PKCS#11 module/);
    assert.throws(() => new Pkcs11KeyProvider({ module: MODULE, pin: PIN, keyLabel: 'k' }), KeyProviderError);
    assert.throws(() => new Pkcs11KeyProvider({ module: MODULE, tokenLabel: TOKEN, pin: PIN, keyLabel: 'bad label' }), KeyProviderError);

    const hsm = provider();
    const other = provider();
    await hsm.versions();
    await other.versions();
    await hsm.close();
    await hsm.close();
    await refused(hsm.versions(), /closed/);
    // The library stays initialised while another provider still uses it.
    assert.equal((await other.versions()).length, 2);
  });
});
