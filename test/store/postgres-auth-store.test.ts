import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Database } from '../../src/store/postgres/database.ts';
import { PgAuthStore, UnreadableAuthRecordError } from '../../src/store/postgres/auth-store.ts';
import { DuplicateError } from '../../src/store/auth-store.ts';
import type { DataKey } from '../../src/crypto/data-keys.ts';
import type { UserRecord } from '../../src/store/auth-store.ts';
import { sealedVersion } from '../../src/crypto/aead.ts';
import { freshSchema, pgSkip, postgresUrl } from '../postgres.ts';
import { authStoreConformance } from './auth-store-conformance.ts';
import { addUser, checkPassword, lockoutThreshold } from '../../src/auth/users.ts';

const pools: Database[] = [];
after(async () => {
  for (const db of pools.splice(0)) await db.close();
});

/** A pool on `schema` (a fresh one by default), closed when the file ends: the stores do not own it. */
function database(schema = freshSchema('auth'), max = 4): Database {
  const db = new Database({ url: postgresUrl!, schema, max });
  pools.push(db);
  return db;
}

const dataKey = (version: number): DataKey => ({ id: `auth-record.${version}`, version, key: randomBytes(32) });
const key1 = dataKey(1);
const lookupKey = randomBytes(32);
const open = (db: Database, key: DataKey = key1, keyByVersion?: (v: number) => DataKey | undefined) => PgAuthStore.open({ db, key, lookupKey, ...(keyByVersion ? { keyByVersion } : {}) });

const user = (id: string, username: string, extra: Partial<UserRecord> = {}): UserRecord => ({
  id,
  username,
  role: 'patient',
  failedLogins: 0,
  disabled: false,
  created: '2024-01-02T03:04:05.000Z',
  ...extra,
});

const unreadable = (err: unknown) => err instanceof UnreadableAuthRecordError;

const tables = ['auth_users', 'auth_clients', 'auth_oauth'] as const;

