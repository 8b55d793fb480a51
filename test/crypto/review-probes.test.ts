// Review probes for "encryption and keys" (HIPAA 164.312(a)(2)(iv) and (e)).
// Each finding's probe failed before its fix; the other probes are deny paths and crypto bindings found sound. All must keep passing.
// The others are deny paths and crypto bindings checked and found sound: they must keep passing.
import { after, before, describe, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import fs, { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { randomBytes } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { get as httpGet } from 'node:http';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/config.ts';
import { openKeys, openStore, startServer, type Server } from '../../src/main.ts';
import { openDataKeys } from '../../src/crypto/open-keys.ts';
import { DataKeys } from '../../src/crypto/data-keys.ts';
import { VaultTransitProvider } from '../../src/crypto/providers/vault-transit.ts';
import { ResourceCodec, UnreadableContentError } from '../../src/store/resource-codec.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { openEncrypted } from '../../src/store/sqlite/open.ts';
import { redactIdentifierValues } from '../../src/audit/redact-query.ts';
import { describeMember, extractArchive, readArchiveHeader, writeArchive, archiveFormat, type ArchiveHeader } from '../../src/crypto/backup-archive.ts';
import { backupDataDir, restoreDataDir } from '../../src/cli/backup.ts';
import { registerClient } from '../../src/auth/clients.ts';
import type { Resource } from '../../src/fhir/types.ts';
import { storeKey } from '../store-key.ts';
import { openssl, type KeyAndCert } from '../pki.ts';
import { useSmartServer } from '../auth/smart-server.ts';
import { useServer, call } from '../rest/server.ts';

const ssnSystem = 'http://hl7.org/fhir/sid/us-ssn';
const scratch: string[] = [];
const tempDir = (label: string) => {
  const d = mkdtempSync(join(tmpdir(), `bastion-probe-${label}-`));
  scratch.push(d);
  return d;
};
after(() => {
  for (const d of scratch) rmSync(d, { recursive: true, force: true });
});

/** Every cell of every table of a (stopped) data dir's store file, as text, per table. */
async function rawTables(dir: string, file: 'bastion.db' | 'bastion-audit.db' = 'bastion.db'): Promise<Record<string, string>> {
  const db = openEncrypted(join(dir, file), await storeKey(dir, file), { readonly: true });
  try {
    const tables = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).pluck().all() as string[];
    const out: Record<string, string> = {};
    for (const t of tables) {
      try {
        out[t] = (db.prepare(`SELECT * FROM "${t}"`).raw().all() as unknown[][]).flat()
          .map((v) => (Buffer.isBuffer(v) ? v.toString('latin1') : String(v))).join('\u0001');
      } catch {
        // a virtual table's internals: its own shadow tables are read instead
      }
    }
    return out;
  } finally {
    db.close();
  }
}
const tablesHolding = (dump: Record<string, string>, needle: string) => Object.entries(dump).filter(([, v]) => v.includes(needle)).map(([k]) => k);

async function plainServer(dir: string, env: Record<string, string> = {}): Promise<Server> {
  return startServer(loadConfig({ port: 0, dataDir: dir }, { BASTION_AUTH: 'off', BASTION_TLS: 'off', ...env }));
}
const put = (base: string, type: string, id: string, body: object) =>
  call(`${base}/${type}/${id}`, { method: 'PUT', json: { resourceType: type, id, ...body } });

// ---------------------------------------------------------------------------------------------
// Keys: lifecycle, rotation beside a running server, durability
// ---------------------------------------------------------------------------------------------

describe('key lifecycle', () => {
  test('finding 1: a KEK rotation (bastion keys rotate, default) beside a running server leaves it able to write', async () => {
    const dir = tempDir('kek-live');
    const server = await plainServer(dir);
    try {
      assert.equal((await put(server.baseUrl, 'Patient', 'k1', { identifier: [{ system: ssnSystem, value: '900-10-0001' }] })).status, 201);
      await server.reencryption.idle();
      // What `bastion keys rotate` does while the server runs (src/cli/keys.ts rotate), in another DataKeys/LocalKeyring.
      const cli = await openKeys(dir);
      await cli.provider.rotate();
      await cli.rewrap();
      await cli.rotate('identifier');
      // What the server's watcher of data-keys.json calls within two seconds.
      await (server.reencryption as unknown as { keysChanged(): Promise<void> }).keysChanged();
      await server.reencryption.idle();
      const held = (server.reencryption as unknown as { keys: DataKeys }).keys.current('identifier');
      const written = await put(server.baseUrl, 'Patient', 'k2', { identifier: [{ system: ssnSystem, value: '900-10-0002' }] });
      assert.equal(written.status, 201, `a write after the rotation: ${written.status} (the server's current identifier key is ${held.id}, plaintext ${held.key === undefined ? 'MISSING' : 'present'})`);
      assert.equal((await call(`${server.baseUrl}/Patient/k1`)).status, 200);
    } finally {
      await server.close();
    }
  });

  test('finding 7: data-keys.json is read-modify-written from memory: a retire() by the server erases a rotation another process just saved', async () => {
    const dir = tempDir('lost-update');
    const env = { BASTION_MASTER_KEY: randomBytes(32).toString('hex') };
    const cli = await openDataKeys(dir, { kind: 'local' }, env);
    await cli.rotate('resource-body');
    const server = await openDataKeys(dir, { kind: 'local' }, env); // the server's copy, before its next reload
    await cli.rotate('identifier'); // `bastion keys rotate --purpose identifier`
    server.retire('resource-body.1'); // its re-encryption pass just finished
    const reopened = await openDataKeys(dir, { kind: 'local' }, env);
    assert.deepEqual(reopened.liveIds('identifier'), ['identifier.1', 'identifier.2'], 'the CLI\'s rotation is still there');
  });

  test('finding 8: converting a legacy store.key makes data-keys.json durable before store.key is removed', async () => {
    const dir = tempDir('legacy');
    writeFileSync(join(dir, 'store.key'), randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
    const events: string[] = [];
    type Fn = (...args: unknown[]) => unknown;
    const target = fs as unknown as Record<string, Fn>;
    const real = { fsyncSync: target.fsyncSync, fdatasyncSync: target.fdatasyncSync, writeFileSync: target.writeFileSync, rmSync: target.rmSync };
    const spy = (name: keyof typeof real, note: (args: unknown[]) => string | undefined) => mock.method(target, name, (...args: unknown[]) => {
      const event = note(args);
      if (event) events.push(event);
      return real[name](...args);
    });
    spy('fsyncSync', () => 'fsync');
    spy('fdatasyncSync', () => 'fsync');
    spy('writeFileSync', ([path, , options]) => (String(path).includes('data-keys.json') && (options as { flush?: boolean } | undefined)?.flush === true ? 'fsync' : undefined));
    spy('rmSync', ([path]) => (String(path).endsWith('store.key') ? 'rm store.key' : undefined));
    syncBuiltinESMExports();
    try {
      await openDataKeys(dir, { kind: 'local' }, { BASTION_MASTER_KEY: randomBytes(32).toString('hex') });
    } finally {
      mock.restoreAll();
      syncBuiltinESMExports();
    }
    assert.ok(!existsSync(join(dir, 'store.key')), 'converted');
    const removed = events.indexOf('rm store.key');
    assert.ok(removed > 0 && events.slice(0, removed).includes('fsync'), `the new key file is synced before the old one goes (${events.join(', ')})`);
  });

  test('legacy store.key converts to the store-file key and the keys derived from it (cookie, pseudonym)', async () => {
    const dir = tempDir('legacy-ok');
    const legacy = randomBytes(32);
    writeFileSync(join(dir, 'store.key'), legacy.toString('hex') + '\n', { mode: 0o600 });
    const env = { BASTION_MASTER_KEY: randomBytes(32).toString('hex') };
    const keys = await openDataKeys(dir, { kind: 'local' }, env);
    assert.ok(keys.current('store-file').key.equals(legacy));
    assert.ok(!existsSync(join(dir, 'store.key')));
    const again = await openDataKeys(dir, { kind: 'local' }, env);
    assert.ok(again.current('store-file').key.equals(legacy), 'stable across opens');
  });

  test('a wrapped data key moved to another purpose or version does not unwrap; the current key cannot be retired', async () => {
    const dir = tempDir('wrap-context');
    const env = { BASTION_MASTER_KEY: randomBytes(32).toString('hex') };
    await openDataKeys(dir, { kind: 'local' }, env);
    const path = join(dir, 'data-keys.json');
    const file = JSON.parse(readFileSync(path, 'utf8'));
    file.keys['blind-index'][0].wrapped = file.keys.identifier[0].wrapped;
    writeFileSync(path, JSON.stringify(file));
    await assert.rejects(openDataKeys(dir, { kind: 'local' }, env), /does not unwrap/);
    const dir2 = tempDir('retire-current');
    const keys = await openDataKeys(dir2, { kind: 'local' }, env);
    await assert.rejects(keys.retire('identifier.1'), /current/);
  });

  test('a wrong master key is refused with a message that names no key material', async () => {
    const dir = tempDir('wrong-master');
    const key = randomBytes(32).toString('hex');
    await openDataKeys(dir, { kind: 'local' }, { BASTION_MASTER_KEY: key });
    const other = randomBytes(32).toString('hex');
    await assert.rejects(openDataKeys(dir, { kind: 'local' }, { BASTION_MASTER_KEY: other }), (err: Error) => {
      assert.match(err.message, /does not open/);
      assert.ok(!err.message.includes(other) && !err.message.includes(key));
      return true;
    });
  });

  test('secrets are refused in keyProvider settings and unknown (secret) settings in a config file', () => {
    assert.throws(() => loadConfig({}, { BASTION_KEY_PROVIDER: JSON.stringify({ kind: 'vault-transit', address: 'https://v', keyName: 'k', token: 's.x' }) }), /environment/);
    const dir = tempDir('config-file');
    const file = join(dir, 'bastion.json');
    writeFileSync(file, JSON.stringify({ masterKey: '11'.repeat(32) }));
    assert.throws(() => loadConfig({}, {}, file), /unknown setting "masterKey"/);
    assert.throws(() => new VaultTransitProvider({ address: 'http://vault.example:8200', token: 't', keyName: 'k' }), /https/);
  });
});

const bin = new URL('../../bin/bastion.js', import.meta.url).pathname;
const cli = (env: Record<string, string>, ...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, BASTION_MASTER_KEY: '', BASTION_MASTER_PASSPHRASE: '', ...env } });

