import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Database, numbered, schemaName } from '../../src/store/postgres/database.ts';
import { PgStore } from '../../src/store/postgres/pg-store.ts';
import { PgAuthStore } from '../../src/store/postgres/auth-store.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { ResourceCodec } from '../../src/store/resource-codec.ts';
import { openDataKeys } from '../../src/crypto/open-keys.ts';
import type { DataKeys } from '../../src/crypto/data-keys.ts';
import type { Store } from '../../src/store/store.ts';
import type { Resource } from '../../src/fhir/types.ts';
import { FhirError } from '../../src/fhir/outcome.ts';
import { parseSearch } from '../../src/fhir/search/parse.ts';
import { encodeCursor } from '../../src/store/sql/search-cursor.ts';
import { ConfigError, loadConfig } from '../../src/config/config.ts';
import { openStore } from '../../src/main.ts';
import { freshSchema, pgSkip, postgresUrl } from '../postgres.ts';

/**
 * Probes of the review of the PostgreSQL change: each defect found has one here that failed before
 * its fix; each property found sound has one that fails when the rule guarding it is taken out.
 */

const parse = (type: string, query: string) => parseSearch(type, [...new URLSearchParams(query)], { maxCount: 1000, defaultCount: 100, lenient: false }).request;
const status = (code: number) => (err: unknown) => err instanceof FhirError && err.status === code;

