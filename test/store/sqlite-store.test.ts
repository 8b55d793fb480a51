import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3-multiple-ciphers';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { openEncrypted } from '../../src/store/sqlite/open.ts';
import { migrations } from '../../src/store/sqlite/migrations.ts';
import { storeConformance } from './conformance.ts';

const dir = mkdtempSync(join(tmpdir(), 'bastion-store-'));
let n = 0;
after(() => rmSync(dir, { recursive: true, force: true }));

storeConformance(async () => new SqliteStore({ path: join(dir, `conf-${n++}.db`), key: crypto.randomBytes(32) }));

test('the store file is encrypted: no plaintext of stored resources in any file on disk', async () => {
  const path = join(dir, 'plain.db');
  const store = new SqliteStore({ path, key: crypto.randomBytes(32) });
  await store.transaction((tx) => tx.create({ resourceType: 'Patient', id: 'x', name: [{ family: 'Zyxwvutsrq' }], identifier: [{ value: '123-45-6789' }] }));
  await store.close();
  for (const f of readdirSync(dir).filter((f) => f.startsWith('plain.db'))) {
    const bytes = readFileSync(join(dir, f));
    assert.equal(bytes.includes('Zyxwvutsrq'), false, `${f} holds a name in plaintext`);
    assert.equal(bytes.includes('123-45-6789'), false, `${f} holds an identifier in plaintext`);
    assert.equal(bytes.includes('SQLite format 3'), false, `${f} has a plaintext SQLite header`);
  }
  // And a plain SQLite client cannot read it.
  const plain = new Database(path);
  assert.throws(() => plain.prepare('SELECT * FROM resources').all(), /not a database|encrypted/i);
  plain.close();
});

test('opening with the wrong key fails with a clear error', async () => {
  const path = join(dir, 'key.db');
  const store = new SqliteStore({ path, key: crypto.randomBytes(32) });
  await store.transaction((tx) => tx.create({ resourceType: 'Patient', id: 'x' }));
  await store.close();
  assert.throws(() => new SqliteStore({ path, key: crypto.randomBytes(32) }), /cannot be decrypted with the configured key/);
});

test('data survives close and reopen', async () => {
  const path = join(dir, 'reopen.db');
  const key = crypto.randomBytes(32);
  let store = new SqliteStore({ path, key });
  await store.transaction((tx) => tx.create({ resourceType: 'Patient', id: 'x', gender: 'other' }));
  await store.transaction((tx) => tx.update({ resourceType: 'Patient', id: 'x', gender: 'male' }));
  await store.close();
  store = new SqliteStore({ path, key });
  assert.equal((await store.read('Patient', 'x'))!.versionId, '2');
  const next = await store.transaction((tx) => tx.update({ resourceType: 'Patient', id: 'x', gender: 'female' }));
  assert.equal(next.stored.versionId, '3');
  await store.close();
});

test('an older schema is migrated in place and its resources become searchable', async () => {
  const path = join(dir, 'old.db');
  const key = crypto.randomBytes(32);
  const db = openEncrypted(path, key);
  db.exec(migrations[0]);
  db.pragma('user_version = 1');
  db.prepare(`INSERT INTO resources (rid, type, id, version, seq, last_updated, deleted) VALUES (1, 'Patient', 'old', 1, 1, '2020-01-01T00:00:00.000Z', 0)`).run();
  db.prepare(`INSERT INTO resource_versions (seq, rid, type, version, last_updated, method, deleted, content) VALUES (1, 1, 'Patient', 1, '2020-01-01T00:00:00.000Z', 'POST', 0, ?)`)
    .run(JSON.stringify({ resourceType: 'Patient', id: 'old', meta: { versionId: '1', lastUpdated: '2020-01-01T00:00:00.000Z' }, gender: 'male' }));
  db.close();
  const store = new SqliteStore({ path, key });
  assert.equal((await store.read('Patient', 'old'))!.versionId, '1');
  const { parseSearch } = await import('../../src/fhir/search/parse.ts');
  const result = await store.search(parseSearch('Patient', [['gender', 'male']], { maxCount: 10, defaultCount: 10, lenient: false }).request);
  assert.deepEqual(result.matches.map((m) => m.id), ['old']);
  const u = await store.transaction((tx) => tx.update({ resourceType: 'Patient', id: 'old', gender: 'female' }));
  assert.equal(u.stored.versionId, '2');
  assert.ok(u.stored.lastUpdated > '2020-01-01T00:00:00.000Z');
  await store.close();
  const check = openEncrypted(path, key);
  assert.equal(check.pragma('user_version', { simple: true }), migrations.length);
  check.close();
});

test('a re-index cut short is done again on the next open', async () => {
  const path = join(dir, 'cut.db');
  const key = crypto.randomBytes(32);
  let store = new SqliteStore({ path, key });
  await store.transaction(async (tx) => {
    for (let i = 0; i < 5; i++) await tx.create({ resourceType: 'Patient', id: `c${i}`, gender: 'female' });
  });
  await store.close();
  // What a rebuild leaves when killed after its first transaction: no rows, no version.
  const db = openEncrypted(path, key);
  db.exec(`DELETE FROM store_meta; DELETE FROM search_token;`);
  db.close();
  store = new SqliteStore({ path, key });
  const { parseSearch } = await import('../../src/fhir/search/parse.ts');
  const result = await store.search(parseSearch('Patient', [['gender', 'female']], { maxCount: 10, defaultCount: 10, lenient: false }).request);
  assert.equal(result.matches.length, 5);
  await store.close();
});

