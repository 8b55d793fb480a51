import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultRateLimits, rateCountersFor, type RateLimitSettings } from '../../src/access/rate-limits.ts';
import type { Principal } from '../../src/auth/principal.ts';
import { loadConfig, ConfigError } from '../../src/config/config.ts';

const settings: RateLimitSettings = { ...defaultRateLimits, roles: { ...defaultRateLimits.roles, patient: 10 }, clients: { portal: 100, svc: 50 } };
const user = (over: Partial<Principal> = {}): Principal => ({ kind: 'user', id: 'u1', role: 'patient', scopes: [], clientId: 'portal', issuer: 'https://as', address: '10.0.0.1', ...over });

describe('rate limit rule: which counters a request adds to', () => {
  test("a user: its own counter at its role's limit, and its app's when the app has a limit", () => {
    assert.deepEqual(rateCountersFor(user(), settings), [
      { key: 'user:https://as|u1', limit: 10, scope: 'user' },
      { key: 'app:https://as|portal', limit: 100, scope: 'client' },
    ]);
    assert.deepEqual(rateCountersFor(user({ clientId: 'unlisted' }), settings), [{ key: 'user:https://as|u1', limit: 10, scope: 'user' }]);
  });

  test('the same subject from another issuer is another counter (ids are only unique per issuer)', () => {
    const [a] = rateCountersFor(user(), settings);
    const [b] = rateCountersFor(user({ issuer: 'https://idp' }), settings);
    assert.notEqual(a.key, b.key);
  });

  test("a backend service: one counter, its client's limit in place of the system role's", () => {
    assert.deepEqual(rateCountersFor(user({ kind: 'client', id: 'svc', clientId: 'svc', role: 'system' }), settings), [{ key: 'client:https://as|svc', limit: 50, scope: 'client' }]);
    assert.deepEqual(rateCountersFor(user({ kind: 'client', id: 'other', clientId: 'other', role: 'system' }), settings), [{ key: 'client:https://as|other', limit: defaultRateLimits.roles.system, scope: 'client' }]);
  });

  test('no token (public metadata): counted by address', () => {
    assert.deepEqual(rateCountersFor({ kind: 'anonymous', id: 'anonymous', role: 'anonymous', scopes: [], address: '10.0.0.9' }, settings), [{ key: 'address:10.0.0.9', limit: settings.anonymous, scope: 'address' }]);
  });

  test('the local principal (auth off, loopback) and a disabled setting: no counters', () => {
    assert.deepEqual(rateCountersFor({ kind: 'anonymous-local', id: 'local', role: 'local', scopes: [], address: '127.0.0.1' }, settings), []);
    assert.deepEqual(rateCountersFor(user(), { ...settings, enabled: false }), []);
  });

  test("a client id like a prototype property is no limit of its own", () => {
    assert.equal(rateCountersFor(user({ clientId: 'constructor' }), settings).length, 1);
  });

  test("an app's counter is its issuer's: another issuer's client of the same id does not use it up", () => {
    const own = rateCountersFor(user(), settings)[1]!;
    const partner = rateCountersFor(user({ issuer: 'https://partner' }), settings)[1]!;
    assert.notEqual(own.key, partner.key);
  });

  test('an IPv6 address is counted by its /64 (one subscriber), an IPv4 one (mapped or not) as it is', () => {
    const key = (address: string) => rateCountersFor({ kind: 'anonymous', id: 'anonymous', role: 'anonymous', scopes: [], address }, settings)[0]!.key;
    assert.equal(key('2001:db8:1:2:aaaa::1'), key('2001:0db8:0001:0002:ffff:1:2:3'));
    assert.equal(key('2001:db8:1:2::9'), 'address:2001:db8:1:2::/64');
    assert.notEqual(key('2001:db8:1:3::1'), key('2001:db8:1:2::1'));
    assert.equal(key('::ffff:10.1.2.3'), 'address:10.1.2.3');
    assert.equal(key('10.1.2.3'), 'address:10.1.2.3');
    assert.equal(key('::1'), 'address:0:0:0:0::/64');
  });
});

describe('rateLimits setting', () => {
  const load = (value: string) => loadConfig({}, { BASTION_RATE_LIMITS: value }).rateLimits;
  test('defaults: on, a minute, every role limited', () => {
    const limits = loadConfig({}, {}).rateLimits;
    assert.equal(limits.enabled, true);
    assert.equal(limits.windowSeconds, 60);
    for (const limit of Object.values(limits.roles)) assert.ok(limit > 0);
  });

  test('roles given replace those roles only; clients and the rest as given', () => {
    const limits = load('{"roles":{"patient":7},"clients":{"app":9},"anonymous":3,"windowSeconds":10}');
    assert.equal(limits.roles.patient, 7);
    assert.equal(limits.roles.physician, defaultRateLimits.roles.physician);
    assert.deepEqual(limits.clients, { app: 9 });
    assert.equal(limits.anonymous, 3);
    assert.equal(limits.windowSeconds, 10);
    assert.equal(load('{"enabled":false}').enabled, false);
    const odd = load('{"clients":{"__proto__":5}}');
    assert.equal(Object.hasOwn(odd.clients, '__proto__'), true, 'a client named __proto__ is kept as a client');
  });

  test('refused: unknown settings and roles, limits that are not positive integers, a window past an hour, not JSON', () => {
    for (const bad of ['{"limit":5}', '{"roles":{"doctor":5}}', '{"roles":{"patient":0}}', '{"roles":{"patient":-1}}', '{"roles":{"patient":1.5}}',
      '{"clients":{"app":"many"}}', '{"anonymous":true}', '{"anonymous":[7]}', '{"windowSeconds":3601}', '{"windowSeconds":5}', '{"enabled":"maybe"}', '[1]', 'not json']) {
      assert.throws(() => load(bad), ConfigError, bad);
    }
  });
});
