import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { useIssuerServer } from '../auth/external-issuer.ts';
import { useServer, call } from '../rest/server.ts';
import type { AuditRecordFacts } from '../../src/audit/audit-record.ts';

/**
 * Rate limits over HTTP (auth=smart, tokens from a test issuer): a user's role limit, an app's
 * limit over all its users, a backend service's own limit, and refused tokens by address. Limits
 * are tiny so a test reaches them; the window is a minute, longer than the file runs.
 */
const limits = { windowSeconds: 60, roles: { patient: 5, nurse: 8 }, clients: { 'capped-app': 6, 'capped-service': 3 }, anonymous: 4 };
const t = useIssuerServer({ BASTION_RATE_LIMITS: JSON.stringify(limits) });

const patientAuth = (sub: string) => t.auth('patient', 'patient/*.rs', { sub, patient: 'p1', client_id: 'portal' });

async function records(): Promise<AuditRecordFacts[]> {
  await t.server.app.audit.flush();
  return (await t.server.store.auditRecords({ afterSeq: 0, limit: 1_000_000 })).map((r) => JSON.parse(r.json) as AuditRecordFacts);
}

describe('rate limits', () => {
  test("a user is refused past its role's limit: 429, OperationOutcome throttled, Retry-After; the refusal is audited and alerted once", async () => {
    const auth = await patientAuth('patient-a');
    const remaining: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await call(`${t.base}/Patient/p1`, { headers: auth });
      assert.notEqual(r.status, 429, `request ${i + 1} of 5 is within the limit`);
      assert.equal(r.headers.get('x-ratelimit-limit'), '5');
      remaining.push(r.headers.get('x-ratelimit-remaining')!);
    }
    assert.deepEqual(remaining, ['4', '3', '2', '1', '0']);
    for (let i = 0; i < 2; i++) {
      const refused = await call(`${t.base}/Patient/p1`, { headers: auth });
      assert.equal(refused.status, 429);
      assert.equal(refused.body.resourceType, 'OperationOutcome');
      assert.equal(refused.body.issue[0].code, 'throttled');
      assert.match(refused.body.issue[0].diagnostics, /this user is over 5 requests per 60 s/);
      const retryAfter = Number(refused.headers.get('retry-after'));
      assert.ok(retryAfter >= 1 && retryAfter <= 120, `Retry-After ${retryAfter}`);
      assert.equal(refused.headers.get('x-ratelimit-remaining'), '0');
    }
    const refusals = (await records()).filter((f) => f.st === 429 && f.who === 'patient-a');
    assert.equal(refusals.length, 2, 'each refusal is on the trail');
    assert.equal(refusals[0].do, 'read');
    assert.deepEqual(refusals[0].what, ['Patient/p1']);
    assert.match(refusals[0].rs![0], /^rate-limit: this user is over 5/);
    await t.server.alerts.flush();
    const alerts = readFileSync(join(t.dataDir, 'alerts.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; who: string });
    assert.equal(alerts.filter((a) => a.kind === 'rate-limit' && a.who === 'patient-a').length, 1, 'one alert per key and window');
  });

  test('another user of the same role is counted on its own', async () => {
    const r = await call(`${t.base}/Patient/p1`, { headers: await patientAuth('patient-b') });
    assert.notEqual(r.status, 429);
    assert.equal(r.headers.get('x-ratelimit-remaining'), '4');
  });

  test("an app with a limit of its own is held to it over all its users together", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      const auth = await t.auth('nurse', 'user/*.rs', { sub: `nurse-${i % 2}`, client_id: 'capped-app' });
      statuses.push((await call(`${t.base}/Patient?_count=1`, { headers: auth })).status);
    }
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 200, 429, 429], 'two nurses, each under the role limit of 8, share the app limit of 6');
    const refused = await call(`${t.base}/Patient?_count=1`, { headers: await t.auth('nurse', 'user/*.rs', { sub: 'nurse-9', client_id: 'capped-app' }) });
    assert.match(refused.body.issue[0].diagnostics, /this client is over 6 requests/);
    const elsewhere = await call(`${t.base}/Patient?_count=1`, { headers: await t.auth('nurse', 'user/*.rs', { sub: 'nurse-0', client_id: 'other-app' }) });
    assert.equal(elsewhere.status, 200, 'the same nurse through another app is within the role limit');
  });

  test("a backend service's client limit replaces its role's", async () => {
    const auth = await t.auth('system', 'system/*.rs', { sub: 'capped-service', client_id: 'capped-service' });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await call(`${t.base}/Patient?_count=1`, { headers: auth })).status);
    assert.deepEqual(statuses, [200, 200, 200, 429]);
  });

  test('a batch counts as its entries: a patient cannot read more in one request than the limit allows in a minute', async () => {
    const auth = await patientAuth('patient-batch');
    const batch = (n: number) => ({ resourceType: 'Bundle', type: 'batch', entry: Array.from({ length: n }, () => ({ request: { method: 'GET', url: 'Patient/p1' } })) });
    const first = await call(t.base, { method: 'POST', headers: auth, json: batch(3) });
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('x-ratelimit-remaining'), '2');
    const refused = await call(t.base, { method: 'POST', headers: auth, json: batch(3) });
    assert.equal(refused.status, 429, 'three more entries do not fit in the two left');
    assert.equal((await call(t.base, { method: 'POST', headers: auth, json: batch(2) })).status, 200, 'the refused batch counted nothing');
    const tooBig = await call(t.base, { method: 'POST', headers: await patientAuth('patient-big-batch'), json: batch(50) });
    assert.equal(tooBig.status, 422, 'a batch larger than the limit never runs, and waiting would not help: not a 429');
    assert.equal(tooBig.headers.get('retry-after'), null);
    assert.match(tooBig.body.issue[0].diagnostics, /more entries than the 5 requests per 60 s .* split it/);
    const collection = await call(t.base, { method: 'POST', headers: await patientAuth('patient-collection'), json: { ...batch(50), type: 'collection' } });
    assert.ok(collection.status !== 429 && collection.status !== 422, `a Bundle that is no batch counts once (${collection.status})`);
  });

  test('refused tokens stay 401 with their challenge, however many (guessing a signed token is hopeless; a NAT is shared)', async () => {
    for (let i = 0; i < 8; i++) {
      const r = await call(`${t.base}/Patient`, { headers: { authorization: `Bearer not-a-token-${i}` } });
      assert.equal(r.status, 401);
      assert.ok(r.headers.get('www-authenticate'));
    }
  });

  test('requests without a token (the public CapabilityStatement) are counted by address', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await call(`${t.base}/metadata`)).status);
    assert.deepEqual(statuses, [200, 200, 200, 200, 429, 429]);
    assert.equal((await call(`${t.base}/Patient?_count=1`, { headers: await t.auth('nurse', 'user/*.rs', { sub: 'nurse-valid', client_id: 'portal' }) })).status, 200, 'a token from the same address is its user\'s count');
    const onTrail = (await records()).filter((f) => f.who === 'anonymous' && f.st === 429);
    assert.equal(onTrail.length, 2);
    assert.match(onTrail[0].rs![0], /this network address is over 4 requests/);
  });
});

describe('no rate limit without authentication (auth=off, loopback development)', () => {
  const local = useServer();
  test('the local principal is not counted', async () => {
    const r = await call(`${local.base}/Patient`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-ratelimit-limit'), null);
  });
});