describe('key custody and the console', () => {
  test('finding 12: bastion compliance reports a master.key left in the data dir even when BASTION_MASTER_KEY is set', async () => {
    const dir = tempDir('custody');
    await openDataKeys(dir, { kind: 'local' }, {});
    const masterKey = readFileSync(join(dir, 'master.key'), 'utf8').trim();
    const r = cli({ BASTION_DATA_DIR: dir, BASTION_MASTER_KEY: masterKey }, 'compliance', '--json');
    const findings = (JSON.parse(r.stdout) as { findings: { severity: string; message: string }[] }).findings;
    assert.ok(findings.some((f) => f.severity === 'high' && /master\.key/.test(f.message)), JSON.stringify(findings));
  });

  test('finding 13: an offline `bastion keys rotate` keeps stored bodies sealed whatever the console\'s own environment says', async () => {
    const dir = tempDir('cli-settings');
    const store = await openStore(dir, undefined, { encryptResourceBodies: true });
    await store.transaction((tx) => tx.create({ resourceType: 'Patient', id: 's1', name: [{ family: 'Sealedbody' }] } as Resource & { id: string }));
    await store.close();
    const r = cli({ BASTION_DATA_DIR: dir, BASTION_ENCRYPT_RESOURCE_BODIES: '' }, 'keys', 'rotate', '--purpose', 'resource-body');
    assert.notEqual(r.status, 0, 'refused rather than unsealing');
    assert.match(r.stderr, /stored bodies are sealed/);
    const db = openEncrypted(join(dir, 'bastion.db'), await storeKey(dir), { readonly: true });
    let contents: unknown[];
    try {
      contents = db.prepare('SELECT content FROM resource_versions WHERE content IS NOT NULL').pluck().all();
    } finally {
      db.close();
    }
    assert.ok(contents.every((c) => Buffer.isBuffer(c)), `stored bodies after the rotation: ${contents.map((c) => (Buffer.isBuffer(c) ? 'sealed' : 'CLEAR')).join(', ')}`);
  });
});