test('a file from a newer Bastion is refused rather than damaged', async () => {
  const path = join(dir, 'newer.db');
  const key = crypto.randomBytes(32);
  const db = openEncrypted(path, key);
  db.pragma(`user_version = ${migrations.length + 1}`);
  db.close();
  assert.throws(() => new SqliteStore({ path, key }), /newer than this Bastion/);
});

test('audit records cannot be updated or deleted', async () => {
  const path = join(dir, 'audit.db');
  const key = crypto.randomBytes(32);
  const store = new SqliteStore({ path, key });
  await store.appendAudit([{ recorded: '2026-01-01T00:00:00.000Z', json: '{"resourceType":"AuditEvent"}' }]);
  await store.close();
  const db = openEncrypted(join(dir, 'audit-audit.db'), key);
  assert.equal((db.prepare('SELECT count(*) AS n FROM audit_log').get() as { n: number }).n, 1);
  assert.throws(() => db.prepare(`UPDATE audit_log SET event = '{}'`).run(), /append-only/);
  assert.throws(() => db.prepare('DELETE FROM audit_log').run(), /append-only/);
  db.close();
});

test('audit records of a store from before the audit file are carried over to it, once', async () => {
  const path = join(dir, 'legacy-audit.db');
  const key = crypto.randomBytes(32);
  const db = openEncrypted(path, key);
  db.exec(migrations[0]);
  db.pragma('user_version = 1');
  const insert = db.prepare('INSERT INTO audit_log (recorded, event) VALUES (?, ?)');
  insert.run('2025-01-01T00:00:00.000Z', '{"resourceType":"AuditEvent","id":"old-1"}');
  insert.run('2025-01-02T00:00:00.000Z', '{"resourceType":"AuditEvent","id":"old-2"}');
  db.close();
  for (let open = 0; open < 2; open++) {
    const store = new SqliteStore({ path, key });
    if (open === 0) await store.appendAudit([{ recorded: '2026-01-01T00:00:00.000Z', json: '{"resourceType":"AuditEvent","id":"new"}' }]);
    const records = await store.auditRecords({ afterSeq: 0, limit: 10 });
    assert.deepEqual(records.map((r) => JSON.parse(r.json).id), ['old-1', 'old-2', 'new']);
    await store.close();
  }
});

test('the audit file is encrypted too', async () => {
  const path = join(dir, 'audit-plain.db');
  const store = new SqliteStore({ path, key: crypto.randomBytes(32) });
  await store.appendAudit([{ recorded: '2026-01-01T00:00:00.000Z', json: '{"resourceType":"AuditEvent","agent":[{"who":{"identifier":{"value":"Qwertyuiop"}}}]}' }]);
  await store.close();
  for (const f of readdirSync(dir).filter((f) => f.startsWith('audit-plain-audit.db'))) {
    assert.equal(readFileSync(join(dir, f)).includes('Qwertyuiop'), false, `${f} holds audit content in plaintext`);
  }
});

test('two store instances on one file (two processes) interleave writes without collisions', async () => {
  const path = join(dir, 'two.db');
  const key = crypto.randomBytes(32);
  const a = new SqliteStore({ path, key });
  const b = new SqliteStore({ path, key });
  for (let i = 0; i < 5; i++) {
    await a.transaction((tx) => tx.create({ resourceType: 'Patient', id: `a${i}` }));
    await b.transaction((tx) => tx.create({ resourceType: 'Patient', id: `b${i}` }));
  }
  const h = await a.history({ resourceType: 'Patient', count: 100, offset: 0 });
  assert.equal(h.total, 10);
  assert.deepEqual(h.entries.map((e) => e.id).slice(0, 2), ['b4', 'a4']);
  await a.close();
  await b.close();
});

test('a read after a write sees the write, whoever wrote it (the read cache never serves a stale version)', async () => {
  const path = join(dir, 'cache.db');
  const key = crypto.randomBytes(32);
  const a = new SqliteStore({ path, key });
  const b = new SqliteStore({ path, key });
  await a.transaction((tx) => tx.create({ resourceType: 'Patient', id: 'c', gender: 'male' }));
  for (let i = 0; i < 3; i++) assert.equal((await a.read('Patient', 'c'))!.versionId, '1');
  await a.transaction((tx) => tx.update({ resourceType: 'Patient', id: 'c', gender: 'female' }));
  assert.equal((await a.read('Patient', 'c'))!.versionId, '2', 'own write');
  assert.equal((await b.read('Patient', 'c'))!.versionId, '2');
  await b.transaction((tx) => tx.update({ resourceType: 'Patient', id: 'c', gender: 'other' }));
  const seen = await a.read('Patient', 'c');
  assert.equal(seen!.versionId, '3', "another process's write");
  assert.match(seen!.json!, /"other"/);
  await b.transaction((tx) => tx.delete('Patient', 'c'));
  assert.equal((await a.read('Patient', 'c'))!.deleted, true);
  await a.close();
  await b.close();
});

test('lastUpdated keeps to the real clock under bulk writes', async () => {
  const store = new SqliteStore({ path: join(dir, 'bulk.db'), key: crypto.randomBytes(32) });
  const jobs = Array.from({ length: 3000 }, (_, i) => store.transaction((tx) => tx.create({ resourceType: 'Basic', id: `b${i}`, code: { text: 'x' } })));
  const stored = await Promise.all(jobs);
  const newest = Math.max(...stored.map((s) => Date.parse(s.lastUpdated)));
  assert.ok(newest <= Date.now() + 5, `newest lastUpdated is ${newest - Date.now()} ms in the future`);
  await store.close();
});
