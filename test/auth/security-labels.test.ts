import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server as HttpServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose';
import { loadConfig } from '../../src/config/config.ts';
import { startServer, type Server } from '../../src/main.ts';
import { call } from '../rest/server.ts';

/** Security labels: what lies above a role's clearance is left out in the query, counts included. */
const issuer = 'https://labels-idp.example.test';
let jwks: HttpServer;
let server: Server;
let dir: string;
let base: string;
let key: CryptoKey;
let jwk: JWK;
const ids: Record<string, string> = {};

async function tokenFor(role: string, scope: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ role, scope, client_id: 'app' }).setProtectedHeader({ alg: 'ES256', kid: 'k' }).setIssuer(issuer).setAudience(base)
    .setSubject(role === 'system' ? 'app' : `${role}-1`).setIssuedAt(now).setExpirationTime(now + 300).setJti(crypto.randomUUID()).sign(key);
}
const auth = async (role: string, scope = role === 'system' ? 'system/*.cruds' : 'user/*.cruds') => ({ authorization: `Bearer ${await tokenFor(role, scope)}` });
const conf = (code: string) => ({ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code });
const sens = (code: string) => ({ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code });
const found = (r: { body: { entry?: { resource: { id: string } }[] } }) => (r.body.entry ?? []).map((e) => e.resource.id).sort();

before(async () => {
  const pair = await generateKeyPair('ES256');
  key = pair.privateKey;
  jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k', alg: 'ES256' };
  jwks = createServer((_q, res) => res.end(JSON.stringify({ keys: [jwk] })));
  await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
  dir = mkdtempSync(join(tmpdir(), 'bastion-labels-'));
  server = await startServer(loadConfig({ port: 0, dataDir: dir }, {
    BASTION_AUTH: 'smart', BASTION_EXTERNAL_ISSUERS: JSON.stringify([{ issuer, jwksUri: `http://127.0.0.1:${(jwks.address() as { port: number }).port}/` }]),
  }));
  base = server.baseUrl;
  const seed = await auth('system');
  const create = async (name: string, security: { system: string; code: string }[], extra: Record<string, unknown> = {}) => {
    const r = await call(`${base}/Observation`, { method: 'POST', headers: seed, json: {
      resourceType: 'Observation', status: 'final', code: { text: `labels-${name}` }, ...(security.length ? { meta: { security } } : {}), ...extra,
    } });
    assert.equal(r.status, 201, r.text);
    ids[name] = r.body.id;
  };
  await create('normal', []);
  await create('restricted', [conf('R')]);
  await create('very', [conf('V')]);
  await create('psy', [conf('N'), sens('PSY')]);
  await create('hiv', [conf('R'), sens('HIV')]);
  await create('pointsAtVery', [], { hasMember: [{ reference: 'Observation/' + ids.very }] });
});

after(async () => {
  await server.close();
  jwks.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('security labels and clearance', () => {
  const all = () => ['normal', 'restricted', 'very', 'psy', 'hiv', 'pointsAtVery'].map((n) => ids[n]).sort();
  const only = (...names: string[]) => names.map((n) => ids[n]).sort();

  test('search leaves out what is above the clearance, and the total agrees', async () => {
    const q = `${base}/Observation?code:text=labels&_total=accurate&_count=50`;
    const system = await call(q, { headers: await auth('system') });
    assert.deepEqual(found(system), all());
    const nurse = await call(q, { headers: await auth('nurse') });
    assert.deepEqual(found(nurse), only('normal', 'restricted', 'hiv', 'pointsAtVery'), 'nurse: up to R, HIV but not PSY, never V');
    assert.equal(nurse.body.total, 4);
    const billing = await call(q, { headers: await auth('billing') });
    assert.deepEqual(found(billing), only('normal', 'pointsAtVery'));
    assert.equal(billing.body.total, 2);
    const physician = await call(`${base}/Observation?code:text=labels&_summary=count`, { headers: await auth('physician') });
    assert.equal(physician.body.total, 5, 'physician: all but V');
  });

  test('reads above the clearance answer 404; includes and chains do not reach them', async () => {
    const billing = await auth('billing');
    assert.equal((await call(`${base}/Observation/${ids.restricted}`, { headers: billing })).status, 404);
    assert.equal((await call(`${base}/Observation/${ids.normal}`, { headers: billing })).status, 200);
    const nurse = await auth('nurse');
    assert.equal((await call(`${base}/Observation/${ids.very}`, { headers: nurse })).status, 404);
    const withMember = await call(`${base}/Observation?_id=${ids.pointsAtVery}&_include=Observation:has-member`, { headers: nurse });
    assert.deepEqual(found(withMember), [ids.pointsAtVery], 'the V member is not included');
    const chained = await call(`${base}/Observation?has-member:Observation.code:text=labels-very`, { headers: nurse });
    assert.deepEqual(found(chained), [], 'a chain cannot test a V resource');
    const system = await call(`${base}/Observation?has-member:Observation.code:text=labels-very`, { headers: await auth('system') });
    assert.deepEqual(found(system), [ids.pointsAtVery]);
  });

  test('nothing above the clearance can be changed or deleted', async () => {
    const nurse = await auth('nurse');
    const seed = await auth('system');
    const very = (await call(`${base}/Observation/${ids.very}`, { headers: seed })).body;
    assert.equal((await call(`${base}/Observation/${ids.very}`, { method: 'PUT', headers: nurse, json: { ...very, status: 'amended' } })).status, 403);
    assert.equal((await call(`${base}/Observation/${ids.very}`, { method: 'DELETE', headers: nurse })).status, 403);
    assert.equal((await call(`${base}/Observation/${ids.very}`, { headers: seed })).body.status, 'final');
  });
});