// ---------------------------------------------------------------------------------------------
// Data at rest: the codec's bindings, the reserved extension, what reaches the store in clear
// ---------------------------------------------------------------------------------------------

describe('resource codec bindings', () => {
  let keys: DataKeys;
  let codec: ResourceCodec;
  before(async () => {
    keys = await openDataKeys(tempDir('codec'), { kind: 'local' }, { BASTION_MASTER_KEY: randomBytes(32).toString('hex') });
    codec = new ResourceCodec(keys, { encryptBodies: true });
  });
  const patient = (id: string, ssn: string) => ({ resourceType: 'Patient', id, identifier: [{ system: ssnSystem, value: ssn }] }) as Resource & { id: string };

  test('a sealed body moved to another resource or version, or relabelled with another key version, does not open', () => {
    const a = codec.encode(patient('a', '900-20-0001'), 1).content as Buffer;
    assert.throws(() => codec.decode('Patient', 'b', 1, a), UnreadableContentError);
    assert.throws(() => codec.decode('Patient', 'a', 2, a), UnreadableContentError);
    const relabelled = Buffer.from(a);
    relabelled.writeUInt32BE(2, 2);
    assert.throws(() => codec.decode('Patient', 'a', 1, relabelled), UnreadableContentError);
    assert.throws(() => codec.decode('Patient', 'a', 1, a.subarray(0, a.length - 1)), UnreadableContentError, 'truncated');
    assert.equal(JSON.parse(codec.decode('Patient', 'a', 1, a)).identifier[0].value, '900-20-0001');
  });

  test('an encrypted identifier copied into another resource does not decrypt; two seals never share a nonce', () => {
    const plain = new ResourceCodec(keys);
    const a = plain.encode(patient('a', '900-20-0002'), 1).content as string;
    const moved = a.replace('"id":"a"', '"id":"b"');
    assert.throws(() => plain.decode('Patient', 'b', 1, moved), UnreadableContentError);
    const x = codec.encode(patient('a', '900-20-0003'), 1).content as Buffer;
    const y = codec.encode(patient('a', '900-20-0003'), 1).content as Buffer;
    assert.ok(!x.subarray(6, 18).equals(y.subarray(6, 18)));
  });

  test('finding 2: a client-written `urn:bastion:encrypted-identifier` extension is refused on write, or harmless', async () => {
    const store = new SqliteStore({ path: join(tempDir('poison'), 'p.db'), key: randomBytes(32), codec: new ResourceCodec(keys) });
    try {
      const poison = {
        resourceType: 'Patient', id: 'poison',
        identifier: [{ system: 'urn:example:badge', _value: { extension: [{ url: 'urn:bastion:encrypted-identifier', valueBase64Binary: 'AAAA' }] } }],
      } as unknown as Resource & { id: string };
      let refused = false;
      try {
        await store.transaction((tx) => tx.create(poison));
      } catch {
        refused = true;
      }
      if (refused) return;
      await keys.rotate('identifier');
      const done = await store.reencrypt!();
      assert.ok(done.examined >= 1);
    } finally {
      await store.close();
    }
  });
});

