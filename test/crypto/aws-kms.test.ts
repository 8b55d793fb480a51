import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { inspect } from 'node:util';
import { KeyProviderError } from '../../src/crypto/key-provider.ts';
import { AwsKmsProvider, type AwsKmsSettings } from '../../src/crypto/providers/aws-kms.ts';
import { FakeKms } from './fake-kms.ts';

// Runs against FakeKms, a loopback stand-in that verifies every SigV4 signature (see fake-kms.ts).

const credentials = { accessKeyId: 'AKIDBASTIONKMSTEST01', secretAccessKey: 'bastion-kms-test-secret/0123456789abcdef', sessionToken: 'bastion-session-token-abcdef' };
const region = 'eu-central-1';
const account = '111122223333';
const context = 'bastion:data-key:resource-body.2';

/** A KeyProviderError whose message matches `pattern` and shows no secret. */
const providerError = (pattern: RegExp, ...secrets: string[]) => (err: unknown) => {
  assert.ok(err instanceof KeyProviderError, `expected a KeyProviderError, got ${String(err)}`);
  assert.match(err.message, pattern);
  for (const secret of [credentials.secretAccessKey, credentials.sessionToken, ...secrets]) assert.ok(!err.message.includes(secret), 'no secret in the message');
  return true;
};

