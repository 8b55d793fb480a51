import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { KeyProviderError, type WrappedKey } from '../../src/crypto/key-provider.ts';
import { VaultTransitProvider, type VaultTransitSettings } from '../../src/crypto/providers/vault-transit.ts';
import { loadOrCreateDevCertificate } from '../../src/http/dev-certificate.ts';
import { FakeVault } from './fake-vault.ts';

// No Vault or OpenBao binary can be installed here (neither npm nor Debian ships one), so these run
// against FakeVault, a loopback stand-in for the Transit API with real AES-GCM (see fake-vault.ts).

const token = 'hvs.bastion-test-root-token-0123456789';
const context = 'bastion:data-key:resource-body.2';

/** A KeyProviderError whose message matches `pattern` and never shows the token. */
const providerError = (pattern: RegExp) => (err: unknown) => {
  assert.ok(err instanceof KeyProviderError, `expected a KeyProviderError, got ${String(err)}`);
  assert.match(err.message, pattern);
  assert.ok(!err.message.includes(token), 'the token is not in the message');
  return true;
};

describe('Vault Transit key provider', () => {
  const vault = new FakeVault({ token, namespace: 'bastion-ns' });
  let address = '';
  before(async () => {
    address = await vault.start();
  });
  after(() => vault.close());
  beforeEach(() => {
    vault.sealed = false;
    vault.ignoresAssociatedData = false;
    vault.redirectTo = undefined;
  });

  let keyCounter = 0;
  /** A provider for a fresh key on a fresh transit mount, so tests do not share versions. */
  const provider = (overrides: Partial<VaultTransitSettings> = {}) => {
    const mount = `transit-${++keyCounter}`;
    vault.enableTransit(mount);
    return new VaultTransitProvider({ address, token, mount, keyName: 'bastion', namespace: 'bastion-ns', ...overrides });
  };

  test('ensureKey creates an aes256-gcm96 key; a data key round-trips bound to its context', async () => {
    const p = provider({ mount: 'transit' });
    vault.enableTransit('transit');
    vault.requests.length = 0;
    await p.ensureKey();
    assert.equal(vault.key('transit', 'bastion')?.type, 'aes256-gcm96');
    const dataKey = randomBytes(32);
    const wrapped = await p.wrap(dataKey, context);
    assert.equal(wrapped.provider, 'vault-transit');
    assert.equal(wrapped.kek, 'vault:bastion:v1');
    assert.match(wrapped.ciphertext, /^vault:v1:[A-Za-z0-9+/]+=*$/);
    assert.ok(!wrapped.ciphertext.includes(dataKey.toString('base64')));
    assert.deepEqual(await p.unwrap(wrapped, context), dataKey);

    const encrypt = vault.requests.find((r) => r.path === '/v1/transit/encrypt/bastion')!;
    assert.equal(encrypt.method, 'POST');
    assert.equal(encrypt.headers['x-vault-token'], token);
    assert.equal(encrypt.headers['x-vault-namespace'], 'bastion-ns');
    const body = JSON.parse(encrypt.body);
    assert.equal(body.plaintext, dataKey.toString('base64'));
    assert.equal(Buffer.from(body.associated_data, 'base64').toString(), context);
    assert.equal(body.context, undefined, 'a non-derived key binds with associated_data only');
    // Once the key exists it is not created again.
    await new VaultTransitProvider({ address, token, keyName: 'bastion', namespace: 'bastion-ns' }).ensureKey();
    assert.equal(vault.requests.filter((r) => r.method === 'POST' && r.path === '/v1/transit/keys/bastion').length, 1);
  });

  test('a wrapped key does not unwrap under another context', async () => {
    const p = provider();
    const wrapped = await p.wrap(randomBytes(32), context);
    await assert.rejects(p.unwrap(wrapped, 'bastion:data-key:identifier.1'), providerError(/context differs/));
  });

  test('altered wrapped bytes or an altered record are refused', async () => {
    const p = provider();
    const wrapped = await p.wrap(randomBytes(32), context);
    const body = wrapped.ciphertext.slice('vault:v1:'.length);
    const flipped = Buffer.from(body, 'base64');
    flipped[flipped.length - 20] ^= 0x01;
    await assert.rejects(p.unwrap({ ...wrapped, ciphertext: `vault:v1:${flipped.toString('base64')}` }, context), providerError(/altered/));
    await assert.rejects(p.unwrap({ ...wrapped, ciphertext: 'vault:v1:not base64!' }, context), providerError(/not a Vault Transit ciphertext/));
    await assert.rejects(p.unwrap({ ...wrapped, kek: 'vault:bastion:v7' }, context), providerError(/altered/));
    await assert.rejects(p.unwrap({ ...wrapped, kek: 'vault:other-key:v1' }, context), providerError(/other-key/));
    await assert.rejects(p.unwrap({ ...wrapped, provider: 'local' }, context), providerError(/local/));
  });

  test('after rotate(), new wraps use the new version and old wrapped keys still unwrap', async () => {
    const p = provider();
    const first = randomBytes(32);
    const old = await p.wrap(first, context);
    assert.equal(old.kek, 'vault:bastion:v1');
    const rotated = await p.rotate();
    assert.equal(rotated.id, 'vault:bastion:v2');
    assert.equal(rotated.current, true);
    const second = randomBytes(32);
    const fresh = await p.wrap(second, context);
    assert.equal(fresh.kek, 'vault:bastion:v2');
    assert.match(fresh.ciphertext, /^vault:v2:/);
    assert.deepEqual(await p.unwrap(old, context), first);
    assert.deepEqual(await p.unwrap(fresh, context), second);
  });

  test('versions() gives each version its creation time and exactly one current', async () => {
    const p = provider();
    await p.ensureKey();
    await p.rotate();
    await p.rotate();
    const versions = await p.versions();
    assert.deepEqual(versions.map((v) => v.id), ['vault:bastion:v1', 'vault:bastion:v2', 'vault:bastion:v3']);
    assert.deepEqual(versions.filter((v) => v.current).map((v) => v.id), ['vault:bastion:v3']);
    const mount = `transit-${keyCounter}`;
    const created = vault.key(mount, 'bastion')!.versions.map((v) => new Date(v.created * 1000).toISOString());
    assert.deepEqual(versions.map((v) => v.created), created);
    for (const v of versions) assert.match(v.created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  test('a wrong token is refused with a 403 explanation that does not contain either token', async () => {
    const good = provider();
    const wrapped = await good.wrap(randomBytes(32), context);
    const wrongToken = 'hvs.not-the-right-token-9876543210';
    const bad = new VaultTransitProvider({ address, token: wrongToken, mount: `transit-${keyCounter}`, keyName: 'bastion', namespace: 'bastion-ns' });
    const refused = (err: unknown) => providerError(/403 permission denied.*token/)(err) && !(err as Error).message.includes(wrongToken);
    await assert.rejects(bad.wrap(randomBytes(32), context), refused);
    await assert.rejects(bad.unwrap(wrapped, context), refused);
    await assert.rejects(bad.rotate(), refused);
    await assert.rejects(bad.versions(), refused);
  });

  test('the token is not shown when the provider is inspected or serialised', () => {
    const p = provider();
    assert.ok(!inspect(p, { showHidden: true, depth: 5 }).includes(token));
    assert.ok(!JSON.stringify(p).includes(token));
  });

  test('an unreachable or silent Vault is a KeyProviderError', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const gone = new VaultTransitProvider({ address: `http://127.0.0.1:${port}`, token, keyName: 'bastion' });
    await assert.rejects(gone.wrap(randomBytes(32), context), providerError(/unreachable \(ECONNREFUSED\)/));

    const silent: Server = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const slow = new VaultTransitProvider({ address: `http://127.0.0.1:${(silent.address() as { port: number }).port}`, token, keyName: 'bastion', timeoutMs: 200 });
      await assert.rejects(slow.versions(), providerError(/did not answer within 200 ms/));
    } finally {
      silent.closeAllConnections();
      silent.close();
    }
  });

  test('a sealed Vault, a missing engine and a missing key are explained', async () => {
    const p = provider();
    vault.sealed = true;
    await assert.rejects(p.wrap(randomBytes(32), context), providerError(/503 Vault is sealed/));
    vault.sealed = false;
    const noEngine = new VaultTransitProvider({ address, token, mount: 'not-mounted', keyName: 'bastion', namespace: 'bastion-ns' });
    await assert.rejects(noEngine.ensureKey(), providerError(/no Transit secrets engine at 'not-mounted\/'.*secrets enable/));
    const noKey = provider({ keyName: 'never-made' });
    await assert.rejects(noKey.versions(), providerError(/no Transit key 'never-made'/));
    await assert.rejects(noKey.unwrap({ provider: 'vault-transit', kek: 'vault:never-made:v1', ciphertext: 'vault:v1:AAAA' }, context), providerError(/no Transit key 'never-made'/));
    assert.equal(vault.key(`transit-${keyCounter}`, 'never-made'), undefined, 'unwrap does not create a key');
  });

  test('a redirect is not followed, so the token does not travel to another address', async () => {
    const elsewhere = new FakeVault({ token });
    const target = await elsewhere.start();
    try {
      const p = provider();
      vault.redirectTo = target;
      await assert.rejects(p.versions(), providerError(/redirect \(307/));
      assert.equal(elsewhere.requests.length, 0);
    } finally {
      await elsewhere.close();
    }
  });

  test('a Vault that ignores associated_data (before 1.13) is refused rather than leaving the context unbound', async () => {
    const p = provider();
    vault.ignoresAssociatedData = true;
    await assert.rejects(p.wrap(randomBytes(32), context), providerError(/ignored associated_data/));
  });

  test('a key an operator created derived binds the context as its derivation context', async () => {
    const mount = `transit-${++keyCounter}`;
    vault.enableTransit(mount);
    vault.createKey(mount, 'derived-kek', 'aes256-gcm96', true);
    const p = new VaultTransitProvider({ address, token, mount, keyName: 'derived-kek', namespace: 'bastion-ns' });
    vault.requests.length = 0;
    const dataKey = randomBytes(32);
    const wrapped = await p.wrap(dataKey, context);
    const body = JSON.parse(vault.requests.find((r) => r.path.endsWith('/encrypt/derived-kek'))!.body);
    assert.equal(Buffer.from(body.context, 'base64').toString(), context);
    assert.equal(body.associated_data, undefined);
    assert.deepEqual(await p.unwrap(wrapped, context), dataKey);
    await assert.rejects(p.unwrap(wrapped, `${context}x`), providerError(/context differs/));
  });

  test('a key that is not an AEAD encryption key is refused', async () => {
    const mount = `transit-${++keyCounter}`;
    vault.enableTransit(mount);
    vault.createKey(mount, 'rsa-kek', 'rsa-2048');
    const p = new VaultTransitProvider({ address, token, mount, keyName: 'rsa-kek', namespace: 'bastion-ns' });
    await assert.rejects(p.ensureKey(), providerError(/type rsa-2048.*AEAD/));
  });

  test('settings are checked at construction: http only to loopback, plain mount and key names', () => {
    const make = (s: Partial<VaultTransitSettings>) => () => new VaultTransitProvider({ address: 'https://vault.example.org:8200', token, keyName: 'bastion', ...s });
    assert.throws(make({ address: 'http://vault.example.org:8200' }), (err: unknown) => err instanceof KeyProviderError && /https/.test(err.message));
    assert.throws(make({ address: 'http://10.0.0.5:8200' }), KeyProviderError);
    assert.throws(make({ address: 'https://user:pw@vault.example.org' }), KeyProviderError);
    assert.throws(make({ address: 'not a url' }), KeyProviderError);
    assert.throws(make({ keyName: '../sys' }), KeyProviderError);
    assert.throws(make({ mount: 'transit/../sys' }), KeyProviderError);
    assert.throws(make({ token: '' }), KeyProviderError);
    assert.throws(make({ token: 'abc\r\nx-evil: 1' }), (err: unknown) => err instanceof KeyProviderError && !err.message.includes('abc'));
    assert.throws(make({ caFile: '/nonexistent/ca.pem' }), KeyProviderError);
    make({})();
    make({ address: 'http://127.0.0.1:8200' })();
    make({ address: 'http://localhost:8200' })();
    make({ address: 'http://[::1]:8200' })();
  });
});

describe('Vault Transit over https with a private CA', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bastion-vault-tls-'));
  let vault: FakeVault;
  let address = '';
  let caFile = '';
  before(async () => {
    const certificate = await loadOrCreateDevCertificate(dir, '127.0.0.1');
    caFile = join(dir, 'vault-ca.pem');
    writeFileSync(caFile, certificate.cert);
    vault = new FakeVault({ token, tls: certificate });
    address = await vault.start();
    vault.enableTransit();
  });
  after(async () => {
    await vault.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('caFile makes the certificate trusted; without it the connection is refused with advice', async () => {
    const trusted = new VaultTransitProvider({ address, token, keyName: 'bastion', caFile });
    const dataKey = randomBytes(32);
    const wrapped: WrappedKey = await trusted.wrap(dataKey, context);
    assert.deepEqual(await trusted.unwrap(wrapped, context), dataKey);
    assert.equal((await trusted.rotate()).id, 'vault:bastion:v2');
    const untrusted = new VaultTransitProvider({ address, token, keyName: 'bastion' });
    await assert.rejects(untrusted.versions(), providerError(/TLS certificate .* not trust.*caFile/));
  });
});
