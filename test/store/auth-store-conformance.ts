import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { AuthStore, ClientRecord, UserRecord } from '../../src/store/auth-store.ts';
import { DuplicateError } from '../../src/store/auth-store.ts';

/**
 * The behaviour every AuthStore must have, written against the interface and the embedded store's
 * semantics: users and clients with duplicates refused, and the OAuth core's records (keyed by id
 * per model, expiry, compare-and-set consume, revoke by grant, lookups by uid and user code).
 * `makeStore` gives a fresh, empty store; the suite closes it.
 */
export function authStoreConformance(name: string, makeStore: () => Promise<AuthStore>): void {
  const withStore = (title: string, fn: (store: AuthStore, t: TestContext) => Promise<void>) =>
    test(title, async (t) => {
      const store = await makeStore();
      try {
        await fn(store, t);
      } finally {
        await store.close();
      }
    });

  const user = (id: string, username: string, extra: Partial<UserRecord> = {}): UserRecord => ({
    id,
    username,
    role: 'nurse',
    failedLogins: 0,
    disabled: false,
    created: '2024-01-02T03:04:05.000Z',
    ...extra,
  });
  const client = (clientId: string, metadata: Record<string, unknown> = {}): ClientRecord => ({
    clientId,
    metadata: { client_id: clientId, redirect_uris: ['https://app.example/cb'], token_endpoint_auth_method: 'none', ...metadata },
    created: '2024-01-02T03:04:05.000Z',
  });
  const nowSeconds = () => Math.floor(Date.now() / 1000);
  /** Date.now() under the test's control (restored after the test); timers stay real. */
  const fakeClock = (t: TestContext) => t.mock.timers.enable({ apis: ['Date'], now: 1_750_000_000_000 });

  describe(`auth store conformance (${name}): users`, () => {
    withStore('a user added is read back whole by id and by username', async (store) => {
      const alice = user('u-1', 'alice', {
        fhirUser: 'Practitioner/7',
        passwordHash: 'scrypt$16384$8$1$c2FsdA$aGFzaA',
        totpSecret: 'JBSWY3DPEHPK3PXP',
        recoveryCodes: ['r1', 'r2'],
        lastTotpStep: 12345,
        mustChangePassword: true,
        failedLogins: 2,
        lockedUntil: 1_800_000_000_000,
      });
      await store.addUser(alice);
      assert.deepEqual(await store.userById('u-1'), alice);
      assert.deepEqual(await store.userByName('alice'), alice);
    });

    withStore('unknown ids and usernames read as undefined; usernames match exactly', async (store) => {
      await store.addUser(user('u-1', 'alice'));
      assert.equal(await store.userById('u-2'), undefined);
      assert.equal(await store.userByName('bob'), undefined);
      assert.equal(await store.userByName('Alice'), undefined);
      assert.equal(await store.userByName('alice '), undefined);
    });

    withStore('countUsers counts the users added', async (store) => {
      assert.equal(await store.countUsers(), 0);
      await store.addUser(user('u-1', 'alice'));
      await store.addUser(user('u-2', 'bob'));
      assert.equal(await store.countUsers(), 2);
    });

    withStore('a second user with a taken username is a DuplicateError and changes nothing', async (store) => {
      await store.addUser(user('u-1', 'alice', { role: 'physician' }));
      await assert.rejects(store.addUser(user('u-2', 'alice', { role: 'admin' })), (err: unknown) => err instanceof DuplicateError && err.message === "A user named 'alice' already exists");
      assert.equal(await store.countUsers(), 1);
      assert.equal((await store.userByName('alice'))?.role, 'physician');
      assert.equal(await store.userById('u-2'), undefined);
    });

    withStore('a second user with a taken id is a DuplicateError and changes nothing', async (store) => {
      await store.addUser(user('u-1', 'alice'));
      await assert.rejects(store.addUser(user('u-1', 'bob')), (err: unknown) => err instanceof DuplicateError && err.message === "A user named 'bob' already exists");
      assert.equal(await store.countUsers(), 1);
      assert.equal(await store.userByName('bob'), undefined);
      assert.equal((await store.userById('u-1'))?.username, 'alice');
    });

    withStore('updateUser replaces the record, a rename included', async (store) => {
      await store.addUser(user('u-1', 'alice', { totpSecret: 'JBSWY3DPEHPK3PXP' }));
      const changed = user('u-1', 'alice2', { failedLogins: 3, lockedUntil: 1_800_000_000_000, disabled: true });
      await store.updateUser(changed);
      assert.deepEqual(await store.userById('u-1'), changed);
      assert.deepEqual(await store.userByName('alice2'), changed);
      assert.equal(await store.userByName('alice'), undefined, 'the old name no longer finds the user');
      assert.equal(await store.countUsers(), 1);
    });

    withStore('a rename onto another user\'s name is refused and leaves both as they were', async (store) => {
      await store.addUser(user('u-1', 'alice'));
      await store.addUser(user('u-2', 'bob'));
      await assert.rejects(store.updateUser(user('u-2', 'alice', { role: 'admin' })));
      assert.equal((await store.userByName('alice'))?.id, 'u-1');
      assert.equal((await store.userById('u-2'))?.username, 'bob');
      assert.equal((await store.userById('u-2'))?.role, 'nurse');
    });

    withStore('updating an unknown user adds nobody', async (store) => {
      await store.updateUser(user('u-9', 'ghost'));
      assert.equal(await store.userById('u-9'), undefined);
      assert.equal(await store.countUsers(), 0);
    });
  });

  describe(`auth store conformance (${name}): clients`, () => {
    withStore('a client added is read back whole; an unknown one is undefined', async (store) => {
      const app = client('app-1', { client_secret: 'a-client-secret', jwks: { keys: [{ kty: 'EC', crv: 'P-256', x: 'x', y: 'y' }] }, scope: 'launch patient/*.rs' });
      await store.addClient(app);
      assert.deepEqual(await store.client('app-1'), app);
      assert.equal(await store.client('app-2'), undefined);
    });

    withStore('a second client with a taken id is a DuplicateError and changes nothing', async (store) => {
      await store.addClient(client('app-1', { scope: 'first' }));
      await assert.rejects(store.addClient(client('app-1', { scope: 'second' })), (err: unknown) => err instanceof DuplicateError && err.message === "Client 'app-1' already exists");
      assert.equal((await store.client('app-1'))?.metadata.scope, 'first');
    });
  });

  describe(`auth store conformance (${name}): OAuth records`, () => {
    withStore('upsert then find returns the payload and its expiry; records are per model and id', async (store) => {
      const before = nowSeconds();
      await store.oauthUpsert('AuthorizationCode', 'code-1', { grantId: 'g1', scope: 'openid' }, 600);
      const found = await store.oauthFind('AuthorizationCode', 'code-1');
      assert.ok(found);
      assert.deepEqual(found.payload, { grantId: 'g1', scope: 'openid' });
      assert.ok(found.expiresAt! >= before + 600 && found.expiresAt! <= nowSeconds() + 600);
      assert.equal(found.consumed, undefined);
      assert.equal(await store.oauthFind('RefreshToken', 'code-1'), undefined, 'another model');
      assert.equal(await store.oauthFind('AuthorizationCode', 'code-2'), undefined, 'another id');
    });

    withStore('without expiresIn a record has no expiry', async (store) => {
      await store.oauthUpsert('Grant', 'g1', { accountId: 'u-1' }, undefined);
      const found = await store.oauthFind('Grant', 'g1');
      assert.deepEqual(found, { payload: { accountId: 'u-1' } });
    });

    withStore('upsert of an existing id replaces the payload and expiry, and clears consumed', async (store) => {
      await store.oauthUpsert('RefreshToken', 'rt', { v: 1 }, 100);
      assert.equal(await store.oauthConsume('RefreshToken', 'rt'), true);
      await store.oauthUpsert('RefreshToken', 'rt', { v: 2 }, undefined);
      assert.deepEqual(await store.oauthFind('RefreshToken', 'rt'), { payload: { v: 2 } });
      assert.equal(await store.oauthConsume('RefreshToken', 'rt'), true, 'consumable again');
    });

    withStore('consume succeeds once: the second consume of a record is false, and find shows when it was consumed', async (store) => {
      await store.oauthUpsert('AuthorizationCode', 'code-1', { grantId: 'g1' }, 600);
      assert.equal(await store.oauthConsume('RefreshToken', 'code-1'), false, 'another model: nothing to consume');
      const before = nowSeconds();
      assert.equal(await store.oauthConsume('AuthorizationCode', 'code-1'), true);
      assert.equal(await store.oauthConsume('AuthorizationCode', 'code-1'), false);
      const found = await store.oauthFind('AuthorizationCode', 'code-1');
      assert.ok(found?.consumed !== undefined && found.consumed >= before && found.consumed <= nowSeconds());
      assert.deepEqual(found.payload, { grantId: 'g1' });
      assert.equal(await store.oauthConsume('AuthorizationCode', 'unknown'), false, 'nothing to consume');
    });

    withStore('of many concurrent consumes of one code exactly one succeeds', async (store) => {
      await store.oauthUpsert('AuthorizationCode', 'code-1', { grantId: 'g1' }, 600);
      const results = await Promise.all(Array.from({ length: 12 }, () => store.oauthConsume('AuthorizationCode', 'code-1')));
      assert.equal(results.filter(Boolean).length, 1);
    });

    withStore('destroy removes one record; destroying an unknown one is no error', async (store) => {
      await store.oauthUpsert('Session', 's1', { uid: 'uid-1' }, 600);
      await store.oauthUpsert('Session', 's2', { uid: 'uid-2' }, 600);
      await store.oauthDestroy('Session', 's1');
      await store.oauthDestroy('Session', 'never-was');
      await store.oauthDestroy('Interaction', 's2');
      assert.equal(await store.oauthFind('Session', 's1'), undefined);
      assert.equal(await store.oauthFindBy('Session', 'uid', 'uid-1'), undefined);
      assert.ok(await store.oauthFind('Session', 's2'), 'destroy is per model and id');
    });

    withStore('revokeByGrantId removes every record of the grant, whatever its model, and nothing else', async (store) => {
      await store.oauthUpsert('AuthorizationCode', 'code-1', { grantId: 'g1' }, 600);
      await store.oauthUpsert('RefreshToken', 'rt-1', { grantId: 'g1' }, 600);
      await store.oauthUpsert('AccessToken', 'at-1', { grantId: 'g1' }, undefined);
      await store.oauthUpsert('RefreshToken', 'rt-2', { grantId: 'g2' }, 600);
      await store.oauthUpsert('Grant', 'g1', { accountId: 'u-1' }, 600);
      await store.oauthRevokeByGrantId('g1');
      for (const [model, id] of [['AuthorizationCode', 'code-1'], ['RefreshToken', 'rt-1'], ['AccessToken', 'at-1']]) {
        assert.equal(await store.oauthFind(model, id), undefined, `${model} of the grant is gone`);
      }
      assert.ok(await store.oauthFind('RefreshToken', 'rt-2'), 'another grant stays');
      assert.ok(await store.oauthFind('Grant', 'g1'), 'a record keyed by the grant id but not holding it stays (the caller destroys the Grant)');
      await store.oauthRevokeByGrantId('no-such-grant');
    });

    withStore('findBy uid and user_code find the live record of the model holding that value', async (store) => {
      await store.oauthUpsert('Session', 's1', { uid: 'uid-1', accountId: 'u-1' }, 600);
      await store.oauthUpsert('DeviceCode', 'dc-1', { userCode: 'BCDF-GHJK', grantId: 'g1' }, 600);
      assert.deepEqual((await store.oauthFindBy('Session', 'uid', 'uid-1'))?.payload, { uid: 'uid-1', accountId: 'u-1' });
      assert.deepEqual((await store.oauthFindBy('DeviceCode', 'user_code', 'BCDF-GHJK'))?.payload, { userCode: 'BCDF-GHJK', grantId: 'g1' });
      assert.equal(await store.oauthFindBy('Session', 'uid', 'uid-2'), undefined);
      assert.equal(await store.oauthFindBy('Interaction', 'uid', 'uid-1'), undefined, 'another model');
      assert.equal(await store.oauthFindBy('Session', 'user_code', 'uid-1'), undefined, 'another column');
      assert.equal(await store.oauthFindBy('DeviceCode', 'user_code', 'bcdf-ghjk'), undefined, 'exact match');
      // The lookup follows the record: a new uid finds it, the old one no longer does.
      await store.oauthUpsert('Session', 's1', { uid: 'uid-9', accountId: 'u-1' }, 600);
      assert.equal(await store.oauthFindBy('Session', 'uid', 'uid-1'), undefined);
      assert.equal((await store.oauthFindBy('Session', 'uid', 'uid-9'))?.payload.accountId, 'u-1');
      // And it shows the record's state.
      assert.equal(await store.oauthConsume('DeviceCode', 'dc-1'), true);
      assert.ok((await store.oauthFindBy('DeviceCode', 'user_code', 'BCDF-GHJK'))?.consumed !== undefined);
    });

    withStore('list returns every live record of one model', async (store) => {
      await store.oauthUpsert('Revocation', 'r1', { n: 1 }, 600);
      await store.oauthUpsert('Revocation', 'r2', { n: 2 }, undefined);
      await store.oauthUpsert('Revocation', 'r3', { n: 3 }, -5);
      await store.oauthUpsert('Other', 'o1', { n: 4 }, 600);
      const listed = (await store.oauthList('Revocation')).map((r) => r.payload.n).sort();
      assert.deepEqual(listed, [1, 2]);
      assert.deepEqual(await store.oauthList('Nothing'), []);
    });

    withStore('an expired record reads as absent: find, findBy and list', async (store) => {
      await store.oauthUpsert('Session', 's1', { uid: 'uid-1' }, -1);
      await store.oauthUpsert('DeviceCode', 'dc-1', { userCode: 'WXYZ' }, -60);
      assert.equal(await store.oauthFind('Session', 's1'), undefined);
      assert.equal(await store.oauthFindBy('Session', 'uid', 'uid-1'), undefined);
      assert.equal(await store.oauthFindBy('DeviceCode', 'user_code', 'WXYZ'), undefined);
      assert.deepEqual(await store.oauthList('Session'), []);
    });

    withStore('a record lives through its last second and is gone the second after', async (store, t) => {
      fakeClock(t);
      await store.oauthUpsert('AuthorizationCode', 'code-1', { grantId: 'g1' }, 60);
      await store.oauthUpsert('DeviceCode', 'dc-1', { userCode: 'WXYZ' }, 60);
      t.mock.timers.tick(60_000);
      assert.ok(await store.oauthFind('AuthorizationCode', 'code-1'), 'at expiresAt still there');
      assert.ok(await store.oauthFindBy('DeviceCode', 'user_code', 'WXYZ'));
      assert.equal((await store.oauthList('AuthorizationCode')).length, 1);
      t.mock.timers.tick(1_000);
      assert.equal(await store.oauthFind('AuthorizationCode', 'code-1'), undefined, 'a second past expiresAt it is gone');
      assert.equal(await store.oauthFindBy('DeviceCode', 'user_code', 'WXYZ'), undefined);
      assert.deepEqual(await store.oauthList('AuthorizationCode'), []);
    });

    withStore('an expired record upserted again lives again', async (store) => {
      await store.oauthUpsert('Session', 's1', { v: 1 }, -10);
      await store.oauthUpsert('Session', 's1', { v: 2 }, 600);
      assert.deepEqual((await store.oauthFind('Session', 's1'))?.payload, { v: 2 });
    });

    withStore('the records returned are copies: changing one changes nothing stored', async (store) => {
      await store.oauthUpsert('Session', 's1', { uid: 'uid-1', list: [1] }, 600);
      const found = await store.oauthFind('Session', 's1');
      (found!.payload.list as number[]).push(2);
      found!.payload.uid = 'changed';
      assert.deepEqual((await store.oauthFind('Session', 's1'))?.payload, { uid: 'uid-1', list: [1] });
    });
  });
}