describe('REST: reserved extension, search side channels, audit redaction', () => {
  const t = useServer();
  const ssn = '900-30-0001';

  test('finding 2 (REST): a resource carrying the reserved extension is refused (4xx) or stays readable', async () => {
    const created = await call(`${t.base}/Patient`, {
      method: 'POST',
      json: { resourceType: 'Patient', identifier: [{ system: 'urn:example:badge', _value: { extension: [{ url: 'urn:bastion:encrypted-identifier', valueBase64Binary: 'AAAA' }] } }] },
    });
    if (created.status >= 400 && created.status < 500) return;
    assert.equal(created.status, 201, created.text);
    const read = await call(`${t.base}/Patient/${created.body.id}`);
    assert.equal(read.status, 200, `read: ${read.status}`);
  });

  test('an SSN held only in Patient.identifier: exact search finds it; _content, :text, _sort and other systems do not reveal it', async () => {
    assert.equal((await put(t.base, 'Patient', 'side', { name: [{ family: 'Sidechannel' }], identifier: [{ system: ssnSystem, value: ssn, type: { text: 'social' } }] })).status, 201);
    const count = async (q: string) => {
      const r = await call(`${t.base}/Patient?${q}`);
      assert.equal(r.status, 200, `${q}: ${r.text.slice(0, 200)}`);
      return (r.body.entry ?? []).length as number;
    };
    assert.equal(await count(`identifier=${encodeURIComponent(`${ssnSystem}|${ssn}`)}`), 1);
    assert.equal(await count(`identifier=${encodeURIComponent(ssn)}`), 1);
    assert.equal(await count(`_content=${encodeURIComponent(ssn)}`), 0);
    assert.equal(await count(`_content=900`), 0);
    assert.equal(await count(`identifier=${encodeURIComponent(`urn:other|${ssn}`)}`), 0);
    const sorted = await call(`${t.base}/Patient?_id=side&_sort=identifier`);
    if (sorted.status === 200) assert.ok(!JSON.stringify(sorted.body.link ?? []).includes(ssn));
    else assert.ok(sorted.status >= 400 && sorted.status < 500, sorted.text);
  });

  test('finding 9: chained and reverse-chained searches on a sensitive identifier find what an exact search finds', async () => {
    await put(t.base, 'Patient', 'chain-p', { identifier: [{ system: ssnSystem, value: '900-30-0009' }] });
    await put(t.base, 'Observation', 'chain-o', { status: 'final', code: { text: 'probe' }, subject: { reference: 'Patient/chain-p' } });
    const chained = await call(`${t.base}/Observation?subject:Patient.identifier=${encodeURIComponent(`${ssnSystem}|900-30-0009`)}`);
    assert.equal(chained.status, 200, chained.text);
    assert.equal((chained.body.entry ?? []).length, 1, 'chain');
  });
});