describe('PostgreSQL review probes', { skip: pgSkip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'bastion-pg-probes-'));
  let keys: DataKeys;
  const opened: { close(): Promise<void> }[] = [];
  before(async () => {
    keys = await openDataKeys(join(dir, 'keys'), { kind: 'local' }, { BASTION_MASTER_KEY: randomBytes(32).toString('hex') });
  });
  after(async () => {
    for (const s of opened.splice(0)) await s.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const sealedCodec = () => new ResourceCodec(keys, { encryptBodies: true });
  async function pgStore(options: { schema?: string; node?: string; sealed?: boolean } = {}): Promise<PgStore> {
    const store = await PgStore.open({
      url: postgresUrl!, schema: options.schema ?? freshSchema('probe'), max: 4,
      ...(options.sealed === false ? {} : { codec: sealedCodec() }), ...(options.node ? { node: options.node } : {}),
    });
    opened.push(store);
    return store;
  }
  function admin(): Database {
    const db = new Database({ url: postgresUrl!, max: 2 });
    opened.push(db);
    return db;
  }
  const family = (json: string | undefined) => (JSON.parse(json!) as { name: { family: string }[] }).name[0].family;

  describe('defects', () => {
    test('a body read inside a transaction that rolls back is never served later as that version', async () => {
      const store = await pgStore();
      await store.transaction((tx) => tx.create({ resourceType: 'Patient', id: 'c1', name: [{ family: 'First' }] } as Resource & { id: string }));
      await assert.rejects(store.transaction(async (tx) => {
        await tx.update({ resourceType: 'Patient', id: 'c1', name: [{ family: 'RolledBack' }] } as Resource & { id: string });
        // The transaction reads its own write (a check after the write, a Provenance's "before").
        assert.equal(family((await tx.read('Patient', 'c1'))?.json), 'RolledBack');
        assert.equal((await tx.search(parse('Patient', '_id=c1'))).matches.length, 1);
        throw new Error('a later entry fails: everything rolls back');
      }), /rolls back/);
      // Version 2 is written again, with other content: that is what every read must serve.
      await store.transaction((tx) => tx.update({ resourceType: 'Patient', id: 'c1', name: [{ family: 'Committed' }] } as Resource & { id: string }));
      assert.equal(family((await store.read('Patient', 'c1'))?.json), 'Committed');
      assert.equal(family((await store.vread('Patient', 'c1', '2'))?.json), 'Committed');
      assert.equal(family((await store.search(parse('Patient', '_id=c1'))).matches[0].json), 'Committed');
    });

    test('a delete, or an If-Match update, that waited for a concurrent update finds the resource (none is lost)', async () => {
      const store = await pgStore();
      const patientNamed = (id: string, name: string) => ({ resourceType: 'Patient', id, name: [{ family: name }] }) as Resource & { id: string };
      /** `second` starts while a transaction holding `id`'s lock (it updated it) waits; then that one commits. */
      const behindAnUpdate = async <T>(id: string, second: () => Promise<T>): Promise<T> => {
        let release!: () => void;
        const gate = new Promise<void>((resolve) => (release = resolve));
        let holding!: () => void;
        const held = new Promise<void>((resolve) => (holding = resolve));
        const first = store.transaction(async (tx) => {
          await tx.update(patientNamed(id, 'Updated'));
          holding();
          await gate;
        });
        await held;
        const waiting = second();
        await new Promise((resolve) => setTimeout(resolve, 300));
        release();
        await first;
        return waiting;
      };
      await store.transaction((tx) => tx.create(patientNamed('d1', 'First')));
      const deleted = await behindAnUpdate('d1', () => store.transaction((tx) => tx.delete('Patient', 'd1')));
      assert.equal(deleted?.versionId, '3', 'the delete found nothing to delete');
      assert.equal((await store.read('Patient', 'd1'))?.deleted, true);

      await store.transaction((tx) => tx.create(patientNamed('m1', 'First')));
      const updated = await behindAnUpdate('m1', () => store.transaction((tx) => tx.update(patientNamed('m1', 'Second'), { ifMatch: '2' })));
      assert.equal(updated.stored.versionId, '3');
      assert.equal(family((await store.read('Patient', 'm1'))?.json), 'Second');
    });

    test('the conditional-create lock does not put criteria (an SSN) in PostgreSQL in clear or as an unkeyed hash (pg_locks)', async () => {
      const store = await pgStore();
      const db = admin();
      const key = 'conditional:Patient?identifier=http://hl7.org/fhir/sid/us-ssn|123-45-6789';
      await store.transaction(async (tx) => {
        await tx.lock!(key);
        // Held by the transaction: anyone reading pg_locks could test guesses against hashtextextended(key).
        const [{ free }] = await db.query<{ free: boolean }>('SELECT pg_try_advisory_xact_lock(hashtextextended(?, 0)) AS free', [key]);
        assert.equal(free, true, 'the lock is keyed by the clear criteria');
      });
    });

    test('ap on a date parameter searches on PostgreSQL (whole milliseconds for a BIGINT column), as on the embedded store', async () => {
      const store = await pgStore();
      await store.transaction((tx) => tx.create({ resourceType: 'Patient', id: 'ap1', birthDate: '1980-05-15' } as Resource & { id: string }));
      const found = await store.search(parse('Patient', 'birthdate=ap1980-05-15'));
      assert.deepEqual(found.matches.map((m) => m.id), ['ap1']);
    });

    test('a forged _cursor whose key is not of its sort parameter\'s kind is a 400 on both stores, never a 500', async () => {
      const lite = new SqliteStore({ path: join(dir, `cursor-${randomBytes(4).toString('hex')}.db`), key: randomBytes(32) });
      opened.push(lite);
      for (const store of [await pgStore(), lite] as Store[]) {
        await store.transaction(async (tx) => {
          for (let i = 0; i < 3; i++) await tx.create({ resourceType: 'Patient', id: `k${i}`, birthDate: `198${i}-01-01` } as Resource & { id: string });
        });
        for (const [query, k] of [['_sort=birthdate', 'abc'], ['_sort=birthdate', 1.5], ['_sort=_lastUpdated', 'x'], ['_sort=family', 7]] as const) {
          const request = { ...parse('Patient', query), cursor: encodeCursor({ d: 'n', k: [k], r: 1 }) };
          await assert.rejects(store.search(request), status(400), `${query} with ${JSON.stringify(k)}`);
        }
        // The cursors the store hands out still page.
        const first = await store.search({ ...parse('Patient', '_sort=birthdate'), count: 1 });
        const second = await store.search({ ...parse('Patient', '_sort=birthdate'), count: 1, cursor: first.next! });
        assert.deepEqual([first.matches[0].id, second.matches[0].id], ['k0', 'k1']);
      }
    });

    test('a long string value (900 CJK characters) is stored and found by prefix and :exact, as on the embedded store', async () => {
      const store = await pgStore();
      const long = Array.from({ length: 900 }, (_, i) => String.fromCharCode(0x4e00 + ((i * 7919) % 20000))).join('');
      await store.transaction((tx) => tx.create({ resourceType: 'Observation', id: 'long', status: 'final', code: { text: long }, valueString: long } as Resource & { id: string }));
      await store.transaction((tx) => tx.create({ resourceType: 'Observation', id: 'near', status: 'final', code: { text: 'x' }, valueString: `${long.slice(0, 899)}x` } as Resource & { id: string }));
      const ids = async (q: string) => (await store.search(parse('Observation', q))).matches.map((m) => m.id).sort();
      assert.deepEqual(await ids(`value-string=${encodeURIComponent(long.slice(0, 10))}`), ['long', 'near']);
      assert.deepEqual(await ids(`value-string:exact=${encodeURIComponent(long)}`), ['long']);
      assert.deepEqual(await ids(`value-string:exact=${encodeURIComponent(`${long.slice(0, 899)}x`)}`), ['near']);
      assert.deepEqual(await ids(`value-string:exact=${encodeURIComponent(long.slice(0, 600))}`), []);
      assert.deepEqual(await ids(`code:text=${encodeURIComponent(long.slice(0, 700))}`), ['long']);
      assert.deepEqual(await ids('_sort=value-string&_count=5'), ['long', 'near']);
    });

    test('a value PostgreSQL cannot index (a text of a million words, a 5000-character code) is a 422, not a 500', async () => {
      const store = await pgStore();
      const words = Array.from({ length: 150_000 }, (_, i) => `w${i.toString(36)}x`).join(' ');
      await assert.rejects(store.transaction((tx) => tx.create({
        resourceType: 'Basic', id: 'huge', code: { text: 'x' }, text: { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml">${words}</div>` },
      } as Resource & { id: string })), status(422));
      await assert.rejects(store.transaction((tx) => tx.create({
        resourceType: 'Patient', id: 'code', identifier: [{ system: 'urn:x', value: randomBytes(2500).toString('hex') }],
      } as Resource & { id: string })), status(422));
      assert.equal(await store.read('Basic', 'huge'), undefined);
    });

    test('nodes given the same name still hear each other\'s changes (derived access facts are re-derived)', async () => {
      const schema = freshSchema('probe');
      const a = await pgStore({ schema, node: 'same' });
      const b = await pgStore({ schema, node: 'same' });
      const before = b.generation(['Consent']);
      await a.transaction((tx) => tx.create({ resourceType: 'Consent', id: 'c1', status: 'draft' } as Resource & { id: string }));
      const deadline = Date.now() + 2000;
      while (Date.now() < deadline && b.generation(['Consent']) === before) await new Promise((r) => setTimeout(r, 10));
      assert.notEqual(b.generation(['Consent']), before, 'node b never heard node a\'s write');
    });

    test('a revocation written before a node listens is reported once it listens (a node starting beside a revocation misses none)', async () => {
      const schema = freshSchema('probe');
      const db = new Database({ url: postgresUrl!, schema, max: 4 });
      opened.push(db);
      const key = { id: 'auth-record.1', version: 1, key: randomBytes(32) };
      const lookupKey = randomBytes(32);
      const a = await PgAuthStore.open({ db, key, lookupKey });
      const b = await PgAuthStore.open({ db, key, lookupKey });
      const stopA = await a.watch(['RevokedAccessToken'], () => undefined);
      // b read its revocations at start (none) ...
      assert.deepEqual(await b.oauthList('RevokedAccessToken'), []);
      // ... then a revokes, before b listens ...
      await a.oauthUpsert('RevokedAccessToken', 'jti-1', { jti: 'jti-1' }, 600);
      // ... and b must still be told to read them again.
      const heard: string[] = [];
      const stopB = await b.watch(['RevokedAccessToken'], (m) => heard.push(m));
      const deadline = Date.now() + 1000;
      while (Date.now() < deadline && heard.length === 0) await new Promise((r) => setTimeout(r, 10));
      await stopA();
      await stopB();
      assert.deepEqual(heard, ['RevokedAccessToken']);
    });

    test('a URL naming its own session options keeps them, and the connection still works in Bastion\'s schema', async () => {
      const schema = freshSchema('probe');
      const db = new Database({ url: `${postgresUrl!}?options=${encodeURIComponent('-c statement_timeout=5000')}`, schema, max: 1 });
      opened.push(db);
      const [{ search_path: path }] = await db.query<{ search_path: string }>('SHOW search_path');
      const [{ statement_timeout: timeout }] = await db.query<{ statement_timeout: string }>('SHOW statement_timeout');
      const [{ TimeZone: zone }] = await db.query<{ TimeZone: string }>('SHOW TimeZone');
      assert.deepEqual([path, timeout, zone], [schema, '5s', 'UTC']);
    });

    test('the longest schema name the settings accept still has its notification channels (writes work)', async () => {
      const longest = (max: number) => { for (let n = max; n > 0; n--) if (schemaName.test(`z${'x'.repeat(n - 1)}`)) return n; return 0; };
      const length = longest(100);
      assert.doesNotThrow(() => loadConfig({ database: 'postgres://bastion@db.example/bastion', databaseSchema: `z${'x'.repeat(length - 1)}` }, {}));
      assert.throws(() => loadConfig({ database: 'postgres://bastion@db.example/bastion', databaseSchema: `z${'x'.repeat(length)}` }, {}), ConfigError);
      const schema = `${freshSchema('p')}${'x'.repeat(length - 14)}`;
      assert.equal(schema.length, length);
      const store = await pgStore({ schema });
      await store.transaction((tx) => tx.create({ resourceType: 'Patient', id: 'p1' } as Resource & { id: string }));
      const db = new Database({ url: postgresUrl!, schema, max: 1 });
      opened.push(db);
      const auth = await PgAuthStore.open({ db, key: { id: 'auth-record.1', version: 1, key: randomBytes(32) }, lookupKey: randomBytes(32) });
      const stop = await auth.watch(['RevokedAccessToken'], () => undefined);
      await auth.oauthUpsert('RevokedAccessToken', 'jti', { jti: 'jti' }, 60);
      await stop();
      await admin().exec(`DROP SCHEMA ${schema} CASCADE`);
    });

    test('sign-ins of more users at once than the auth pool has connections all finish (the lock held for one never starves the others)', async () => {
      const db = new Database({ url: postgresUrl!, schema: freshSchema('probe'), max: 3 });
      const store = await PgAuthStore.open({ db, key: { id: 'auth-record.1', version: 1, key: randomBytes(32) }, lookupKey: randomBytes(32) });
      const users = await import('../../src/auth/users.ts');
      for (let i = 0; i < 5; i++) await users.addUser(store, { username: `u${i}`, role: 'admin', password: 'the right password 1!' });
      let timer: NodeJS.Timeout | undefined;
      const stuck = new Promise<'stuck'>((resolve) => (timer = setTimeout(() => resolve('stuck'), 10_000)));
      const signIns = Promise.all(Array.from({ length: 5 }, (_, i) => users.checkPassword(store, `u${i}`, i % 2 ? 'wrong' : 'the right password 1!')));
      const outcome = await Promise.race([signIns, stuck]);
      clearTimeout(timer);
      // A pool left with every connection waiting for another is never ended: only a finished one is closed.
      assert.notEqual(outcome, 'stuck', 'the sign-ins waited for each other\'s connections for good');
      opened.push(db);
      assert.deepEqual((outcome as { ok: boolean }[]).map((r) => r.ok), [true, false, true, false, true]);
    });

    test('a statement the database cancels (a statement_timeout, an administrator) is a 503, not a 500', async () => {
      const store = await pgStore();
      const db = admin();
      const key = 'conditional:Patient?identifier=urn:x|cancelled';
      await db.transaction(async (conn) => {
        // Holds the lock the store's transaction will wait for, then cancels that wait.
        await conn.query('SELECT pg_advisory_xact_lock(hashtextextended(?, 0))', [store.blindIndex(key)]);
        const waiting = store.transaction((tx) => tx.lock!(key));
        let cancelled = false;
        for (let i = 0; i < 100 && !cancelled; i++) {
          await new Promise((resolve) => setTimeout(resolve, 20));
          // That wait only (other tests may be waiting on this server too): the lock's 64 bits are classid and objid.
          const rows = await db.query<{ c: boolean }>(
            `SELECT pg_cancel_backend(pid) AS c FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
               AND ((classid::bigint << 32) | objid::bigint) = hashtextextended(?, 0)`,
            [store.blindIndex(key)],
          );
          cancelled = rows.some((r) => r.c);
        }
        assert.ok(cancelled, 'the store\'s wait was found and cancelled');
        await assert.rejects(waiting, status(503));
      });
    });

    test('? placeholders are numbered outside comments and dollar-quoted text only', () => {
      assert.equal(numbered("SELECT ? -- the node's name?\n, ?"), "SELECT $1 -- the node's name?\n, $2");
      assert.equal(numbered('SELECT ? /* why? it\'s */ , ?'), "SELECT $1 /* why? it's */ , $2");
      assert.equal(numbered("SELECT $$it's ?$$, ?, $t$?$t$, ?"), "SELECT $$it's ?$$, $1, $t$?$t$, $2");
      assert.equal(numbered("SELECT 'a''?', \"b?\", ?"), "SELECT 'a''?', \"b?\", $1");
    });
  });

  describe('sound: properties checked and found to hold', () => {
    test('SQL metacharacters in values, codes and modifiers travel as data or are refused: nothing of them reaches the SQL', async () => {
      const store = await pgStore();
      const odd = `O'Brien?$1 --;\\ "x" /* $$ */`;
      await store.transaction((tx) => tx.create({ resourceType: 'Patient', id: 'odd', name: [{ family: odd }] } as Resource & { id: string }));
      const ids = async (q: string) => (await store.search(parse('Patient', q))).matches.map((m) => m.id);
      assert.deepEqual(await ids(`family:exact=${encodeURIComponent(odd)}`), ['odd']);
      assert.deepEqual(await ids(`family:contains=${encodeURIComponent("'; DROP TABLE resources; --")}`), []);
      assert.deepEqual(await ids(`family:contains=${encodeURIComponent('?$1 --;')}`), ['odd']);
      for (const q of ['_sort=family%22%3B%20DROP%20TABLE%20resources', 'family%27=x', '_has:Observation:subject:code%27%3B=1', 'general-practitioner:Practitioner.name%27=x']) {
        assert.throws(() => parse('Patient', q), status(400), q);
      }
      assert.equal((await store.read('Patient', 'odd'))?.id, 'odd', 'the tables are all there');
    });

    test('at rest: bodies sealed, an SSN in no table (only its blind index), names only in the search index', async () => {
      const store = await pgStore();
      const ssn = '987-65-4329';
      await store.transaction((tx) => tx.create({
        resourceType: 'Patient', id: 'rest1', name: [{ family: 'Quixotic' }],
        identifier: [{ system: 'http://hl7.org/fhir/sid/us-ssn', value: ssn }], text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">Quixotic</div>' },
      } as Resource & { id: string }));
      const dump = async (table: string) => JSON.stringify(await store.db.query(`SELECT * FROM ${table}`), (_k, v) => (v?.type === 'Buffer' ? Buffer.from(v.data).toString('latin1') : v));
      for (const table of ['resources', 'resource_versions', 'search_string', 'search_token', 'search_reference', 'search_uri', 'search_text', 'audit_log']) {
        const text = await dump(table);
        for (const part of [ssn, '987654329', '4329']) assert.ok(!text.includes(part), `${part} in ${table}`);
      }
      assert.ok(!(await dump('resource_versions')).toLowerCase().includes('quixotic'), 'the body is sealed');
      assert.ok((await dump('search_string')).includes('quixotic'), 'the search index holds searchable names (said by bastion compliance)');
      assert.deepEqual((await store.search(parse('Patient', `identifier=http://hl7.org/fhir/sid/us-ssn|${ssn}`))).matches.map((m) => m.id), ['rest1']);
    });

    test('two transactions locking the same resources in opposite orders: one is a 409 the client may retry, the other commits', async () => {
      const store = await pgStore();
      await store.transaction(async (tx) => {
        for (const id of ['x', 'y']) await tx.create({ resourceType: 'Patient', id } as Resource & { id: string });
      });
      let bothHold!: () => void;
      let held = 0;
      const gate = new Promise<void>((resolve) => (bothHold = resolve));
      const crosswise = (first: string, second: string) => store.transaction(async (tx) => {
        await tx.update({ resourceType: 'Patient', id: first, active: true } as Resource & { id: string });
        if (++held === 2) bothHold();
        await gate;
        await tx.update({ resourceType: 'Patient', id: second, active: true } as Resource & { id: string });
      });
      const outcomes = await Promise.allSettled([crosswise('x', 'y'), crosswise('y', 'x')]);
      const refused = outcomes.filter((o) => o.status === 'rejected').map((o) => (o as PromiseRejectedResult).reason);
      assert.equal(refused.length, 1);
      assert.ok(status(409)(refused[0]), String(refused[0]));
    });

    test('PUT to a new id from many connections at once: one creates it, the others update it, versions 1..n without a gap', async () => {
      const store = await pgStore();
      const results = await Promise.all(Array.from({ length: 8 }, (_, i) =>
        store.transaction((tx) => tx.update({ resourceType: 'Patient', id: 'racing', name: [{ family: `N${i}` }] } as Resource & { id: string }))));
      assert.equal(results.filter((r) => r.created).length, 1);
      assert.deepEqual(results.map((r) => Number(r.stored.versionId)).sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8]);
      assert.equal((await store.history({ resourceType: 'Patient', id: 'racing', count: 50, offset: 0 })).total, 8);
    });

    test('a database that cannot be reached, or refuses the password, is a configuration error that never repeats the password', async () => {
      const refused = 'postgres://bastion:S3cret-pw@127.0.0.1:1/bastion';
      const wrong = new URL(postgresUrl!);
      wrong.password = 'S3cret-pw';
      for (const url of [refused, wrong.toString()]) {
        const err = await openStore(dir, keys, { database: { url, schema: freshSchema('probe'), poolSize: 2 } }).then(() => undefined, (e: unknown) => e);
        assert.ok(err instanceof ConfigError, String(err));
        assert.ok(!err.message.includes('S3cret-pw') && !err.message.includes(url), err.message);
      }
    });

    test('search semantics are the embedded store\'s: case, accents, prefixes, full text, dates, numbers, sorting, chains', async () => {
      const lite = new SqliteStore({ path: join(dir, `same-${randomBytes(4).toString('hex')}.db`), key: randomBytes(32) });
      opened.push(lite);
      const pg = await pgStore();
      const fixtures = [
        { resourceType: 'Patient', id: 'a1', name: [{ family: 'Zoë', given: ['Ärger'] }], birthDate: '1980-05-15', text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">Straße café naïve 3.5mg</div>' } },
        { resourceType: 'Patient', id: 'a2', name: [{ family: 'zoe', given: ['arger'] }], birthDate: '1980-05' },
        { resourceType: 'Patient', id: 'a3', name: [{ family: 'ZOE', given: ['Éclair'] }], birthDate: '1980' },
        { resourceType: 'Patient', id: 'a4', name: [{ family: 'Ωmega', given: ['日本'] }], birthDate: '1980-05-15T10:00:00Z' },
        { resourceType: 'Patient', id: 'a5', name: [{ family: 'apple' }, { family: 'Banana' }] },
        { resourceType: 'Patient', id: 'a6', name: [{ family: '_under' }, { family: 'a%b' }] },
        { resourceType: 'Observation', id: 'o1', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '1' }], text: 'Hémoglobine A1c' }, subject: { reference: 'Patient/a1' }, valueQuantity: { value: 100.0 }, effectiveDateTime: '2020-01-01T00:00:00.123Z' },
        { resourceType: 'Observation', id: 'o2', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '1' }] }, subject: { reference: 'Patient/a2' }, valueQuantity: { value: 99.95 }, effectiveDateTime: '2020-01-01' },
        { resourceType: 'Observation', id: 'o3', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '2' }] }, subject: { reference: 'Patient/a3' }, valueQuantity: { value: 1e-7 }, effectiveDateTime: '2020' },
        { resourceType: 'Location', id: 'l1', position: { latitude: 51.5, longitude: -0.12 } },
        { resourceType: 'Location', id: 'l2', position: { latitude: 51.6, longitude: -0.12 } },
        { resourceType: 'List', id: 'L', status: 'current', mode: 'working', entry: [{ item: { reference: 'Patient/a1' } }, { item: { reference: 'Patient/a5' } }] },
      ] as (Resource & { id: string })[];
      for (const store of [lite, pg] as Store[]) await store.transaction(async (tx) => { for (const r of fixtures) await tx.create(structuredClone(r)); });
      const queries = [
        'Patient?name=zoe', 'Patient?name=ZOË', 'Patient?name:exact=zoe', 'Patient?name:contains=%', 'Patient?name=_', 'Patient?_sort=family', 'Patient?_sort=-name',
        'Patient?_text=cafe', 'Patient?_text=stra*', 'Patient?_content=naive', 'Patient?_content=zo', 'Patient?_content="zoe arger"', 'Patient?_content=日本', 'Patient?_content=3.5mg',
        'Patient?birthdate=1980-05', 'Patient?birthdate=ge1980-05-15', 'Patient?birthdate=sa1980-05-14', 'Patient?birthdate=eb1980-06', 'Patient?birthdate=ap1980-05-15', 'Patient?_sort=-birthdate',
        'Observation?value-quantity=100', 'Observation?value-quantity=gt99.95', 'Observation?value-quantity=1e-7', 'Observation?date=eq2020-01-01T00:00:00.123Z', 'Observation?_sort=value-quantity',
        'Observation?code:text=hemo', 'Observation?subject:Patient.name=zoe', 'Patient?_has:Observation:subject:code=1', 'Location?near=51.5|-0.12|5|km', 'Patient?_list=L', 'Patient?_sort=_id',
      ];
      for (const q of queries) {
        const [type, query] = q.split('?');
        const [a, b] = await Promise.all([lite, pg].map(async (s) => (await (s as Store).search(parse(type, query))).matches.map((m) => m.id).join(',')));
        assert.equal(b, a, q);
      }
    });
  });
});

