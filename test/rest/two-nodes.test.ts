import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import * as oauth from 'oauth4webapi';
import { exportJWK, generateKeyPair } from 'jose';
import { loadConfig } from '../../src/config/config.ts';
import { startServer, type Server } from '../../src/main.ts';
import { registerClient } from '../../src/auth/clients.ts';
import { call, patient } from './server.ts';
import { freshSchema, pgSkip, postgresUrl } from '../postgres.ts';
import type { PgStore } from '../../src/store/postgres/pg-store.ts';
import { verifyChain } from '../../src/audit/audit-chain.ts';

/**
 * Two Bastion nodes on one PostgreSQL database, as behind a load balancer: both answer for the
 * same base URL (node A's address plays the balancer's), share the database and the key files,
 * and a client may reach either. Requests are spread over both, at the same time.
 */
describe('two nodes on one PostgreSQL', { skip: pgSkip }, () => {
  const dirs = [mkdtempSync(join(tmpdir(), 'bastion-node-a-')), mkdtempSync(join(tmpdir(), 'bastion-node-b-'))];
  const nodes: Server[] = [];
  const urls: string[] = [];
  let base: string;
  let issuer: string;

  before(async () => {
    const ports = [await freePort(), await freePort()];
    base = `http://127.0.0.1:${ports[0]}/fhir`;
    const env = {
      BASTION_AUTH: 'smart', BASTION_TLS: 'off', BASTION_DATABASE_URL: postgresUrl!, BASTION_DATABASE_SCHEMA: freshSchema('nodes'),
      BASTION_BASE_URL: base, BASTION_AUDIT_CHECKPOINT_SECONDS: '1',
      BASTION_RATE_LIMITS: JSON.stringify({ clients: { 'rate-capped': 30 } }),
    };
    // The master key is read from the process's environment (never the configuration).
    process.env.BASTION_MASTER_KEY = randomBytes(32).toString('hex');
    nodes.push(await startServer(loadConfig({ port: ports[0], dataDir: dirs[0] }, { ...env, BASTION_NODE_NAME: 'a' })));
    // The second node takes the first's keys, as a deployment gives every node the same ones.
    for (const f of ['keyring.json', 'data-keys.json', 'signing-keys.json', 'audit-signing-keys.json', 'provenance-signing-keys.json']) copyFileSync(join(dirs[0], f), join(dirs[1], f));
    nodes.push(await startServer(loadConfig({ port: ports[1], dataDir: dirs[1] }, { ...env, BASTION_NODE_NAME: 'b' })));
    for (const p of ports) urls.push(`http://127.0.0.1:${p}/fhir`);
    issuer = base.replace(/\/fhir$/, '/auth');
  });
  after(async () => {
    for (const n of nodes) await n.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  /** Node i's address for the request (i alternates), the same resource paths. */
  const at = (i: number, path: string) => `${urls[i % 2]}${path}`;
  let token: string;
  const auth = () => ({ authorization: `Bearer ${token}` });

  async function backendToken(scope: string, node = 0, fixedId?: string): Promise<{ token: string; client: { client_id: string }; clientAuth: oauth.ClientAuth }> {
    const { privateKey, publicKey } = await generateKeyPair('ES384');
    const kid = randomUUID();
    const { clientId } = await registerClient(nodes[0].authStore!, {
      name: 'two-nodes', type: 'backend', jwks: { keys: [{ ...(await exportJWK(publicKey)), kid, alg: 'ES384' }] }, scope, ...(fixedId ? { clientId: fixedId } : {}),
    });
    const clientAuth = oauth.PrivateKeyJwt({ key: privateKey, kid });
    const as = await authorizationServer(node);
    const response = await oauth.clientCredentialsGrantRequest(as, { client_id: clientId }, clientAuth, new URLSearchParams({ scope }), { [oauth.allowInsecureRequests]: true });
    const result = await oauth.processClientCredentialsResponse(as, { client_id: clientId }, response);
    return { token: result.access_token, client: { client_id: clientId }, clientAuth };
  }

  /** Node `i`'s endpoints under the shared issuer (what a balancer would route). */
  async function authorizationServer(i: number): Promise<oauth.AuthorizationServer> {
    const discovery = (await call(`${urls[i].replace(/\/fhir$/, '/auth')}/.well-known/openid-configuration`)).body as oauth.AuthorizationServer;
    const here = (u: string | undefined) => u?.replace(base.replace(/\/fhir$/, ''), urls[i].replace(/\/fhir$/, ''));
    return { ...discovery, token_endpoint: here(discovery.token_endpoint), revocation_endpoint: here(discovery.revocation_endpoint), introspection_endpoint: here(discovery.introspection_endpoint) };
  }

  test('a token issued by one node is honoured by the other', async () => {
    ({ token } = await backendToken('system/*.cruds'));
    assert.equal(issuer, (await call(`${urls[1]}/.well-known/smart-configuration`)).body.issuer);
    for (let i = 0; i < 2; i++) assert.equal((await call(at(i, '/Patient'), { headers: auth() })).status, 200);
  });

  test('concurrent If-Match updates across both nodes: exactly one wins, the rest are 412', async () => {
    const created = await call(at(0, '/Patient'), { method: 'POST', json: patient('Race'), headers: auth() });
    assert.equal(created.status, 201);
    const id = created.body.id as string;
    const replies = await Promise.all(Array.from({ length: 16 }, (_, i) =>
      call(at(i, `/Patient/${id}`), { method: 'PUT', json: { ...patient(`Winner${i}`), id }, headers: { ...auth(), 'if-match': 'W/"1"' } })));
    assert.deepEqual(replies.map((r) => r.status).sort(), [200, ...Array(15).fill(412)]);
    for (let i = 0; i < 2; i++) {
      const read = await call(at(i, `/Patient/${id}`), { headers: auth() });
      assert.equal(read.body.meta.versionId, '2');
    }
  });

  test('concurrent updates without If-Match: every one stored, as consecutive versions', async () => {
    const created = await call(at(1, '/Patient'), { method: 'POST', json: patient('Many'), headers: auth() });
    const id = created.body.id as string;
    const replies = await Promise.all(Array.from({ length: 20 }, (_, i) =>
      call(at(i, `/Patient/${id}`), { method: 'PUT', json: { ...patient(`V${i}`), id }, headers: auth() })));
    assert.ok(replies.every((r) => r.status === 200), replies.map((r) => r.status).join());
    assert.deepEqual(replies.map((r) => Number(r.body.meta.versionId)).sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i + 2));
    const history = await call(at(0, `/Patient/${id}/_history?_count=50`), { headers: auth() });
    assert.equal(history.body.total, 21);
  });

  test('concurrent conditional creates with the same criteria on both nodes make one resource', async () => {
    const mrn = `MRN-${randomUUID()}`;
    const body = patient('Conditional', { identifier: [{ system: 'urn:example:mrn', value: mrn }] });
    const replies = await Promise.all(Array.from({ length: 12 }, (_, i) =>
      call(at(i, '/Patient'), { method: 'POST', json: body, headers: { ...auth(), 'if-none-exist': `identifier=urn:example:mrn|${mrn}` } })));
    assert.deepEqual(replies.map((r) => r.status).sort(), [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 201]);
    assert.equal(new Set(replies.map((r) => r.body.id)).size, 1);
    const found = await call(at(1, `/Patient?identifier=urn:example:mrn|${mrn}&_total=accurate`), { headers: auth() });
    assert.equal(found.body.total, 1);
  });

  test('concurrent conditional updates that match nothing make one resource', async () => {
    const code = randomUUID();
    const replies = await Promise.all(Array.from({ length: 10 }, (_, i) =>
      call(at(i, `/Patient?identifier=urn:example:code|${code}`), { method: 'PUT', json: patient('CondUpdate', { identifier: [{ system: 'urn:example:code', value: code }] }), headers: auth() })));
    assert.deepEqual(replies.map((r) => r.status).sort(), [200, 200, 200, 200, 200, 200, 200, 200, 200, 201]);
    const found = await call(at(0, `/Patient?identifier=urn:example:code|${code}&_total=accurate`), { headers: auth() });
    assert.equal(found.body.total, 1);
  });

  test('a token revoked on one node is refused by the other', async () => {
    const mine = await backendToken('system/Patient.rs');
    assert.equal((await call(at(1, '/Patient'), { headers: { authorization: `Bearer ${mine.token}` } })).status, 200);
    const as = await authorizationServer(0);
    await oauth.processRevocationResponse(await oauth.revocationRequest(as, mine.client, mine.clientAuth, mine.token, { [oauth.allowInsecureRequests]: true }));
    assert.equal((await call(at(0, '/Patient'), { headers: { authorization: `Bearer ${mine.token}` } })).status, 401);
    // The other node hears of it through the database's notification: at once, give or take its delivery.
    const deadline = Date.now() + 2000;
    let status = 0;
    while (Date.now() < deadline && (status = (await call(at(1, '/Patient'), { headers: { authorization: `Bearer ${mine.token}` } })).status) !== 401) await sleep(20);
    assert.equal(status, 401);
  });

  test('a Consent recorded on one node is enforced by the other (derived access facts are re-derived)', async () => {
    const gen = () => nodes[1].store.generation(['Consent']);
    const before = gen();
    const created = await call(at(0, '/Consent'), { method: 'POST', json: { resourceType: 'Consent', status: 'draft', scope: { coding: [{ code: 'patient-privacy' }] }, category: [{ text: 'x' }] }, headers: auth() });
    assert.equal(created.status, 201);
    const deadline = Date.now() + 2000;
    while (Date.now() < deadline && gen() === before) await sleep(10);
    assert.notEqual(gen(), before);
  });

  test("a rate limit holds across both nodes: one node's requests count on the other", async () => {
    const { token: capped } = await backendToken('system/Patient.rs', 0, 'rate-capped');
    const headers = { authorization: `Bearer ${capped}` };
    for (let i = 0; i < 20; i++) assert.equal((await call(at(0, '/Patient?_count=1'), { headers })).status, 200);
    // The nodes exchange their counts once a second (node B looks up a key new to it at once).
    await sleep(2_500);
    // A minute boundary passing during the test lets the sliding count decay by up to three requests.
    let admittedOnB = 0;
    for (let i = 0; i < 30; i++) if ((await call(at(1, '/Patient?_count=1'), { headers })).status === 200) admittedOnB++;
    assert.ok(admittedOnB >= 9 && admittedOnB <= 14, `node B admitted ${admittedOnB} of the 10 left (alone it would admit 30)`);
    await sleep(2_500);
    let admittedOnA = 0;
    let refusal: string | undefined;
    for (let i = 0; i < 10; i++) {
      const r = await call(at(0, '/Patient?_count=1'), { headers });
      if (r.status === 200) admittedOnA++;
      else refusal ??= r.body.issue[0].diagnostics;
    }
    assert.ok(admittedOnA <= 3, `node A admitted ${admittedOnA} more: it counts node B's requests too (alone it would admit 10)`);
    assert.match(refusal ?? '', /this client is over 30 requests per 60 s/);
  });

  test('both nodes append to one audit chain, which verifies whole', async () => {
    await sleep(300);
    const head = await nodes[0].store.auditHead();
    const other = await nodes[1].store.auditHead();
    assert.ok(head.count > 50, `${head.count} records`);
    assert.ok(other.count >= head.count);
    const records = await nodes[1].store.auditRecords({ afterSeq: 0, limit: 100_000 });
    assert.deepEqual(records.map((r) => r.seq), Array.from({ length: records.length }, (_, i) => i + 1), 'positions without gaps');
    // Each record names the node that recorded it (AuditEvent.source.site): both did.
    assert.deepEqual(new Set(records.map((r) => JSON.parse(r.json).node)), new Set(['a', 'b']));
    const rows = [];
    for await (const row of (nodes[1].store as PgStore).auditLog.chainRows()) rows.push(row);
    const verdict = verifyChain(rows);
    assert.equal(verdict.ok, true, JSON.stringify(verdict));
  });
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}