describe('PgAuthStore', { skip: pgSkip }, () => {
  authStoreConformance('postgres', () => open(database()));

  test('its tables are auth_users, auth_clients and auth_oauth, at schema version 1 of component auth', async () => {
    const db = database();
    await open(db);
    await open(db); // a second node starting: nothing to migrate
    const names = (await db.query<{ table_name: string }>('SELECT table_name FROM information_schema.tables WHERE table_schema = ? ORDER BY table_name', [db.schema])).map((r) => r.table_name);
    assert.deepEqual(names, ['auth_clients', 'auth_oauth', 'auth_users', 'bastion_schema']);
    assert.deepEqual(await db.query('SELECT component, version FROM bastion_schema'), [{ component: 'auth', version: 1 }]);
  });

  test('no secret and no lookup value is in clear in any row: password hash, TOTP secret, recovery codes, username, client secret, token ids and payloads', async () => {
    const db = database();
    const store = await open(db);
    const secrets = {
      username: 'carol.patient@example.org',
      passwordHash: 'scrypt$16384$8$1$SALTMARKER$HASHMARKER',
      totpSecret: 'TOTPSECRETMARKERAAAA',
      recovery: 'RECOVERYCODEMARKER',
      fhirUser: 'Patient/FHIRUSERMARKER',
      clientSecret: 'CLIENTSECRETMARKER',
      redirect: 'https://REDIRECTMARKER.example/cb',
      refreshToken: 'REFRESHTOKENIDMARKER',
      code: 'AUTHCODEIDMARKER',
      grantId: 'GRANTIDMARKER',
      accountId: 'ACCOUNTIDMARKER',
      scope: 'SCOPEMARKER',
      sessionUid: 'SESSIONUIDMARKER',
      userCode: 'USERCODEMARKER',
    };
    await store.addUser(user('u-1', secrets.username, { passwordHash: secrets.passwordHash, totpSecret: secrets.totpSecret, recoveryCodes: [secrets.recovery], fhirUser: secrets.fhirUser }));
    await store.addClient({ clientId: 'app-1', metadata: { client_id: 'app-1', client_secret: secrets.clientSecret, redirect_uris: [secrets.redirect] }, created: '2024-01-02T03:04:05.000Z' });
    await store.oauthUpsert('RefreshToken', secrets.refreshToken, { grantId: secrets.grantId, accountId: secrets.accountId, scope: secrets.scope }, 600);
    await store.oauthUpsert('AuthorizationCode', secrets.code, { grantId: secrets.grantId, accountId: secrets.accountId }, 600);
    await store.oauthUpsert('Session', 'session-cookie-id', { uid: secrets.sessionUid, accountId: secrets.accountId }, 600);
    await store.oauthUpsert('DeviceCode', 'device-code-id', { userCode: secrets.userCode, grantId: secrets.grantId }, 600);

    let values = 0;
    for (const table of tables) {
      const rows = await db.query<Record<string, unknown>>(`SELECT * FROM ${table}`);
      assert.ok(rows.length > 0);
      for (const row of rows) {
        for (const [column, value] of Object.entries(row)) {
          values++;
          for (const [what, secret] of Object.entries(secrets)) {
            if (Buffer.isBuffer(value)) assert.equal(value.includes(Buffer.from(secret)), false, `${table}.${column} holds the ${what} in clear`);
            else assert.equal(String(value).includes(secret), false, `${table}.${column} holds the ${what} in clear`);
          }
        }
        const sealed = row.record ?? row.payload;
        assert.ok(Buffer.isBuffer(sealed) && sealedVersion(sealed) === 1, `${table}: the record is a ciphertext under key version 1`);
      }
      // As a dump would show them (bytea in hex) too.
      for (const { j } of await db.query<{ j: string }>(`SELECT row_to_json(t)::text AS j FROM ${table} t`)) {
        for (const [what, secret] of Object.entries(secrets)) {
          assert.equal(j.includes(secret) || j.includes(Buffer.from(secret).toString('hex')), false, `${table} as text holds the ${what}`);
        }
      }
    }
    assert.ok(values > 20);
    // And everything still reads back.
    assert.equal((await store.userByName(secrets.username))?.totpSecret, secrets.totpSecret);
    assert.equal((await store.oauthFindBy('DeviceCode', 'user_code', secrets.userCode))?.payload.grantId, secrets.grantId);
    assert.equal((await store.oauthFindBy('Session', 'uid', secrets.sessionUid))?.payload.accountId, secrets.accountId);
    assert.equal((await store.oauthFind('RefreshToken', secrets.refreshToken))?.payload.scope, secrets.scope);
  });

  test('usernames, uids, user codes and grant ids are found through a keyed HMAC: no unkeyed hash of them either, and another lookup key finds nothing', async () => {
    const db = database();
    const store = await open(db);
    await store.addUser(user('u-1', 'dave@example.org'));
    await store.oauthUpsert('DeviceCode', 'dc-1', { userCode: 'WXYZ-BCDF', grantId: 'g-1', uid: 'uid-1' }, 600);
    const dump = (await db.query<{ j: string }>(`SELECT string_agg(row_to_json(t)::text, ' ') AS j FROM (SELECT * FROM auth_users) t`))[0].j
      + (await db.query<{ j: string }>(`SELECT string_agg(row_to_json(t)::text, ' ') AS j FROM (SELECT * FROM auth_oauth) t`))[0].j;
    for (const value of ['dave@example.org', 'WXYZ-BCDF', 'g-1', 'uid-1']) {
      for (const encoding of ['hex', 'base64', 'base64url'] as const) {
        assert.equal(dump.includes(createHash('sha256').update(value).digest(encoding)), false, `an unkeyed SHA-256 of ${value} is stored`);
      }
    }
    const otherLookupKey = await PgAuthStore.open({ db, key: key1, lookupKey: randomBytes(32) });
    assert.equal(await otherLookupKey.userByName('dave@example.org'), undefined);
    assert.equal(await otherLookupKey.oauthFindBy('DeviceCode', 'user_code', 'WXYZ-BCDF'), undefined);
    assert.equal((await otherLookupKey.userById('u-1'))?.username, 'dave@example.org', 'the record itself opens: only the lookups are keyed');
  });

  describe('a sealed record moved to another row does not open: an error, never another row\'s data', () => {
    test('a user\'s record copied into another user\'s row', async () => {
      const db = database();
      const store = await open(db);
      await store.addUser(user('u-1', 'alice', { role: 'admin' }));
      await store.addUser(user('u-2', 'bob'));
      await db.query(`UPDATE auth_users SET record = (SELECT record FROM auth_users WHERE id = 'u-1') WHERE id = 'u-2'`);
      await assert.rejects(store.userById('u-2'), unreadable);
      await assert.rejects(store.userByName('bob'), unreadable);
      assert.equal((await store.userById('u-1'))?.role, 'admin', 'the original still opens');
    });

    test('a user\'s row moved to another id', async () => {
      const db = database();
      const store = await open(db);
      await store.addUser(user('u-1', 'alice', { role: 'admin' }));
      await store.addUser(user('u-2', 'bob'));
      await db.query(`DELETE FROM auth_users WHERE id = 'u-2'`);
      await db.query(`UPDATE auth_users SET id = 'u-2' WHERE id = 'u-1'`);
      await assert.rejects(store.userById('u-2'), unreadable);
      await assert.rejects(store.userByName('alice'), unreadable);
    });

    test('a row relabelled with another user\'s username', async () => {
      const db = database();
      const store = await open(db);
      await store.addUser(user('u-1', 'alice', { role: 'admin' }));
      await store.addUser(user('u-2', 'mallory'));
      const mac = async (id: string) => (await db.query<{ m: string }>('SELECT username_mac AS m FROM auth_users WHERE id = ?', [id]))[0].m;
      const [alice, mallory] = [await mac('u-1'), await mac('u-2')];
      await db.query(`UPDATE auth_users SET username_mac = 'x' WHERE id = 'u-1'`);
      await db.query('UPDATE auth_users SET username_mac = ? WHERE id = ?', [alice, 'u-2']);
      await db.query('UPDATE auth_users SET username_mac = ? WHERE id = ?', [mallory, 'u-1']);
      // Signing in as alice would otherwise load mallory's record (and password).
      await assert.rejects(store.userByName('alice'), unreadable);
      await assert.rejects(store.userByName('mallory'), unreadable);
    });

    test('a client\'s metadata copied into another client\'s row', async () => {
      const db = database();
      const store = await open(db);
      await store.addClient({ clientId: 'trusted', metadata: { redirect_uris: ['https://trusted.example/cb'] }, created: '2024-01-01T00:00:00Z' });
      await store.addClient({ clientId: 'other', metadata: { redirect_uris: ['https://other.example/cb'] }, created: '2024-01-01T00:00:00Z' });
      await db.query(`UPDATE auth_clients SET record = (SELECT record FROM auth_clients WHERE client_id = 'trusted') WHERE client_id = 'other'`);
      await assert.rejects(store.client('other'), unreadable);
      assert.ok(await store.client('trusted'));
    });

    // OAuth rows are keyed by the SHA-256 of the id, as in the embedded store.
    const keyOf = (id: string) => createHash('sha256').update(id).digest('base64url');

    test('an OAuth payload copied to another id of its model', async () => {
      const db = database();
      const store = await open(db);
      // Same grant, same expiry: only the id tells the rows apart.
      await store.oauthUpsert('AuthorizationCode', 'code-1', { grantId: 'g1', accountId: 'u-admin' }, undefined);
      await store.oauthUpsert('AuthorizationCode', 'code-2', { grantId: 'g1', accountId: 'u-other' }, undefined);
      await db.query('UPDATE auth_oauth SET payload = (SELECT payload FROM auth_oauth WHERE key = ?) WHERE key = ?', [keyOf('code-1'), keyOf('code-2')]);
      await assert.rejects(store.oauthFind('AuthorizationCode', 'code-2'), unreadable);
      assert.equal((await store.oauthFind('AuthorizationCode', 'code-1'))?.payload.accountId, 'u-admin', 'the original still opens');
    });

    test('an OAuth row copied to another model under the same key', async () => {
      const db = database();
      const store = await open(db);
      await store.oauthUpsert('AccessToken', 'tok-1', { grantId: 'g1' }, 600);
      await db.query(
        `INSERT INTO auth_oauth (model, key, payload, grant_mac, uid_mac, user_code_mac, expires_at)
         SELECT 'RefreshToken', key, payload, grant_mac, uid_mac, user_code_mac, expires_at FROM auth_oauth WHERE key = ?`,
        [keyOf('tok-1')],
      );
      await assert.rejects(store.oauthFind('RefreshToken', 'tok-1'), unreadable);
    });

    test('an OAuth row given a later expiry, or none (a token kept alive past its life)', async () => {
      const db = database();
      const store = await open(db);
      await store.oauthUpsert('AccessToken', 'at-1', { grantId: 'g1' }, 60);
      await store.oauthUpsert('AccessToken', 'at-2', { grantId: 'g1' }, 60);
      await db.query('UPDATE auth_oauth SET expires_at = expires_at + 86400 WHERE key = ?', [keyOf('at-1')]);
      await db.query('UPDATE auth_oauth SET expires_at = NULL WHERE key = ?', [keyOf('at-2')]);
      await assert.rejects(store.oauthFind('AccessToken', 'at-1'), unreadable);
      await assert.rejects(store.oauthFind('AccessToken', 'at-2'), unreadable);
    });

    test('an OAuth row relabelled with another grant (so that revoking its own grant would miss it)', async () => {
      const db = database();
      const store = await open(db);
      await store.oauthUpsert('RefreshToken', 'rt-1', { grantId: 'g1' }, 600);
      await store.oauthUpsert('RefreshToken', 'rt-2', { grantId: 'g2' }, 600);
      await db.query('UPDATE auth_oauth SET grant_mac = (SELECT grant_mac FROM auth_oauth WHERE key = ?) WHERE key = ?', [keyOf('rt-1'), keyOf('rt-2')]);
      await assert.rejects(store.oauthFind('RefreshToken', 'rt-2'), unreadable);
    });

    test('an OAuth row relabelled with another session\'s uid (findByUid would hand out another session)', async () => {
      const db = database();
      const store = await open(db);
      await store.oauthUpsert('Session', 's-1', { uid: 'uid-1', accountId: 'u-admin' }, 600);
      await store.oauthUpsert('Session', 's-2', { uid: 'uid-2', accountId: 'u-other' }, 600);
      await db.query('UPDATE auth_oauth SET uid_mac = (SELECT uid_mac FROM auth_oauth WHERE key = ?) WHERE key = ?', [keyOf('s-1'), keyOf('s-2')]);
      await store.oauthDestroy('Session', 's-1');
      await assert.rejects(store.oauthFindBy('Session', 'uid', 'uid-1'), unreadable);
    });

    test('an OAuth row relabelled with another device\'s user code', async () => {
      const db = database();
      const store = await open(db);
      await store.oauthUpsert('DeviceCode', 'dc-1', { userCode: 'AAAA-BBBB', grantId: 'g1' }, 600);
      await store.oauthUpsert('DeviceCode', 'dc-2', { userCode: 'CCCC-DDDD', grantId: 'g2' }, 600);
      await db.query('UPDATE auth_oauth SET user_code_mac = (SELECT user_code_mac FROM auth_oauth WHERE key = ?) WHERE key = ?', [keyOf('dc-1'), keyOf('dc-2')]);
      await store.oauthDestroy('DeviceCode', 'dc-1');
      await assert.rejects(store.oauthFindBy('DeviceCode', 'user_code', 'AAAA-BBBB'), unreadable);
    });
  });

  test('records sealed under an older key version still open through keyByVersion; new writes use the current version; a version it lacks is an error', async () => {
    const schema = freshSchema('auth');
    const db = database(schema);
    const v1 = await open(db, key1);
    await v1.addUser(user('u-old', 'old-user', { totpSecret: 'JBSWY3DPEHPK3PXP' }));
    await v1.addClient({ clientId: 'app-old', metadata: { scope: 'old' }, created: '2024-01-01T00:00:00Z' });
    await v1.oauthUpsert('Grant', 'g-old', { accountId: 'u-old' }, undefined);

    const key2 = dataKey(2);
    const v2 = await open(db, key2, (v) => (v === 1 ? key1 : undefined));
    assert.equal((await v2.userByName('old-user'))?.totpSecret, 'JBSWY3DPEHPK3PXP');
    assert.equal((await v2.client('app-old'))?.metadata.scope, 'old');
    assert.equal((await v2.oauthFind('Grant', 'g-old'))?.payload.accountId, 'u-old');

    await v2.addUser(user('u-new', 'new-user'));
    const version = async (id: string) => sealedVersion((await db.query<{ record: Buffer }>('SELECT record FROM auth_users WHERE id = ?', [id]))[0].record);
    assert.equal(await version('u-new'), 2);
    assert.equal(await version('u-old'), 1);
    await v2.updateUser({ ...(await v2.userById('u-old'))!, failedLogins: 1 });
    assert.equal(await version('u-old'), 2, 'an update re-seals under the current key');

    // A node without version 1 reads what version 2 sealed, and refuses (loudly) what only version 1 opens.
    const v2only = await open(db, key2);
    assert.equal((await v2only.userById('u-new'))?.username, 'new-user');
    await assert.rejects(v2only.client('app-old'), (err: unknown) => unreadable(err) && /version 1/.test((err as Error).message));
    await assert.rejects(v2only.oauthFind('Grant', 'g-old'), unreadable);

    // Another key that claims version 2 opens nothing.
    const impostor = await open(db, dataKey(2));
    await assert.rejects(impostor.userById('u-new'), unreadable);
  });

  describe('two nodes on one schema', () => {
    const twoNodes = async () => {
      const schema = freshSchema('auth');
      const [a, b] = [await open(database(schema, 6)), await open(database(schema, 6))];
      return { a, b };
    };

    test('wrong passwords tried on both nodes at once all count: the account locks at the threshold', async () => {
      const { a, b } = await twoNodes();
      await addUser(a, { username: 'target', role: 'nurse', password: 'the right password 123' });
      // Each node takes its own attempts one at a time; without the lock across nodes, each would
      // write back a count the other had already moved, and 8 guesses would stay under 5 failures.
      const results = await Promise.all(Array.from({ length: 8 }, (_, i) => checkPassword(i % 2 ? b : a, 'target', `wrong ${i}`)));
      const locked = results.filter((r) => !r.ok && r.reason === 'locked').length;
      const user = await a.userByName('target');
      assert.equal(user?.failedLogins, lockoutThreshold, `failures counted: ${user?.failedLogins}`);
      assert.ok(user?.lockedUntil !== undefined && user.lockedUntil > Date.now());
      assert.equal(locked, 8 - lockoutThreshold + 1, 'the attempt that reached the threshold and every one after it are refused as locked');
    });

    test('each sees the other\'s writes at once: users, clients, OAuth records, consumes, deletes', async () => {
      const { a, b } = await twoNodes();
      await a.addUser(user('u-1', 'alice'));
      assert.equal((await b.userByName('alice'))?.id, 'u-1');
      assert.equal((await a.userById('u-1'))?.failedLogins, 0, 'a has read it too (a cache would now hold it)');
      await b.updateUser(user('u-1', 'alice', { failedLogins: 4, lockedUntil: 1_900_000_000_000 }));
      assert.equal((await a.userById('u-1'))?.failedLogins, 4, 'no stale cached copy on a');
      await assert.rejects(b.addUser(user('u-2', 'alice')), DuplicateError);
      assert.equal(await a.countUsers(), 1);

      await b.addClient({ clientId: 'app-1', metadata: { scope: 's' }, created: '2024-01-01T00:00:00Z' });
      assert.equal((await a.client('app-1'))?.metadata.scope, 's');
      await assert.rejects(a.addClient({ clientId: 'app-1', metadata: {}, created: '2024-01-01T00:00:00Z' }), DuplicateError);

      await a.oauthUpsert('Session', 's-1', { uid: 'uid-1', accountId: 'u-1' }, 600);
      assert.equal((await b.oauthFindBy('Session', 'uid', 'uid-1'))?.payload.accountId, 'u-1');
      await a.oauthUpsert('RefreshToken', 'rt-1', { grantId: 'g1' }, 600);
      assert.equal((await a.oauthFind('RefreshToken', 'rt-1'))?.consumed, undefined);
      assert.equal(await b.oauthConsume('RefreshToken', 'rt-1'), true);
      assert.ok((await a.oauthFind('RefreshToken', 'rt-1'))?.consumed !== undefined);
      assert.equal(await a.oauthConsume('RefreshToken', 'rt-1'), false);
      assert.ok(await b.oauthFind('RefreshToken', 'rt-1'));
      await a.oauthRevokeByGrantId('g1');
      assert.equal(await b.oauthFind('RefreshToken', 'rt-1'), undefined);
      await b.oauthDestroy('Session', 's-1');
      assert.equal(await a.oauthFindBy('Session', 'uid', 'uid-1'), undefined);
      assert.deepEqual(await a.oauthList('Session'), []);
    });

    test('a code consumed on one node cannot be consumed on the other, even at the same moment', async () => {
      const { a, b } = await twoNodes();
      for (let i = 0; i < 15; i++) {
        const code = `code-${i}`;
        await a.oauthUpsert('AuthorizationCode', code, { grantId: `g-${i}` }, 600);
        const results = await Promise.all(Array.from({ length: 10 }, (_, j) => (j % 2 === 0 ? a : b).oauthConsume('AuthorizationCode', code)));
        assert.equal(results.filter(Boolean).length, 1, `${code}: consumed once`);
      }
    });
  });

  test('close() leaves the shared pool open for its owner', async () => {
    const db = database();
    const store = await open(db);
    await store.addUser(user('u-1', 'alice'));
    await store.close();
    assert.deepEqual(await db.query('SELECT 1 AS one'), [{ one: 1 }]);
    const again = await open(db);
    assert.equal((await again.userById('u-1'))?.username, 'alice');
  });

  test('expired records are swept from the table, at most once a minute', async (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: 1_750_000_000_000 });
    const db = database();
    const store = await open(db);
    const expiredRows = async () => (await db.query<{ n: number }>('SELECT count(*) AS n FROM auth_oauth WHERE expires_at < ?', [Math.floor(Date.now() / 1000)]))[0].n;
    await store.oauthUpsert('Session', 'first', {}, -10);
    assert.equal(await expiredRows(), 0, 'the first write sweeps');
    await store.oauthUpsert('Session', 'second', {}, -10);
    t.mock.timers.tick(59_000);
    await store.oauthUpsert('Session', 'live', {}, 600);
    assert.equal(await expiredRows(), 1, 'no second sweep within the minute');
    t.mock.timers.tick(1_000);
    await store.oauthUpsert('Session', 'another', {}, 600);
    assert.equal(await expiredRows(), 0, 'a minute on, the next write sweeps');
    assert.equal((await db.query<{ n: number }>('SELECT count(*) AS n FROM auth_oauth'))[0].n, 2, 'live records stay');
  });
});