describe('what reaches the store file in clear', () => {
  test('finding 6: an SSN in a Reference.identifier or a contained Patient is not stored or indexed in clear', async () => {
    const dir = tempDir('reference-ssn');
    const server = await plainServer(dir);
    let contentHits = -1;
    try {
      const a = await call(`${server.baseUrl}/Observation`, { method: 'POST', json: { resourceType: 'Observation', status: 'final', code: { text: 'probe' }, subject: { identifier: { system: ssnSystem, value: '900-40-4242' } } } });
      assert.equal(a.status, 201, a.text);
      const b = await call(`${server.baseUrl}/Observation`, {
        method: 'POST',
        json: { resourceType: 'Observation', status: 'final', code: { text: 'probe' }, contained: [{ resourceType: 'Patient', id: 'p', identifier: [{ system: ssnSystem, value: '900-40-4343' }] }], subject: { reference: '#p' } },
      });
      assert.equal(b.status, 201, b.text);
      contentHits = ((await call(`${server.baseUrl}/Observation?_content=900-40-4242`)).body?.entry ?? []).length;
    } finally {
      await server.close();
    }
    const dump = await rawTables(dir);
    const found = { reference: tablesHolding(dump, '900-40-4242'), contained: tablesHolding(dump, '900-40-4343'), contentHits };
    assert.deepEqual(found, { reference: [], contained: [], contentHits: 0 }, 'tables holding an SSN in clear, and what _content=<SSN> finds');
  });

  test('finding 5: adding a sensitiveIdentifiers expression protects the values already stored', async () => {
    const dir = tempDir('new-expression');
    let server = await plainServer(dir);
    try {
      assert.equal((await put(server.baseUrl, 'Patient', 'dl', { identifier: [{ system: 'urn:example:driver-license', value: 'DL-7788-SECRET' }] })).status, 201);
      await server.reencryption.idle();
    } finally {
      await server.close();
    }
    const expressions = JSON.stringify([
      "identifier.where(system = 'http://hl7.org/fhir/sid/us-ssn')",
      "identifier.where(type.coding.where(system = 'http://terminology.hl7.org/CodeSystem/v2-0203' and (code = 'SS' or code = 'MR')).exists())",
      "identifier.where(system = 'urn:example:driver-license')",
    ]);
    server = await plainServer(dir, { BASTION_SENSITIVE_IDENTIFIERS: expressions });
    try {
      await server.reencryption.idle();
      const read = await call(`${server.baseUrl}/Patient/dl`);
      assert.equal(read.body.identifier[0].value, 'DL-7788-SECRET');
    } finally {
      await server.close();
    }
    const held = tablesHolding(await rawTables(dir), 'DL-7788-SECRET');
    assert.deepEqual(held, [], `tables still holding the newly sensitive value in clear: ${held.join(', ')}`);
  });

  test('an SSN in Patient.identifier: no table of the store file holds it (bodies not sealed)', async () => {
    const dir = tempDir('top-level-ssn');
    const server = await plainServer(dir);
    try {
      assert.equal((await put(server.baseUrl, 'Patient', 'top', { identifier: [{ system: ssnSystem, value: '900-50-5050' }, { type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }] }, value: 'MRN-50-5050' }] })).status, 201);
      const found = await call(`${server.baseUrl}/Patient?identifier=MRN-50-5050`);
      assert.equal((found.body.entry ?? []).length, 1);
    } finally {
      await server.close();
    }
    const dump = await rawTables(dir);
    assert.deepEqual([...tablesHolding(dump, '900-50-5050'), ...tablesHolding(dump, 'MRN-50-5050')], []);
    const audit = await rawTables(dir, 'bastion-audit.db');
    assert.deepEqual(tablesHolding(audit, 'MRN-50-5050'), [], 'the searched MRN is blinded in the trail');
  });
});

describe('audit trail: searched identifier values', () => {
  const dir = tempDir('audit-q');
  const ssnHeader = '900-60-0001';
  const ssnSearch = '900-60-0002';
  const ssnPlain = '900-60-0003';
  let audit: Record<string, string>;
  before(async () => {
    const server = await plainServer(dir);
    try {
      const withType = await call(`${server.baseUrl}/Patient`, {
        method: 'POST', headers: { 'if-none-exist': `Patient?identifier=${ssnSystem}|${ssnHeader}` },
        json: { resourceType: 'Patient', identifier: [{ system: ssnSystem, value: ssnHeader }] },
      });
      assert.equal(withType.status, 201, withType.text);
      const plain = await call(`${server.baseUrl}/Patient`, {
        method: 'POST', headers: { 'if-none-exist': `identifier=${ssnSystem}|${ssnPlain}` },
        json: { resourceType: 'Patient', identifier: [{ system: ssnSystem, value: ssnPlain }] },
      });
      assert.equal(plain.status, 201, plain.text);
      assert.equal((await call(`${server.baseUrl}/Patient?identifier=${encodeURIComponent(`${ssnSystem}|${ssnSearch}`)}`)).status, 200);
      assert.equal((await call(`${server.baseUrl}/Observation?subject:identifier=${encodeURIComponent(ssnSearch)}`)).status, 200);
    } finally {
      await server.close();
    }
    audit = await rawTables(dir, 'bastion-audit.db');
  });

  test('search and If-None-Exist (`identifier=`) values are blinded in the trail', () => {
    assert.deepEqual(tablesHolding(audit, ssnSearch), []);
    assert.deepEqual(tablesHolding(audit, ssnPlain), []);
    const redacted = redactIdentifierValues(`identifier:of-type=${encodeURIComponent('http://terminology.hl7.org/CodeSystem/v2-0203|SS|900-60-0004')}&subject:Patient.identifier=900-60-0005`, () => 'BLINDED');
    assert.ok(!redacted.includes('900-60-000'), redacted);
  });

  test('finding 3: an If-None-Exist of the form `Patient?identifier=...` (which create.ts accepts) is blinded too', () => {
    assert.deepEqual(tablesHolding(audit, ssnHeader), [], 'the SSN of the If-None-Exist header is in the audit trail in clear');
  });
});

