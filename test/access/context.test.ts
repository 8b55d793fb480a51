import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { decide } from '../../src/access/decide.ts';
import { configureAccessContext } from '../../src/access/context.ts';
import { parseScopes } from '../../src/access/smart-scopes.ts';
import type { Principal } from '../../src/auth/principal.ts';

const user = (role: Principal['role'], address: string): Principal => ({
  kind: 'user', id: `${role}-1`, role, scopes: ['user/*.rs'], resourceScopes: parseScopes('user/*.rs').resource, address, fhirUser: 'Practitioner/1',
});
const read = { kind: 'read' as const, resourceType: 'Patient', id: 'p' };
// Monday 2026-11-23 10:00 UTC and 23:00 UTC.
const monday10 = Date.parse('2026-11-23T10:00:00Z');
const monday23 = Date.parse('2026-11-23T23:00:00Z');
const sunday10 = Date.parse('2026-11-22T10:00:00Z');

afterEach(() => configureAccessContext({}));

test('time windows: outside them a role is refused, or flagged when the rule says flag', () => {
  configureAccessContext({ hours: { billing: { from: '07:00', to: '19:00', days: [1, 2, 3, 4, 5] }, nurse: { from: '06:00', to: '22:00', action: 'flag' } } });
  assert.equal(decide(user('billing', '10.0.0.1'), read, monday10).permit, true);
  const late = decide(user('billing', '10.0.0.1'), read, monday23);
  assert.equal(late.permit, false);
  assert.match(late.reasons.join(' '), /07:00-19:00/);
  assert.equal(decide(user('billing', '10.0.0.1'), read, sunday10).permit, false, 'weekend');
  const nurseLate = decide(user('nurse', '10.0.0.1'), read, monday23);
  assert.equal(nurseLate.permit, true);
  assert.deepEqual(nurseLate.obligations.flags, ['off-hours']);
  assert.equal(decide(user('physician', '10.0.0.1'), read, monday23).permit, true, 'no window for physicians');
});

test('networks: a role only from listed networks; V-labelled data hidden elsewhere', () => {
  configureAccessContext({ networks: [{ roles: ['admin'], cidrs: ['10.0.0.0/8'] }, { labels: ['V'], cidrs: ['192.168.10.0/24', '::1/128'] }] });
  assert.equal(decide(user('admin', '10.2.3.4'), read).permit, true);
  assert.equal(decide(user('admin', '::ffff:10.2.3.4'), read).permit, true, 'IPv4-mapped addresses count');
  assert.equal(decide(user('admin', '172.16.0.1'), read).permit, false);
  const fromOutside = decide(user('physician', '172.16.0.1'), read);
  assert.ok(fromOutside.obligations.hiddenLabels?.some((l) => l.code === 'V'));
  const system: Principal = { kind: 'client', id: 'svc', clientId: 'svc', role: 'system', scopes: ['system/*.rs'], resourceScopes: parseScopes('system/*.rs').resource, address: '192.168.10.7' };
  assert.equal(decide(system, read).obligations.hiddenLabels, undefined, 'inside the V network, a system client sees V');
  assert.ok(decide({ ...system, address: '8.8.8.8' }, read).obligations.hiddenLabels?.some((l) => l.code === 'V'));
});

test('malformed rules are refused when configured', () => {
  assert.throws(() => configureAccessContext({ networks: [{ roles: ['admin'], cidrs: ['10.0.0.0/99'] }] }));
  assert.throws(() => configureAccessContext({ hours: { billing: { from: '7', to: '19:00' } } }));
});