describe('AWS KMS key provider', () => {
  const kms = new FakeKms({ region, account, credentials, pageSize: 2 });
  let endpoint = '';
  before(async () => {
    endpoint = await kms.start();
  });
  after(() => kms.close());
  beforeEach(() => kms.denied.clear());

  let aliases = 0;
  /** A provider for a fresh KMS key, named by its alias as a deployment would. */
  const provider = (overrides: Partial<AwsKmsSettings> = {}, createdAt?: number) => {
    const alias = `alias/bastion-${++aliases}`;
    const key = kms.createKey(alias, createdAt);
    return { key, p: new AwsKmsProvider({ region, keyId: alias, endpoint, credentials, ...overrides }) };
  };

  test('a data key round-trips; requests are SigV4-signed TrentService calls with the context as encryption context', async () => {
    const { key, p } = provider();
    kms.requests.length = 0;
    const dataKey = randomBytes(32);
    const wrapped = await p.wrap(dataKey, context);
    assert.equal(wrapped.provider, 'aws-kms');
    assert.equal(wrapped.kek, `${key.arn}#${kms.materialOf(wrapped.ciphertext)}`);
    assert.match(wrapped.ciphertext, /^[A-Za-z0-9+/]+=*$/);
    assert.deepEqual(await p.unwrap(wrapped, context), dataKey);

    const [encrypt, check, decrypt] = kms.requests;
    assert.equal(encrypt.target, 'TrentService.Encrypt');
    assert.equal(encrypt.headers['content-type'], 'application/x-amz-json-1.1');
    assert.match(String(encrypt.headers.authorization), new RegExp(`^AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/\\d{8}/${region}/kms/aws4_request, SignedHeaders=[^,]*x-amz-target`));
    assert.equal(encrypt.headers['x-amz-security-token'], credentials.sessionToken);
    assert.deepEqual(encrypt.input, { KeyId: `alias/bastion-${aliases}`, Plaintext: dataKey.toString('base64'), EncryptionContext: { bastion: context } });
    // wrap proves at once that the key it made can be unwrapped.
    assert.equal(check.target, 'TrentService.Decrypt');
    assert.equal(decrypt.target, 'TrentService.Decrypt');
    assert.deepEqual(decrypt.input, { CiphertextBlob: wrapped.ciphertext, KeyId: key.arn, EncryptionContext: { bastion: context } });
    for (const r of kms.requests) assert.ok(!JSON.stringify(r.headers).includes(credentials.secretAccessKey));
  });

  test('a wrapped key does not unwrap under another context', async () => {
    const { p } = provider();
    const wrapped = await p.wrap(randomBytes(32), context);
    await assert.rejects(p.unwrap(wrapped, 'bastion:data-key:identifier.1'), providerError(/context differs.*InvalidCiphertextException/));
  });

  test('altered wrapped bytes or an altered record are refused', async () => {
    const { p } = provider();
    const wrapped = await p.wrap(randomBytes(32), context);
    const blob = Buffer.from(wrapped.ciphertext, 'base64');
    blob[blob.length - 1] ^= 0x01;
    await assert.rejects(p.unwrap({ ...wrapped, ciphertext: blob.toString('base64') }, context), providerError(/altered.*InvalidCiphertextException/));
    await assert.rejects(p.unwrap({ ...wrapped, ciphertext: 'not base64!' }, context), providerError(/not a KMS ciphertext/));
    await assert.rejects(p.unwrap({ ...wrapped, kek: 'alias/bastion' }, context), providerError(/not a KMS key ARN/));
    const other = kms.createKey();
    await assert.rejects(p.unwrap({ ...wrapped, kek: other.arn }, context), providerError(/different KMS key.*IncorrectKeyException/));
    const [arn] = wrapped.kek.split('#');
    await assert.rejects(p.unwrap({ ...wrapped, kek: `${arn}#${'ab'.repeat(32)}` }, context), providerError(/record was altered/));
    await assert.rejects(p.unwrap({ ...wrapped, provider: 'vault-transit' }, context), providerError(/vault-transit/));
  });

  test('after rotate(), new wraps use the new key material and old wrapped keys still unwrap', async () => {
    const { key, p } = provider();
    const first = randomBytes(32);
    const old = await p.wrap(first, context);
    const rotated = await p.rotate();
    assert.equal(rotated.current, true);
    assert.notEqual(rotated.id, old.kek);
    const second = randomBytes(32);
    const fresh = await p.wrap(second, context);
    assert.equal(fresh.kek, rotated.id, 'the new wrap names the new current version');
    assert.ok(fresh.kek.startsWith(`${key.arn}#`));
    assert.deepEqual(await p.unwrap(old, context), first);
    assert.deepEqual(await p.unwrap(fresh, context), second);
    assert.ok((await p.versions()).some((v) => v.id === old.kek && !v.current), 'the old wrap names a version still listed');
  });

  test('versions(): the key creation and each rotation, with their times, exactly one current (across pages)', async () => {
    const createdAt = Date.parse('2025-01-15T08:00:00.000Z');
    const { key, p } = provider({}, createdAt);
    const before = await p.versions();
    assert.equal(before.length, 1);
    assert.equal(before[0].created, '2025-01-15T08:00:00.000Z');
    assert.equal(before[0].current, true);
    const wrapped = await p.wrap(randomBytes(32), context);
    assert.equal(wrapped.kek, before[0].id, 'a key never rotated: the wrap names its only version');
    for (let i = 0; i < 3; i++) await p.rotate();
    const versions = await p.versions();
    assert.equal(versions.length, 4, 'listed over two pages of two');
    assert.ok(versions.every((v) => v.id.startsWith(`${key.arn}#`)));
    assert.equal(new Set(versions.map((v) => v.id)).size, 4);
    assert.equal(versions[0].id, before[0].id);
    assert.equal(versions[0].created, '2025-01-15T08:00:00.000Z');
    assert.deepEqual(versions.map((v) => v.current), [false, false, false, true]);
    for (const v of versions.slice(1)) assert.ok(Date.now() - Date.parse(v.created) < 60_000, 'a rotation is dated when it happened');
    assert.deepEqual([...versions.map((v) => v.created)].sort(), versions.map((v) => v.created));
  });

  test('rotate() waits for KMS to complete the rotation in the background', async () => {
    const lagging = new FakeKms({ region, account, credentials, rotationLagMs: 600 });
    const url = await lagging.start();
    try {
      lagging.createKey('alias/lagging');
      const p = new AwsKmsProvider({ region, keyId: 'alias/lagging', endpoint: url, credentials });
      const first = (await p.versions())[0];
      const started = Date.now();
      const rotated = await p.rotate();
      assert.ok(Date.now() - started >= 500, 'it waited for the rotation');
      assert.notEqual(rotated.id, first.id);
      assert.equal((await p.wrap(randomBytes(32), context)).kek, rotated.id);
      const slow = new AwsKmsProvider({ region, keyId: 'alias/lagging', endpoint: url, credentials, rotationWaitMs: 100 });
      await assert.rejects(slow.rotate(), providerError(/had not completed it/));
    } finally {
      await lagging.close();
    }
  });

  test('wrong credentials are refused with an explanation that contains no secret', async () => {
    const { p } = provider();
    const wrapped = await p.wrap(randomBytes(32), context);
    const keyId = `alias/bastion-${aliases}`;
    const wrongSecret = 'not-the-secret-at-all/9876543210';
    const badSecret = new AwsKmsProvider({ region, keyId, endpoint, credentials: { ...credentials, secretAccessKey: wrongSecret } });
    await assert.rejects(badSecret.wrap(randomBytes(32), context), providerError(/secret access key does not match.*InvalidSignatureException/, wrongSecret));
    await assert.rejects(badSecret.unwrap(wrapped, context), providerError(/InvalidSignatureException/, wrongSecret));
    const badId = new AwsKmsProvider({ region, keyId, endpoint, credentials: { ...credentials, accessKeyId: 'AKIDUNKNOWN000000000' } });
    await assert.rejects(badId.versions(), providerError(/does not recognise the access key id.*UnrecognizedClientException/));
    const badToken = new AwsKmsProvider({ region, keyId, endpoint, credentials: { ...credentials, sessionToken: 'stale-session-token-000' } });
    await assert.rejects(badToken.rotate(), providerError(/UnrecognizedClientException/, 'stale-session-token-000'));
    const otherRegion = new AwsKmsProvider({ region: 'us-east-1', keyId, endpoint, credentials });
    await assert.rejects(otherRegion.versions(), providerError(/InvalidSignatureException/));
  });

  test('a policy that allows Encrypt but not Decrypt fails the wrap, before a data key depends on it', async () => {
    const { p } = provider();
    kms.denied.add('Decrypt');
    await assert.rejects(p.wrap(randomBytes(32), context), providerError(/check that it can unwrap.*does not allow.*AccessDeniedException: User: arn:aws:iam::111122223333:user\/bastion is not authorized to perform: kms:Decrypt/));
  });

  test('the credentials are not shown when the provider is inspected or serialised', () => {
    const { p } = provider();
    const shown = inspect(p, { showHidden: true, depth: 5 }) + JSON.stringify(p);
    assert.ok(!shown.includes(credentials.secretAccessKey) && !shown.includes(credentials.sessionToken));
  });

  test('an unreachable or silent KMS is a KeyProviderError; an unknown key is explained', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const gone = new AwsKmsProvider({ region, keyId: 'alias/bastion', endpoint: `http://127.0.0.1:${port}`, credentials });
    await assert.rejects(gone.wrap(randomBytes(32), context), providerError(/KMS at http:\/\/127\.0\.0\.1:\d+ is unreachable \(ECONNREFUSED\)/));

    const silent = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const slow = new AwsKmsProvider({ region, keyId: 'alias/bastion', endpoint: `http://127.0.0.1:${(silent.address() as { port: number }).port}`, credentials, timeoutMs: 200 });
      await assert.rejects(slow.versions(), providerError(/did not answer within 200 ms/));
    } finally {
      silent.closeAllConnections();
      silent.close();
    }
    const missing = new AwsKmsProvider({ region, keyId: 'alias/never-made', endpoint, credentials });
    await assert.rejects(missing.wrap(randomBytes(32), context), providerError(/no such key.*NotFoundException/));
  });

  test('a KMS without key material ids: the KEK id is the key ARN and versions are told apart by date', async () => {
    const legacy = new FakeKms({ region, account, credentials, legacy: true });
    const url = await legacy.start();
    try {
      const key = legacy.createKey('alias/legacy');
      const p = new AwsKmsProvider({ region, keyId: 'alias/legacy', endpoint: url, credentials });
      const dataKey = randomBytes(32);
      const old = await p.wrap(dataKey, context);
      assert.equal(old.kek, key.arn);
      await p.rotate();
      const versions = await p.versions();
      assert.equal(versions.length, 2);
      assert.deepEqual(versions.map((v) => v.current), [false, true]);
      assert.equal(new Set(versions.map((v) => v.id)).size, 2);
      assert.deepEqual(await p.unwrap(old, context), dataKey);
    } finally {
      await legacy.close();
    }
  });

  test('settings are checked at construction: https (http only to loopback), a region, credentials', () => {
    const make = (s: Partial<AwsKmsSettings>) => () => new AwsKmsProvider({ region, keyId: 'alias/bastion', credentials, ...s });
    assert.throws(make({ endpoint: 'http://kms.example.org' }), (err: unknown) => err instanceof KeyProviderError && /https/.test(err.message));
    assert.throws(make({ endpoint: 'http://192.168.1.10:4566' }), KeyProviderError);
    assert.throws(make({ endpoint: 'https://user:pw@kms.example.org' }), KeyProviderError);
    assert.throws(make({ region: 'Europe' }), KeyProviderError);
    assert.throws(make({ keyId: '' }), KeyProviderError);
    assert.throws(make({ credentials: { accessKeyId: '', secretAccessKey: 'x' } }), KeyProviderError);
    assert.throws(make({ credentials: { ...credentials, secretAccessKey: 'has a\nnewline' } }), (err: unknown) => err instanceof KeyProviderError && !err.message.includes('newline'));
    make({})();
    make({ endpoint: 'https://vpce-0123.kms.eu-central-1.vpce.amazonaws.com' })();
    make({ endpoint: 'http://127.0.0.1:4566' })();
    make({ endpoint: 'http://localhost:4566' })();
  });
});