describe('backup archives', () => {
  const key = randomBytes(32);
  async function archive(path: string, id: string, members: { name: string; data: Buffer }[]) {
    const described = [];
    for (const m of members) described.push(await describeMember(m, 4096));
    const header: ArchiveHeader = { format: archiveFormat, id, created: new Date(0).toISOString(), chunkSize: 4096, members: described };
    await writeArchive(path, header, members, key);
    return readArchiveHeader(path);
  }
  const members = [{ name: 'a', data: randomBytes(10_000) }, { name: 'b', data: randomBytes(5_000) }];
  const sink = async () => ({ write: async () => undefined, finish: async () => undefined });

  test('members spliced from another archive (even under the same key), truncation and header edits do not authenticate', async () => {
    const dir = tempDir('archive');
    const one = await archive(join(dir, 'one'), 'one', members);
    const two = await archive(join(dir, 'two'), 'two', members);
    await extractArchive(one, key, sink);
    const bytesOne = readFileSync(one.path);
    const bytesTwo = readFileSync(two.path);
    const spliced = Buffer.concat([bytesTwo.subarray(0, two.dataStart), bytesOne.subarray(one.dataStart)]);
    writeFileSync(join(dir, 'spliced'), spliced);
    await assert.rejects(extractArchive(await readArchiveHeader(join(dir, 'spliced')), key, sink), /does not authenticate/);
    writeFileSync(join(dir, 'short'), bytesOne.subarray(0, bytesOne.length - 100));
    await assert.rejects(readArchiveHeader(join(dir, 'short')), /truncated/);
    const edited = Buffer.from(bytesOne);
    const at = edited.indexOf('1970');
    edited[at + 3] = '1'.charCodeAt(0);
    writeFileSync(join(dir, 'edited'), edited);
    await assert.rejects(extractArchive(await readArchiveHeader(join(dir, 'edited')), key, sink), /does not authenticate/);
  });

  test('a restore refuses a member named outside the data dir before writing anything', async () => {
    const dir = tempDir('traversal');
    const path = join(dir, 'evil.bkp');
    const ms = [{ name: 'manifest.json', data: Buffer.from('{}') }, { name: 'bastion.db', data: Buffer.alloc(1) }, { name: 'data-keys.json', data: Buffer.from('{}') }, { name: '../escaped', data: Buffer.from('x') }];
    const described = [];
    for (const m of ms) described.push(await describeMember(m));
    const header = {
      format: archiveFormat, id: 'x', created: new Date().toISOString(), chunkSize: 1024 * 1024, members: described,
      keyProvider: { kind: 'local', kek: 'local:1' }, archiveKey: { provider: 'local', kek: 'local:1', ciphertext: 'AAAA' }, keyring: '{}',
    };
    await writeArchive(path, header as ArchiveHeader, ms, key);
    const target = join(dir, 'restored');
    await assert.rejects(restoreDataDir({ from: path, dataDir: target, keyProvider: { kind: 'local' } }), /unknown member/);
    assert.ok(!existsSync(join(dir, 'escaped')) && !existsSync(target));
  });

  test('a real backup restores; the same archive with one flipped bit is refused and leaves nothing', async () => {
    const dir = tempDir('backup-src');
    // (no write just before: the backup would wait up to 5 s for its audit record, which a bare store never makes)
    await (await openStore(dir)).close();
    const out = join(tempDir('backup-out'), 'b.bkp');
    await backupDataDir({ dataDir: dir, out, keyProvider: { kind: 'local' } });
    const bytes = readFileSync(out);
    assert.equal(bytes.indexOf('SQLite format 3'), -1, 'no plaintext database page in the archive');
    const header = await readArchiveHeader(out);
    const flipped = Buffer.from(bytes);
    flipped[header.dataStart + 40] ^= 1;
    const bad = join(tempDir('backup-bad'), 'bad.bkp');
    writeFileSync(bad, flipped);
    const target = join(tempDir('restore-bad'), 'r');
    // the source used the development master.key: the restore needs a copy of it beside the target
    fs.mkdirSync(target);
    fs.copyFileSync(join(dir, 'master.key'), join(target, 'master.key'));
    await assert.rejects(restoreDataDir({ from: bad, dataDir: target, keyProvider: { kind: 'local' } }), /altered|authenticate/);
    assert.deepEqual(fs.readdirSync(target), ['master.key']);
    const good = join(tempDir('restore-good'), 'r');
    fs.mkdirSync(good);
    fs.copyFileSync(join(dir, 'master.key'), join(good, 'master.key'));
    const restored = await restoreDataDir({ from: out, dataDir: good, keyProvider: { kind: 'local' } });
    assert.equal(restored.contents.resources, 0);
    assert.ok(existsSync(join(good, 'bastion.db')) && existsSync(join(good, 'data-keys.json')));
  });
});

