import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalKeyring } from '../../src/crypto/providers/local-keyring.ts';
import { DataKeys, keyPurposes } from '../../src/crypto/data-keys.ts';
import { openDataKeys } from '../../src/crypto/open-keys.ts';
import { KeyProviderError } from '../../src/crypto/key-provider.ts';
import { openEncrypted } from '../../src/store/sqlite/open.ts';
import { ConfigError, loadConfig } from '../../src/config/config.ts';
import { openKeys, openStore, rekeyStoreFiles, startServer, storeFileKey } from '../../src/main.ts';

const temp = () => mkdtempSync(join(tmpdir(), 'bastion-keys-'));
const masterKey = (key: Buffer) => ({ kind: 'key' as const, key, origin: 'BASTION_MASTER_KEY' });

describe('the local keyring', () => {
  test('wraps under the current KEK; a rotated keyring still unwraps what older versions wrapped', async () => {
    const dir = temp();
    try {
      const ring = new LocalKeyring(join(dir, 'keyring.json'), masterKey(randomBytes(32)));
      await ring.open();
      const dataKey = randomBytes(32);
      const before = await ring.wrap(dataKey, 'ctx');
      assert.equal(before.kek, 'local:1');
      assert.ok(!readFileSync(join(dir, 'keyring.json')).includes(dataKey.toString('base64')));
      await ring.rotate();
      const after = await ring.wrap(dataKey, 'ctx');
      assert.equal(after.kek, 'local:2');
      assert.deepEqual(await ring.unwrap(before, 'ctx'), dataKey);
      assert.deepEqual(await ring.unwrap(after, 'ctx'), dataKey);
      const versions = await ring.versions();
      assert.deepEqual(versions.map((v) => [v.id, v.current]), [['local:1', false], ['local:2', true]]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a wrong master key, a wrong context and a flipped bit are refused with a clear error', async () => {
    const dir = temp();
    try {
      const path = join(dir, 'keyring.json');
      const ring = new LocalKeyring(path, masterKey(randomBytes(32)));
      await ring.open();
      const wrapped = await ring.wrap(randomBytes(32), 'bastion:data-key:resource-body.1');
      await assert.rejects(new LocalKeyring(path, masterKey(randomBytes(32))).open(), (e: unknown) => e instanceof KeyProviderError && /master key does not open .*keyring\.json: BASTION_MASTER_KEY is not the one/.test(e.message));
      await assert.rejects(new LocalKeyring(path, { kind: 'passphrase', passphrase: 'a long passphrase' }).open(), /made with a master key, not a passphrase/);
      await assert.rejects(ring.unwrap(wrapped, 'bastion:data-key:identifier.1'), /does not unwrap/);
      const bytes = Buffer.from(wrapped.ciphertext, 'base64');
      bytes[20] ^= 1;
      await assert.rejects(ring.unwrap({ ...wrapped, ciphertext: bytes.toString('base64') }, 'bastion:data-key:resource-body.1'), /does not unwrap/);
      await assert.rejects(ring.unwrap({ ...wrapped, kek: 'local:9' }, 'bastion:data-key:resource-body.1'), /no key-encryption key local:9/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a passphrase is stretched with scrypt; the wrong one does not open the keyring', async () => {
    const dir = temp();
    try {
      const path = join(dir, 'keyring.json');
      const ring = new LocalKeyring(path, { kind: 'passphrase', passphrase: 'correct horse battery staple' });
      await ring.open();
      const wrapped = await ring.wrap(Buffer.alloc(32, 7), 'c');
      assert.equal((JSON.parse(readFileSync(path, 'utf8')) as { master: { kdf: string } }).master.kdf, 'scrypt');
      const again = new LocalKeyring(path, { kind: 'passphrase', passphrase: 'correct horse battery staple' });
      await again.open();
      assert.deepEqual(await again.unwrap(wrapped, 'c'), Buffer.alloc(32, 7));
      await assert.rejects(new LocalKeyring(path, { kind: 'passphrase', passphrase: 'incorrect horse battery staple' }).open(), /passphrase .* is not the one/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('data keys', () => {
  test('one key per purpose, wrapped; rotation adds a current version and the old one still decrypts until retired', async () => {
    const dir = temp();
    try {
      const env = { BASTION_MASTER_KEY: randomBytes(32).toString('hex') };
      const keys = await openDataKeys(dir, { kind: 'local' }, env);
      const file = readFileSync(join(dir, 'data-keys.json'), 'utf8');
      for (const purpose of keyPurposes) {
        assert.equal(keys.current(purpose).id, `${purpose}.1`);
        assert.ok(!file.includes(keys.current(purpose).key.toString('base64')), 'only wrapped keys on disk');
        assert.ok(!file.includes(keys.current(purpose).key.toString('hex')));
      }
      assert.notDeepEqual(keys.current('identifier').key, keys.current('resource-body').key, 'separate keys');
      const old = keys.current('resource-body');
      const rotated = await keys.rotate('resource-body');
      assert.equal(rotated.id, 'resource-body.2');
      assert.equal(keys.current('resource-body').id, 'resource-body.2');
      assert.deepEqual(keys.key(old.id), old.key);
      const reopened = await openDataKeys(dir, { kind: 'local' }, env);
      assert.deepEqual(reopened.liveIds('resource-body'), ['resource-body.1', 'resource-body.2']);
      await assert.rejects(keys.retire('resource-body.2'), /current/);
      await keys.retire('resource-body.1');
      assert.throws(() => keys.key('resource-body.1'), /No data key resource-body.1/);
      assert.deepEqual((await openDataKeys(dir, { kind: 'local' }, env)).liveIds('resource-body'), ['resource-body.2']);
      await assert.rejects(openDataKeys(dir, { kind: 'local' }, { BASTION_MASTER_KEY: randomBytes(32).toString('hex') }), /master key does not open/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a KEK rotation re-wraps the data keys; data keys are unchanged', async () => {
    const dir = temp();
    try {
      const env = { BASTION_MASTER_KEY: randomBytes(32).toString('hex') };
      const keys = await openDataKeys(dir, { kind: 'local' }, env);
      const before = keys.current('identifier').key;
      await keys.provider.rotate();
      assert.equal(await keys.rewrap(), keyPurposes.length);
      const file = JSON.parse(readFileSync(join(dir, 'data-keys.json'), 'utf8')) as { keys: Record<string, { wrapped: { kek: string } }[]> };
      assert.ok(Object.values(file.keys).flat().every((v) => v.wrapped.kek === 'local:2'));
      const reopened = await openDataKeys(dir, { kind: 'local' }, env);
      assert.deepEqual(reopened.current('identifier').key, before);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a data dir from before the keyring keeps its store readable; the plain store.key is gone', async () => {
    const dir = temp();
    try {
      const legacy = randomBytes(32);
      writeFileSync(join(dir, 'store.key'), legacy.toString('hex') + '\n', { mode: 0o600 });
      const db = openEncrypted(join(dir, 'bastion.db'), legacy);
      db.exec('CREATE TABLE t (x); INSERT INTO t VALUES (42)');
      db.close();
      const keys = await openKeys(dir);
      assert.ok(!existsSync(join(dir, 'store.key')));
      assert.deepEqual(keys.current('store-file').key, legacy);
      const again = openEncrypted(join(dir, 'bastion.db'), storeFileKey(dir, await openKeys(dir), 'bastion.db'));
      assert.deepEqual(again.prepare('SELECT x FROM t').get(), { x: 42 });
      again.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('wrong key provider or master key at start: a clear configuration error, nothing opened', async () => {
    const dir = temp();
    try {
      await (await openStore(dir)).close();
      const config = loadConfig({ port: 0, dataDir: dir }, { BASTION_AUTH: 'off', BASTION_TLS: 'off' });
      // Secrets come from the process environment only.
      process.env.BASTION_MASTER_KEY = randomBytes(32).toString('hex');
      try {
        await assert.rejects(startServer(config), (e: unknown) => e instanceof ConfigError && /^Keys: The master key does not open/.test(e.message));
      } finally {
        delete process.env.BASTION_MASTER_KEY;
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

test('a rotated store-file key: the server re-keys the store files at start; the old key opens nothing', async () => {
  const dir = temp();
  try {
    const store = await openStore(dir);
    await store.transaction((tx) => tx.create({ resourceType: 'Patient', id: 'p1', name: [{ family: 'Rekeyed' }] }));
    await store.close();
    const keys = await openKeys(dir);
    const old = keys.current('store-file');
    const fresh = await keys.rotate('store-file');
    assert.equal(storeFileKey(dir, keys, 'bastion.db').toString('hex'), old.key.toString('hex'), 'still under the old key until re-keyed');
    assert.deepEqual(rekeyStoreFiles(dir, keys), ['bastion.db', 'bastion-audit.db']);
    assert.throws(() => openEncrypted(join(dir, 'bastion.db'), old.key), /cannot be decrypted/);
    assert.throws(() => openEncrypted(join(dir, 'bastion-audit.db'), old.key), /cannot be decrypted/);
    const reopened = await openStore(dir);
    assert.match((await reopened.read('Patient', 'p1'))?.json ?? '', /Rekeyed/);
    await reopened.close();
    assert.equal(storeFileKey(dir, await openKeys(dir), 'bastion.db').toString('hex'), fresh.key.toString('hex'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('DataKeys refuses a damaged key file', async () => {
  const dir = temp();
  try {
    writeFileSync(join(dir, 'data-keys.json'), '{"format":"something else"}');
    await assert.rejects(DataKeys.open(join(dir, 'data-keys.json'), new LocalKeyring(join(dir, 'keyring.json'), masterKey(randomBytes(32)))), /not a Bastion data key file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
