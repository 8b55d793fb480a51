import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { openEncrypted } from '../../src/store/sqlite/open.ts';
import { ResourceCodec, UnreadableContentError } from '../../src/store/resource-codec.ts';
import { openDataKeys } from '../../src/crypto/open-keys.ts';
import type { DataKeys } from '../../src/crypto/data-keys.ts';
import { sealedVersion } from '../../src/crypto/aead.ts';
import { parseSearch } from '../../src/fhir/search/parse.ts';
import type { Resource } from '../../src/fhir/types.ts';
import { storeConformance } from './conformance.ts';
import { searchConformance } from './search-conformance.ts';
import { syntheaNdjson } from '../shared-data.ts';

const dir = mkdtempSync(join(tmpdir(), 'bastion-encrypted-store-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let keys: DataKeys;
before(async () => {
  keys = await openDataKeys(join(dir, 'keys'), { kind: 'local' }, { BASTION_MASTER_KEY: randomBytes(32).toString('hex') });
});
let n = 0;
const sealedStore = (name = `sealed-${n++}.db`) => new SqliteStore({ path: join(dir, name), key: randomBytes(32), codec: new ResourceCodec(keys, { encryptBodies: true }) });

// The same behaviour, whatever the store keeps: every stored body sealed, identifiers encrypted.
describe('store conformance with sealed bodies', () => storeConformance(async () => sealedStore()));
describe('search conformance with sealed bodies', () => searchConformance(async () => sealedStore()));

const patients = readFileSync(join(syntheaNdjson, 'Patient.000.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Resource & { id: string; identifier: { system?: string; value: string; type?: { coding: { code: string }[] } }[]; name: { family: string }[] });
const ssns = patients.map((p) => p.identifier.find((i) => i.system === 'http://hl7.org/fhir/sid/us-ssn')!.value);
const families = patients.map((p) => p.name[0].family);
const search = (store: SqliteStore, params: [string, string][]) => store.search(parseSearch('Patient', params, { maxCount: 100, defaultCount: 100, lenient: false }).request);

/** Every cell of every table of the store file, as text (blobs as latin1), with the file key: what a stolen key and file would show. */
function dumpTables(path: string, key: Buffer): string {
  const db = openEncrypted(path, key, { readonly: true });
  try {
    const tables = (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'search_text%'`).all() as { name: string }[]).map((t) => t.name);
    return tables.map((t) => (db.prepare(`SELECT * FROM "${t}"`).raw().all() as unknown[][]).flat().map((v) => (Buffer.isBuffer(v) ? v.toString('latin1') : String(v))).join('\u0001')).join('\n');
  } finally {
    db.close();
  }
}

describe('Synthea patients in a store with sealed bodies', () => {
  const fileKey = randomBytes(32);
  const path = join(dir, 'synthea.db');
  let store: SqliteStore;
  before(async () => {
    store = new SqliteStore({ path, key: fileKey, codec: new ResourceCodec(keys, { encryptBodies: true }) });
    await store.transaction(async (tx) => {
      for (const p of patients) await tx.create(p);
    });
  });
  after(() => store.close());

  test('no table holds an SSN, in any form but its keyed blind index; no body holds a name', async () => {
    const dump = dumpTables(path, fileKey);
    for (const ssn of ssns) {
      assert.ok(!dump.includes(ssn), `SSN ${ssn} in a table`);
      assert.ok(!dump.includes(ssn.replace(/-/g, '')), 'nor without its dashes');
    }
    const bodies = dumpTables(path, fileKey).split('\n').find((t) => t.includes('Patient')) ?? '';
    const db = openEncrypted(path, fileKey, { readonly: true });
    const contents = (db.prepare('SELECT content FROM resource_versions').pluck().all() as Buffer[]);
    db.close();
    assert.ok(contents.every((c) => Buffer.isBuffer(c) && sealedVersion(c) === 1), 'every body sealed under resource-body.1');
    for (const family of families) assert.ok(!contents.some((c) => c.includes(family)), `${family} in a body`);
    assert.ok(bodies.length > 0);
  });

  test('reads give the resource as written, SSN included', async () => {
    const stored = await store.read('Patient', patients[0].id);
    assert.deepEqual(JSON.parse(stored!.json!).identifier, patients[0].identifier);
    assert.equal(JSON.parse(stored!.json!).name[0].family, families[0]);
  });

  test('exact search on an SSN or MRN works through the blind index: with system, without, by type', async () => {
    const want = [patients[2].id];
    const ids = async (params: [string, string][]) => (await search(store, params)).matches.map((m) => m.id);
    assert.deepEqual(await ids([['identifier', `http://hl7.org/fhir/sid/us-ssn|${ssns[2]}`]]), want);
    assert.deepEqual(await ids([['identifier', ssns[2]]]), want);
    assert.deepEqual(await ids([['identifier:of-type', `http://terminology.hl7.org/CodeSystem/v2-0203|SS|${ssns[2]}`]]), want);
    const mrn = patients[2].identifier.find((i) => i.type?.coding[0].code === 'MR')!;
    assert.ok((await ids([['identifier', `${mrn.system}|${mrn.value}`]])).includes(patients[2].id));
    assert.deepEqual(await ids([['identifier', `http://hl7.org/fhir/sid/us-ssn|999-00-0000`]]), []);
    assert.deepEqual(await ids([['family', families[2]]]), want, 'other searches as before');
  });
});

describe('tampering and rotation', () => {
  test('a flipped bit, or a body moved to another resource or version, does not decrypt', async () => {
    const fileKey = randomBytes(32);
    const path = join(dir, 'tamper.db');
    const store = new SqliteStore({ path, key: fileKey, codec: new ResourceCodec(keys, { encryptBodies: true }) });
    await store.transaction(async (tx) => {
      await tx.create({ resourceType: 'Patient', id: 'a', name: [{ family: 'Alpha' }] });
      await tx.create({ resourceType: 'Patient', id: 'b', name: [{ family: 'Beta' }] });
      await tx.update({ resourceType: 'Patient', id: 'b', name: [{ family: 'Beta2' }] });
    });
    await store.close();
    const db = openEncrypted(path, fileKey);
    const body = (rid: number, version: number) => db.prepare('SELECT content FROM resource_versions WHERE rid = ? AND version = ?').pluck().get(rid, version) as Buffer;
    const flipped = Buffer.from(body(1, 1));
    flipped[40] ^= 0x01;
    db.prepare('UPDATE resource_versions SET content = ? WHERE rid = 1').run(flipped);
    db.prepare('UPDATE resource_versions SET content = ? WHERE rid = 2 AND version = 2').run(body(2, 1));
    db.close();
    const reopened = new SqliteStore({ path, key: fileKey, codec: new ResourceCodec(keys, { encryptBodies: true }) });
    try {
      await assert.rejects(reopened.read('Patient', 'a'), (e: unknown) => e instanceof UnreadableContentError && /Patient\/a version 1 does not decrypt/.test(e.message));
      await assert.rejects(reopened.read('Patient', 'b'), UnreadableContentError, 'version 1 sealed for version 1 is not version 2');
      assert.match((await reopened.vread('Patient', 'b', '1'))!.json!, /Beta/);
    } finally {
      await reopened.close();
    }
  });

  test('after rotating the body and identifier keys every version reads; new writes use the new keys; re-encoding moves old ones', async () => {
    const local = await openDataKeys(join(dir, 'rotating-keys'), { kind: 'local' }, { BASTION_MASTER_KEY: randomBytes(32).toString('hex') });
    const fileKey = randomBytes(32);
    const path = join(dir, 'rotate.db');
    const patient = patients[3];
    let store = new SqliteStore({ path, key: fileKey, codec: new ResourceCodec(local, { encryptBodies: true }) });
    await store.transaction((tx) => tx.create(patient));
    await store.close();
    await local.rotate('resource-body');
    await local.rotate('identifier');
    const codec = new ResourceCodec(local, { encryptBodies: true });
    store = new SqliteStore({ path, key: fileKey, codec });
    await store.transaction((tx) => tx.update({ ...patient, gender: 'other' }));
    assert.deepEqual(JSON.parse((await store.vread('Patient', patient.id, '1'))!.json!).identifier, patient.identifier);
    assert.deepEqual(JSON.parse((await store.read('Patient', patient.id))!.json!).identifier, patient.identifier);
    await store.close();
    const db = openEncrypted(path, fileKey);
    const rows = db.prepare('SELECT version, content FROM resource_versions ORDER BY version').all() as { version: number; content: Buffer }[];
    db.close();
    assert.deepEqual(rows.map((r) => sealedVersion(r.content)), [1, 2]);
    assert.deepEqual(rows.map((r) => codec.isStale('Patient', patient.id, r.version, r.content)), [true, false]);
    assert.equal(codec.refreshed('Patient', patient.id, 2, rows[1].content), undefined, 'already current');
    const moved = codec.refreshed('Patient', patient.id, 1, rows[0].content) as Buffer;
    assert.equal(sealedVersion(moved), 2);
    assert.equal(codec.isStale('Patient', patient.id, 1, moved), false);
    assert.deepEqual(JSON.parse(codec.decode('Patient', patient.id, 1, moved)).identifier, patient.identifier);
  });

  test('without body sealing, identifiers are still encrypted; a store switched to sealing reads its older text rows', async () => {
    const fileKey = randomBytes(32);
    const path = join(dir, 'switch.db');
    let store = new SqliteStore({ path, key: fileKey, codec: new ResourceCodec(keys) });
    await store.transaction((tx) => tx.create(patients[4]));
    await store.close();
    const dump = dumpTables(path, fileKey);
    assert.ok(!dump.includes(ssns[4]), 'SSN encrypted in a text body too');
    assert.ok(dump.includes(families[4]), 'the body itself is text');
    store = new SqliteStore({ path, key: fileKey, codec: new ResourceCodec(keys, { encryptBodies: true }) });
    assert.deepEqual(JSON.parse((await store.read('Patient', patients[4].id))!.json!).identifier, patients[4].identifier);
    await store.close();
  });
});

test('the default sensitive identifiers: the walk selects what the FHIRPath expression selects, on every Synthea resource', async () => {
  const { SensitiveIdentifiers, defaultSensitiveIdentifiers } = await import('../../src/store/sensitive-identifiers.ts');
  const { readdirSync } = await import('node:fs');
  const native = new SensitiveIdentifiers();
  // The same expression, not recognised as the default: evaluated by fhirpath.js.
  const fhirpath = new SensitiveIdentifiers(defaultSensitiveIdentifiers.map((e) => `${e} `));
  const files = readdirSync(syntheaNdjson).filter((f) => f.endsWith('.ndjson') && !f.startsWith('log'));
  let found = 0;
  for (const f of files) {
    for (const line of readFileSync(join(syntheaNdjson, f), 'utf8').trim().split('\n')) {
      const resource = JSON.parse(line) as Resource;
      const a = native.find(resource);
      assert.deepEqual(a, fhirpath.find(resource), `${resource.resourceType}/${resource.id}`);
      found += a.length;
    }
  }
  assert.equal(found, patients.length * 2, 'each patient\'s SSN and MRN');
  const contained = { resourceType: 'Observation', subject: { identifier: { system: 'http://hl7.org/fhir/sid/us-ssn', value: '999-1' } }, contained: [{ resourceType: 'Patient', identifier: [{ type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }] }, value: 'm1' }] }] } as Resource;
  assert.equal(native.find(contained).length, 2, 'Reference.identifier and contained resources too');
  assert.deepEqual(native.find(contained), fhirpath.find(contained));
});
