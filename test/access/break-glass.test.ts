import { before, after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server as HttpServer } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { call, patient } from '../rest/server.ts';
import { useIssuerServer } from '../auth/external-issuer.ts';
import { Alerts, type Alert } from '../../src/monitor/alerts.ts';

/** Break-the-glass asked by the token itself (purpose of use BTG), and the alert it raises. */
describe('break-the-glass by token claim, with an alert', () => {
  const received: Alert[] = [];
  let hook: HttpServer;
  const env: Record<string, string> = {};
  before(async () => {
    hook = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        received.push(JSON.parse(body) as Alert);
        res.end();
      });
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    env.BASTION_ALERT_WEBHOOK = `http://127.0.0.1:${(hook.address() as { port: number }).port}/alerts`;
  });
  after(() => hook.close());
  const t = useIssuerServer(env);
  let stranger: string;
  before(async () => {
    const system = await t.auth('system');
    stranger = (await call(`${t.base}/Patient`, { method: 'POST', headers: system, json: patient('Btgclaim') })).body.id;
  });

  test('a token with purpose of use BTG, a patient and a reason opens that record, once, and raises an alert', async () => {
    const plain = await t.auth('physician', 'user/*.rs', { fhirUser: 'Practitioner/btg-claim' });
    assert.equal((await call(`${t.base}/Patient/${stranger}`, { headers: plain })).status, 404);
    const btg = await t.auth('physician', 'user/*.rs', {
      fhirUser: 'Practitioner/btg-claim', purpose_of_use: 'BTG', break_glass_patient: stranger, break_glass_reason: 'cardiac arrest, no records available',
    });
    assert.equal((await call(`${t.base}/Patient/${stranger}`, { headers: btg })).status, 200);
    assert.equal((await call(`${t.base}/Patient/${stranger}`, { headers: btg })).status, 200);
    await t.server.alerts.flush();
    const mine = received.filter((a) => a.kind === 'break-glass' && a.about?.includes(`Patient/${stranger}`));
    assert.equal(mine.length, 1, 'asked once while it lasts');
    assert.equal(mine[0].severity, 'high');
    assert.ok(!JSON.stringify(mine[0]).includes('cardiac'), 'the reason stays in the audit record');
  });

  test('the claim is refused without a reason or for a role that may not break the glass', async () => {
    const noReason = await t.auth('nurse', 'user/*.rs', { fhirUser: 'Practitioner/btg-nurse', purpose_of_use: ['http://terminology.hl7.org/CodeSystem/v3-ActReason|BTG'], break_glass_patient: stranger });
    assert.equal((await call(`${t.base}/Patient/${stranger}`, { headers: noReason })).status, 403);
    const billing = await t.auth('billing', 'user/*.rs', { purpose_of_use: 'BTG', break_glass_patient: stranger, break_glass_reason: 'I would like to see this record please' });
    assert.equal((await call(`${t.base}/Patient/${stranger}`, { headers: billing })).status, 403);
  });
});

describe('alerts', () => {
  test('are appended one per line to an owner-only file, and a failing webhook does not lose them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bastion-alerts-'));
    const errors: string[] = [];
    const alerts = new Alerts({ file: join(dir, 'alerts.ndjson'), webhook: 'http://127.0.0.1:9/none', onError: (where) => errors.push(where) });
    alerts.raise({ kind: 'break-glass', severity: 'high', at: '2026-01-01T00:00:00Z', who: 'u1', about: ['Patient/1'] });
    alerts.raise({ kind: 'break-glass', severity: 'high', at: '2026-01-01T00:00:01Z', who: 'u2', about: ['Patient/2'] });
    await alerts.flush();
    const lines = readFileSync(join(dir, 'alerts.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Alert);
    assert.deepEqual(lines.map((a) => a.who), ['u1', 'u2']);
    assert.equal(statSync(join(dir, 'alerts.ndjson')).mode & 0o077, 0);
    assert.deepEqual(errors, ['webhook', 'webhook']);
    rmSync(dir, { recursive: true, force: true });
  });
});