describe('database settings: review probes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bastion-config-probes-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const fileWith = (settings: Record<string, unknown>) => {
    const path = join(dir, `config-${randomBytes(4).toString('hex')}.json`);
    writeFileSync(path, JSON.stringify(settings));
    return path;
  };
  const env = { BASTION_DATA_DIR: dir };

  test('a password in the configuration file is refused, in the URL\'s userinfo or as its password parameter', () => {
    for (const url of ['postgres://bastion:S3cret@db.example/bastion', 'postgres://bastion@db.example/bastion?sslmode=verify-full&password=S3cret']) {
      assert.throws(() => loadConfig({}, env, fileWith({ database: url })), (err: unknown) => err instanceof ConfigError && /environment/.test(err.message) && !err.message.includes('S3cret'), url);
    }
    // From the environment it is taken.
    assert.equal(loadConfig({}, { ...env, BASTION_DATABASE_URL: 'postgres://bastion:S3cret@db.example/bastion' }).database?.url, 'postgres://bastion:S3cret@db.example/bastion');
  });

  test('the database URL, schema and pool size are checked: a schema is a plain lower-case name (it is written into SQL)', () => {
    const url = 'postgres://bastion@db.example/bastion';
    for (const schema of ['public; DROP TABLE x', 'Public', 'a-b', '"x"', '1abc', 'x'.repeat(64)]) {
      assert.throws(() => loadConfig({ database: url, databaseSchema: schema }, env), ConfigError, schema);
      assert.throws(() => new Database({ url, schema }), /plain lower-case/, schema);
    }
    assert.throws(() => loadConfig({ database: 'mysql://db.example/x' }, env), ConfigError);
    assert.throws(() => loadConfig({ database: 'not a url' }, env), ConfigError);
    assert.throws(() => loadConfig({ database: url, databasePoolSize: 1 }, env), ConfigError);
    assert.throws(() => loadConfig({ database: url, databasePoolSize: 501 }, env), ConfigError);
    assert.throws(() => loadConfig({ nodeName: 'a|b' }, env), ConfigError, 'a node name is written into notifications');
    const config = loadConfig({ database: url, databaseSchema: 'bastion_prod', databasePoolSize: 20 }, env);
    assert.deepEqual(config.database, { url, schema: 'bastion_prod', poolSize: 20 });
    assert.equal(config.encryptResourceBodies, true, 'bodies are sealed by default on PostgreSQL');
  });

  test('the configuration hash on the audit trail is the same at each start, and is no hash of the database password', () => {
    const data = mkdtempSync(join(dir, 'start-'));
    const script = `
      import { loadConfig } from ${JSON.stringify(join(process.cwd(), 'src/config/config.ts'))};
      import { startupEvents } from ${JSON.stringify(join(process.cwd(), 'src/audit/startup-events.ts'))};
      const config = loadConfig({ dataDir: ${JSON.stringify(data)} }, { BASTION_DATABASE_URL: 'postgres://bastion:' + process.argv[1] + '@db.example/bastion' });
      process.stdout.write(startupEvents(config, []).find((e) => e.kind === 'config-loaded').detail);`;
    // Each start is a process of its own (its default node name holds its process id).
    const start = (password: string) => execFileSync(process.execPath, ['--input-type=module', '-e', script, password], { encoding: 'utf8' });
    assert.match(start('S3cret'), / first$/);
    assert.match(start('S3cret'), / unchanged$/, 'a restart with the same settings is no configuration change');
    // Whoever reads the trail cannot test a guess of the password against the hash.
    const hash = /sha256=([0-9a-f]+)/.exec(start('S3cret'))![1];
    const config = loadConfig({ dataDir: data }, { BASTION_DATABASE_URL: 'postgres://bastion:S3cret@db.example/bastion' });
    for (const guess of [config, { ...config, nodeName: undefined }]) {
      assert.notEqual(createHash('sha256').update(JSON.stringify(guess)).digest('hex'), hash);
    }
  });
});
