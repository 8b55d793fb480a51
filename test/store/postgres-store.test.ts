import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FhirError } from '../../src/fhir/outcome.ts';
import { Database } from '../../src/store/postgres/database.ts';
import { parseSearch } from '../../src/fhir/search/parse.ts';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PgStore } from '../../src/store/postgres/pg-store.ts';
import { ResourceCodec } from '../../src/store/resource-codec.ts';
import { openDataKeys } from '../../src/crypto/open-keys.ts';
import type { DataKeys } from '../../src/crypto/data-keys.ts';
import { storeConformance } from './conformance.ts';
import { searchConformance } from './search-conformance.ts';
import { freshSchema, pgSkip, postgresUrl } from '../postgres.ts';

// The conformance suites the embedded store passes, unchanged, on PostgreSQL: with JSON bodies,
// and as deployed (every body sealed, identifiers encrypted).
describe('PostgreSQL store', { skip: pgSkip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'bastion-pg-store-'));
  let keys: DataKeys;
  before(async () => {
    keys = await openDataKeys(join(dir, 'keys'), { kind: 'local' }, { BASTION_MASTER_KEY: randomBytes(32).toString('hex') });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const plain = () => PgStore.open({ url: postgresUrl!, schema: freshSchema(), max: 4 });
  const sealed = () => PgStore.open({ url: postgresUrl!, schema: freshSchema(), max: 4, codec: new ResourceCodec(keys, { encryptBodies: true }) });

  describe('store conformance', () => storeConformance(plain));
  describe('search conformance', () => searchConformance(plain));
  describe('store conformance with sealed bodies', () => storeConformance(sealed));
  describe('search conformance with sealed bodies', () => searchConformance(sealed));

  test('reindex rebuilds the index rows, full text and label bits of every current resource', async () => {
    const store = await PgStore.open({ url: postgresUrl!, schema: freshSchema(), max: 2 });
    try {
      const restricted = { security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' }] };
      await store.transaction(async (tx) => {
        for (let i = 0; i < 7; i++) {
          await tx.create({ resourceType: 'Patient', id: `p${i}`, gender: i % 2 ? 'male' : 'female', name: [{ family: `Reindexed${i}` }], ...(i === 3 ? { meta: restricted } : {}) });
        }
        await tx.delete('Patient', 'p1');
      });
      const total = async (query: [string, string][]) =>
        (await store.search(parseSearch('Patient', [...query, ['_total', 'accurate']], { maxCount: 100, defaultCount: 100, lenient: false }).request)).total;
      const before = [await total([['gender', 'male']]), await total([['name', 'reindexed']]), await total([['_content', 'reindexed3']]), await total([['_security:not', 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality|R']])];
      assert.deepEqual(before, [2, 6, 1, 5]);
      await store.db.exec('DELETE FROM search_token; DELETE FROM search_string; DELETE FROM search_text; UPDATE resources SET security = 0');
      assert.equal(await total([['gender', 'male']]), 0);
      assert.equal(await store.reindex(), 6);
      assert.deepEqual([await total([['gender', 'male']]), await total([['name', 'reindexed']]), await total([['_content', 'reindexed3']]), await total([['_security:not', 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality|R']])], before);
    } finally {
      await store.close();
    }
  });

  test('a schema an unfinished bastion migrate left is refused, not served in part', async () => {
    const schema = freshSchema();
    const store = await PgStore.open({ url: postgresUrl!, schema, max: 2 });
    await store.db.query(`INSERT INTO store_meta (key, value) VALUES ('migration', 'started')`);
    await store.close();
    await assert.rejects(PgStore.open({ url: postgresUrl!, schema, max: 2 }), /unfinished bastion migrate/);
  });

  test('a connection the database ends mid-transaction is a 503 and nothing of it is stored', async () => {
    const schema = freshSchema();
    const store = await PgStore.open({ url: postgresUrl!, schema, max: 2 });
    const admin = new Database({ url: postgresUrl!, max: 1 });
    try {
      await assert.rejects(store.transaction(async (tx) => {
        await tx.create({ resourceType: 'Patient', id: 'lost' });
        // The backend holding this schema's locks is this transaction's: end it, as a restart or failover would.
        await admin.query(
          `SELECT pg_terminate_backend(l.pid) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = ? AND l.pid <> pg_backend_pid()`,
          [schema],
        );
        await tx.read('Patient', 'lost');
      }), (err: unknown) => err instanceof FhirError && err.status === 503);
      // The pool replaces the lost connection: the next request is served, and the create is not there.
      assert.equal(await store.read('Patient', 'lost'), undefined);
    } finally {
      await admin.close();
      await store.close();
    }
  });
});