// ---------------------------------------------------------------------------------------------
// Transport
// ---------------------------------------------------------------------------------------------

describe('transport configuration', () => {
  test('plain HTTP off loopback, TLS below 1.2 and half a certificate pair are refused', () => {
    assert.throws(() => loadConfig({ host: '0.0.0.0' }, { BASTION_TLS: 'off' }), /loopback/);
    assert.throws(() => loadConfig({}, { BASTION_TLS: 'on', BASTION_TLS_MIN_VERSION: '1.1' }), /1.3 or 1.2/);
    assert.throws(() => loadConfig({}, { BASTION_TLS: 'on', BASTION_TLS_CERT: '/x.pem' }), /go together/);
    assert.throws(() => loadConfig({}, { BASTION_TLS: 'proxy', BASTION_BASE_URL: 'https://x/fhir' }), /trustProxy/);
  });

  test('finding 10: optional client certificates need the client CA list (else any publicly trusted certificate passes tls_client_auth)', () => {
    assert.throws(() => loadConfig({}, { BASTION_TLS: 'on', BASTION_TLS_CLIENT_CERTIFICATES: 'optional' }), /tlsClientCa/);
  });
});

describe('tls=proxy', () => {
  const elsewhere = tempDir('proxy-elsewhere');
  const dir = tempDir('proxy');
  let server: Server;
  let audit: Record<string, string> = {};
  let metadataStatus: number | string = 0;
  let discovery = '';
  before(async () => {
    // The proxy is elsewhere: this process is just a peer on the network.
    const far = await startServer(loadConfig({ port: 0, dataDir: elsewhere }, {
      BASTION_AUTH: 'smart', BASTION_TLS: 'proxy', BASTION_TRUST_PROXY: '10.255.0.1', BASTION_BASE_URL: 'https://bastion.example/fhir',
    }));
    try {
      metadataStatus = await fetch(`${far.url.replace(/\/$/, '')}/fhir/metadata`).then((r) => r.status, (e: Error) => e.message);
    } finally {
      await far.close();
    }
    // This process is the proxy: it appends the address it saw after whatever the client claimed.
    server = await startServer(loadConfig({ port: 0, dataDir: dir }, {
      BASTION_AUTH: 'smart', BASTION_TLS: 'proxy', BASTION_TRUST_PROXY: '127.0.0.1', BASTION_BASE_URL: 'https://bastion.example/fhir',
    }));
    try {
      const origin = server.url.replace(/\/$/, '');
      const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: 'no-such-client', client_secret: 'x' });
      await fetch(`${origin}/auth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': '203.0.113.77, 198.51.100.9', 'x-forwarded-proto': 'https' }, body: form });
      await fetch(`${origin}/fhir/Patient`, { headers: { 'x-forwarded-for': '203.0.113.88, 198.51.100.10' } });
      discovery = await (await fetch(`${origin}/auth/.well-known/openid-configuration`, { headers: { 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' } })).text();
    } finally {
      await server.close();
    }
    audit = await rawTables(dir, 'bastion-audit.db');
  });

  test('finding 4a: plain HTTP is served only to the named proxy', () => {
    assert.notEqual(metadataStatus, 200, 'a direct plain-HTTP request from a peer that is not the proxy was served');
  });

  test('the FHIR endpoint takes the client address the proxy saw, not one the client claimed', () => {
    assert.deepEqual(tablesHolding(audit, '203.0.113.88'), []);
    assert.ok(tablesHolding(audit, '198.51.100.10').length > 0);
  });

  test('finding 4b: the authorization server takes the client address the proxy saw, not one the client claimed', () => {
    assert.deepEqual(tablesHolding(audit, '203.0.113.77'), [], 'a forged client address is in the audit trail');
    assert.ok(tablesHolding(audit, '198.51.100.9').length > 0, 'the address the proxy saw is');
  });

  test('finding 4c: X-Forwarded-Host does not change the authorization server\'s endpoints', () => {
    assert.ok(discovery.includes('"issuer"'), discovery.slice(0, 200));
    assert.ok(!discovery.includes('evil.example'), 'discovery names the forged host');
  });
});

// RFC 8705: certificate-bound tokens and certificate client authentication, on a real HTTPS server with client certificates.
describe('mutual TLS', () => {
  const pkiDir = tempDir('pki');
  const pki = openssl(pkiDir);
  const ca = pki.ca('site-ca');
  pki.leaf('server', 'site-ca', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth');
  const labFeed = pki.leaf('lab-feed', 'site-ca', 'extendedKeyUsage=clientAuth', '/O=Example Lab/CN=lab-feed');
  const commaInCn = pki.leaf('comma', 'site-ca', 'extendedKeyUsage=clientAuth', '/CN=lab-feed, O=Example Lab');
  const t = useSmartServer({
    BASTION_TLS: 'on', BASTION_TLS_CERT: join(pkiDir, 'server.crt'), BASTION_TLS_KEY: join(pkiDir, 'server.key'), BASTION_TLS_CLIENT_CA: join(pkiDir, 'site-ca.crt'),
  });

  interface Answer { status: number; text: string; headers: Record<string, string | string[] | undefined> }
  function send(url: string, identity: KeyAndCert | undefined, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = httpsRequest(url, { method: init.method ?? 'GET', headers: init.headers, ca, ...(identity ?? {}), agent: false }, (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode!, text, headers: res.headers }));
      });
      req.on('error', reject);
      req.end(init.body);
    });
  }
  const form = (o: Record<string, string>) => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(o).toString() });
  let clientId = '';
  let token = '';
  before(async () => {
    ({ clientId } = await registerClient(t.authStore, { name: 'Probe lab feed', type: 'backend', scope: 'system/Patient.rs', tlsSubjectDn: 'CN=lab-feed, O=Example Lab' }));
    const issued = await send(`${t.issuer}/token`, labFeed, form({ grant_type: 'client_credentials', client_id: clientId, scope: 'system/Patient.rs' }));
    assert.equal(issued.status, 200, issued.text);
    token = JSON.parse(issued.text).access_token;
  });

  test('a certificate-bound token is refused without its certificate on the admin API and in a batch', async () => {
    const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const admin = await send(`${t.issuer}/admin/clients`, undefined, { method: 'POST', headers: auth, body: JSON.stringify({ name: 'x', type: 'backend', scope: 'system/Patient.rs', tlsSubjectDn: 'CN=x' }) });
    assert.equal(admin.status, 401, admin.text);
    const bundle = { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: 'Patient?_count=1' } }] };
    const batch = await send(t.base, undefined, { method: 'POST', headers: { ...auth, 'content-type': 'application/fhir+json' }, body: JSON.stringify(bundle) });
    assert.equal(batch.status, 401, batch.text);
    const launch = await send(`${t.issuer}/launch`, undefined, { method: 'POST', headers: auth, body: JSON.stringify({ patient: 'x' }) });
    assert.equal(launch.status, 401, launch.text);
    assert.equal((await send(`${t.base}/Patient?_count=1`, labFeed, { headers: { authorization: `Bearer ${token}` } })).status, 200);
  });

  test('a CA-issued certificate whose CN carries ", O=Example Lab" does not pass as that subject DN', async () => {
    const refused = await send(`${t.issuer}/token`, commaInCn, form({ grant_type: 'client_credentials', client_id: clientId, scope: 'system/Patient.rs' }));
    assert.equal(refused.status, 401, refused.text);
  });

  test('finding 11: introspection of a certificate-bound token reports its binding (RFC 8705 3.2 cnf)', async () => {
    const answer = await send(`${t.issuer}/token/introspection`, labFeed, form({ token, client_id: clientId }));
    assert.equal(answer.status, 200, answer.text);
    const body = JSON.parse(answer.text);
    assert.equal(body.active, true);
    assert.ok(body.cnf?.['x5t#S256'], `introspection answer: ${answer.text}`);
  });

  test('TLS below 1.3 is refused by default; plain HTTP on the HTTPS port is not served; HSTS is sent', async () => {
    const port = Number(new URL(t.base).port);
    const outcome = await new Promise<string>((resolve) => {
      const socket = tlsConnect({ host: '127.0.0.1', port, ca, maxVersion: 'TLSv1.2', minVersion: 'TLSv1.2' }, () => {
        socket.end();
        resolve('connected');
      });
      socket.on('error', (err) => resolve(`error ${(err as NodeJS.ErrnoException).code ?? err.message}`));
    });
    assert.match(outcome, /^error/);
    const plain = await new Promise<string>((resolve) => {
      const req = httpGet(`http://127.0.0.1:${port}/fhir/metadata`, (res) => {
        res.resume();
        resolve(`status ${res.statusCode}`);
      });
      req.on('error', (err) => resolve(`error ${(err as NodeJS.ErrnoException).code ?? err.message}`));
      req.setTimeout(3000, () => req.destroy(new Error('timeout')));
    });
    assert.ok(!/status 2/.test(plain), plain);
    const metadata = await send(`${t.base}/metadata`, undefined);
    assert.equal(metadata.status, 200);
    assert.match(String(metadata.headers['strict-transport-security']), /max-age=\d{7,}/);
  });
});
