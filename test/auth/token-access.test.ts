import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server as HttpServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose';
import { loadConfig } from '../../src/config/config.ts';
import { startServer, type Server } from '../../src/main.ts';
import { call, patient } from '../rest/server.ts';

/**
 * The FHIR API under auth=smart, with tokens from a trusted external issuer (a JWKS served on
 * loopback): token verification, the scope rule and patient-compartment confinement, deny paths first.
 */
const issuer = 'https://idp.example.test';
let jwksServer: HttpServer;
let server: Server;
let dataDir: string;
let base: string;
let key: CryptoKey;
let jwk: JWK;

async function token(claims: Record<string, unknown>, options: { alg?: string; aud?: string; iss?: string; exp?: number; signWith?: CryptoKey | Uint8Array } = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT(claims)
    .setProtectedHeader({ alg: options.alg ?? 'ES256', kid: jwk.kid })
    .setIssuer(options.iss ?? issuer)
    .setAudience(options.aud ?? base)
    .setIssuedAt(now)
    .setExpirationTime(options.exp ?? now + 300)
    .setJti(crypto.randomUUID())
    .sign(options.signWith ?? key);
}

const system = () => token({ sub: 'seeder', client_id: 'seeder', scope: 'system/*.cruds', role: 'system' });
const patientToken = (patientId: string | undefined, scope = 'launch/patient patient/*.cruds') =>
  token({ sub: 'user-1', client_id: 'app', scope, role: 'patient', ...(patientId ? { patient: patientId } : {}) });
const auth = (t: string) => ({ authorization: `Bearer ${t}` });
const ids = (r: { body: { entry?: { resource: { resourceType: string; id: string } }[] } }) =>
  (r.body.entry ?? []).map((e) => `${e.resource.resourceType}/${e.resource.id}`).sort();

before(async () => {
  const pair = await generateKeyPair('ES256');
  key = pair.privateKey;
  jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  jwksServer = createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
  const port = (jwksServer.address() as { port: number }).port;
  dataDir = mkdtempSync(join(tmpdir(), 'bastion-token-'));
  server = await startServer(loadConfig({ port: 0, dataDir }, {
    BASTION_AUTH: 'smart', BASTION_TLS: 'off',
    BASTION_EXTERNAL_ISSUERS: JSON.stringify([
      { issuer, jwksUri: `http://127.0.0.1:${port}/jwks` },
      { issuer: 'https://idp2.example.test', jwksUri: `http://127.0.0.1:${port}/jwks`, roleMap: { clinician: 'nurse' } },
    ]),
  }));
  base = server.baseUrl;
});

after(async () => {
  await server.close();
  jwksServer.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('bearer tokens on the FHIR API', () => {
  test('no token: 401 with a Bearer challenge and an OperationOutcome; the CapabilityStatement stays public', async () => {
    const r = await call(`${base}/Patient`);
    assert.equal(r.status, 401);
    assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer realm=/);
    assert.equal(r.body.resourceType, 'OperationOutcome');
    assert.equal((await call(`${base}/metadata`)).status, 200);
    assert.equal((await call(`${base}/Patient`, { headers: { authorization: 'Basic dXNlcjpwYXNz' } })).status, 401);
  });

  test('expired, wrong audience, unknown issuer, tampered, alg none and HS256 tokens are refused', async () => {
    const claims = { sub: 'seeder', client_id: 'seeder', scope: 'system/*.cruds', role: 'system' };
    const good = await system();
    const [h, p] = good.split('.');
    const none = `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${p}.`;
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), scope: 'system/*.cruds user/*.cruds' })).toString('base64url')}.${good.split('.')[2]}`;
    const bad = {
      expired: await token(claims, { exp: Math.floor(Date.now() / 1000) - 120 }),
      audience: await token(claims, { aud: 'https://other.example/fhir' }),
      issuer: await token(claims, { iss: 'https://evil.example' }),
      tampered,
      none,
      hs256: await token(claims, { alg: 'HS256', signWith: new TextEncoder().encode(JSON.stringify(jwk)) }),
      noRole: await token({ sub: 'x', client_id: 'x', scope: 'system/*.cruds' }),
      garbage: 'not-a-jwt',
    };
    for (const [name, t] of Object.entries(bad)) {
      const r = await call(`${base}/Patient`, { headers: auth(t) });
      assert.equal(r.status, 401, name);
      assert.match(r.headers.get('www-authenticate') ?? '', /error="invalid_(token|request)"/, name);
    }
    assert.equal((await call(`${base}/Patient`, { headers: auth(good) })).status, 200);
  });

  test('external roles: with a role map only mapped values count; scopes are held to the role\'s ceiling', async () => {
    const idp2 = (claims: Record<string, unknown>) => token({ sub: 'u2', client_id: 'app2', ...claims }, { iss: 'https://idp2.example.test' });
    const adminByName = await idp2({ role: 'admin', scope: 'user/*.cruds' });
    assert.equal((await call(`${base}/Patient`, { headers: auth(adminByName) })).status, 401, 'admin is not in the map');
    const clinician = await idp2({ role: 'clinician', scope: 'user/*.rs' });
    assert.equal((await call(`${base}/Patient`, { headers: auth(clinician) })).status, 200);
    const patientWithUserScope = await token({ sub: 'p9', client_id: 'app', role: 'patient', patient: 'x', scope: 'user/*.rs' });
    assert.equal((await call(`${base}/Patient`, { headers: auth(patientWithUserScope) })).status, 403, 'a patient role gets no user/ scopes');
  });

  test('a scope that does not cover the interaction is a 403', async () => {
    const t = await patientToken('whoever', 'patient/Observation.rs');
    assert.equal((await call(`${base}/Condition`, { headers: auth(t) })).status, 403);
    const create = await call(`${base}/Observation`, { method: 'POST', headers: auth(t), json: { resourceType: 'Observation', status: 'final', code: { text: 'x' } } });
    assert.equal(create.status, 403);
    const readOnly = await token({ sub: 's', client_id: 's', scope: 'system/*.rs', role: 'system' });
    assert.equal((await call(`${base}/Patient`, { method: 'POST', headers: auth(readOnly), json: patient('Nope') })).status, 403);
    // patient/ scopes without a patient in context permit nothing.
    assert.equal((await call(`${base}/Observation`, { headers: auth(await patientToken(undefined)) })).status, 403);
    // system/ scopes are for clients acting on their own behalf, not for users.
    const userWithSystem = await token({ sub: 'u', client_id: 'app', scope: 'system/*.cruds', role: 'admin' });
    assert.equal((await call(`${base}/Patient`, { headers: auth(userWithSystem) })).status, 403);
  });
});

describe('patient/ scopes are confined to the launch patient\'s compartment', () => {
  const ref: Record<string, string> = {};
  let alice: string;
  before(async () => {
    const seed = auth(await system());
    const create = async (body: Record<string, unknown>) => {
      const r = await call(`${base}/${body.resourceType}`, { method: 'POST', headers: seed, json: body });
      assert.equal(r.status, 201, r.text);
      return `${r.body.resourceType}/${r.body.id}`;
    };
    ref.alice = await create(patient('Confalice'));
    ref.bob = await create(patient('Confbob', { generalPractitioner: [{ reference: 'Practitioner/nurse-1' }] }));
    alice = ref.alice.split('/')[1];
    const obs = (subject: string, category: string, extra: Record<string, unknown> = {}) => ({
      resourceType: 'Observation', status: 'final', subject: { reference: subject }, code: { text: 'x' },
      category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: category }] }], ...extra,
    });
    ref.aliceLab = await create(obs(ref.alice, 'laboratory'));
    ref.aliceVital = await create(obs(ref.alice, 'vital-signs', { performer: [{ reference: ref.bob }] }));
    ref.bobLab = await create(obs(ref.bob, 'laboratory'));
  });

  test('read: her own resources; anyone else\'s are 404, as if absent', async () => {
    const t = auth(await patientToken(alice));
    assert.equal((await call(`${base}/${ref.alice}`, { headers: t })).status, 200);
    assert.equal((await call(`${base}/${ref.aliceLab}`, { headers: t })).status, 200);
    assert.equal((await call(`${base}/${ref.bob}`, { headers: t })).status, 404);
    assert.equal((await call(`${base}/${ref.bobLab}`, { headers: t })).status, 404);
    assert.equal((await call(`${base}/${ref.bobLab}/_history/1`, { headers: t })).status, 404);
  });

  test('search, _include, _revinclude, chains and _has return only what is in her compartment', async () => {
    const t = auth(await patientToken(alice));
    assert.deepEqual(ids(await call(`${base}/Observation`, { headers: t })), [ref.aliceLab, ref.aliceVital].sort());
    assert.deepEqual(ids(await call(`${base}/Observation?subject=${ref.bob}`, { headers: t })), []);
    assert.deepEqual(ids(await call(`${base}/Patient`, { headers: t })), [ref.alice]);
    const withPerformer = await call(`${base}/Observation?_include=Observation:performer&_include=Observation:subject`, { headers: t });
    assert.deepEqual(ids(withPerformer), [ref.alice, ref.aliceLab, ref.aliceVital].sort(), 'Bob, the performer, is not included');
    assert.deepEqual(ids(await call(`${base}/Patient?_revinclude=Observation:subject&_id=${ref.bob.split('/')[1]}`, { headers: t })), []);
    assert.deepEqual(ids(await call(`${base}/Observation?subject:Patient.name=confbob`, { headers: t })), []);
    assert.deepEqual(ids(await call(`${base}/Patient?_has:Observation:subject:category=laboratory`, { headers: t })), [ref.alice]);
    const counted = await call(`${base}/Observation?_summary=count`, { headers: t });
    assert.equal(counted.body.total, 2, 'totals count only what she may see');
    // Bob's compartment holds his own lab (not hers) and her vital signs he performed (hers too).
    assert.deepEqual(ids(await call(`${base}/${ref.bob}/Observation`, { headers: t })), [ref.aliceVital]);
  });

  test('batch entries are each confined', async () => {
    const t = auth(await patientToken(alice));
    const r = await call(`${base}`, { method: 'POST', headers: t, json: {
      resourceType: 'Bundle', type: 'batch',
      entry: [{ request: { method: 'GET', url: ref.aliceLab } }, { request: { method: 'GET', url: ref.bobLab } }, { request: { method: 'GET', url: 'Observation?category=laboratory' } }],
    } });
    assert.equal(r.status, 200, r.text);
    assert.match(r.body.entry[0].response.status, /^200/);
    assert.match(r.body.entry[1].response.status, /^404/);
    assert.deepEqual(r.body.entry[2].resource.entry.map((e: { resource: { id: string } }) => `Observation/${e.resource.id}`), [ref.aliceLab]);
  });

  test('transactions: conditional references and matches are searches under the same confinement', async () => {
    const t = auth(await patientToken(alice));
    const probe = (reference: string, headers: Record<string, string>) => call(`${base}`, { method: 'POST', headers, json: {
      resourceType: 'Bundle', type: 'transaction',
      entry: [{ request: { method: 'POST', url: 'Observation' }, resource: { resourceType: 'Observation', status: 'final', code: { text: 'p' }, subject: { reference: ref.alice }, focus: [{ reference }] } }],
    } });
    const bob = await probe('Patient?name=confbob', t);
    assert.equal(bob.status, 404, 'Bob is not found through her token');
    const createOnly = auth(await patientToken(alice, 'patient/Observation.c'));
    assert.equal((await probe('Patient?name=confalice', createOnly)).status, 403, 'no search scope for Patient: no lookup');
    const ifNoneExist = await call(`${base}`, { method: 'POST', headers: t, json: {
      resourceType: 'Bundle', type: 'transaction',
      entry: [{ request: { method: 'POST', url: 'Observation', ifNoneExist: `subject=${ref.bob}` }, resource: { resourceType: 'Observation', status: 'final', code: { text: 'q' }, subject: { reference: ref.alice } } }],
    } });
    assert.equal(ifNoneExist.status, 200, 'Bob\'s observations are invisible, so nothing matched and hers was created');
  });

  test('writes: nothing outside her compartment is created, changed, moved out or deleted', async () => {
    const t = auth(await patientToken(alice));
    const seed = auth(await system());
    const obsFor = (subject: string) => ({ resourceType: 'Observation', status: 'final', subject: { reference: subject }, code: { text: 'self-reported' } });
    const mine = await call(`${base}/Observation`, { method: 'POST', headers: t, json: obsFor(ref.alice) });
    assert.equal(mine.status, 201, mine.text);
    const forBob = await call(`${base}/Observation`, { method: 'POST', headers: t, json: obsFor(ref.bob) });
    assert.equal(forBob.status, 403);
    const bobCount = await call(`${base}/Observation?subject=${ref.bob}&_summary=count`, { headers: seed });
    assert.equal(bobCount.body.total, 1, 'the refused create left nothing behind');
    const bobLab = (await call(`${base}/${ref.bobLab}`, { headers: seed })).body;
    assert.equal((await call(`${base}/${ref.bobLab}`, { method: 'PUT', headers: t, json: { ...bobLab, status: 'cancelled' } })).status, 403);
    const moved = await call(`${base}/Observation/${mine.body.id}`, { method: 'PUT', headers: t, json: { ...mine.body, subject: { reference: ref.bob } } });
    assert.equal(moved.status, 403, 'may not move her resource into another compartment');
    assert.equal((await call(`${base}/Observation/${mine.body.id}`, { headers: seed })).body.subject.reference, ref.alice);
    assert.equal((await call(`${base}/${ref.bobLab}`, { method: 'DELETE', headers: t })).status, 403);
    assert.equal((await call(`${base}/${ref.bobLab}`, { headers: seed })).status, 200);
    assert.equal((await call(`${base}/Organization`, { method: 'POST', headers: t, json: { resourceType: 'Organization', name: 'x' } })).status, 403);
  });

  test('type and system history are refused; instance history and vread serve only the versions in her compartment', async () => {
    const t = auth(await patientToken(alice));
    assert.equal((await call(`${base}/Observation/_history`, { headers: t })).status, 403);
    assert.equal((await call(`${base}/_history`, { headers: t })).status, 403);
    const bobs = await call(`${base}/${ref.bobLab}/_history`, { headers: t });
    assert.equal(bobs.status, 200);
    assert.equal(bobs.body.total, 0, 'another patient\'s resource has no history for her');
    assert.equal((await call(`${base}/${ref.aliceLab}/_history`, { headers: t })).body.total, 1);
    // Filed for Bob first, then corrected to Alice: version 1 is Bob's and stays out of her reach.
    const seed = auth(await system());
    const moved = await call(`${base}/Observation`, { method: 'POST', headers: seed, json: { resourceType: 'Observation', status: 'final', code: { text: 'misfiled' }, subject: { reference: ref.bob } } });
    await call(`${base}/Observation/${moved.body.id}`, { method: 'PUT', headers: seed, json: { ...moved.body, subject: { reference: ref.alice } } });
    assert.equal((await call(`${base}/Observation/${moved.body.id}/_history/2`, { headers: t })).status, 200);
    assert.equal((await call(`${base}/Observation/${moved.body.id}/_history/1`, { headers: t })).status, 404);
    const versions = await call(`${base}/Observation/${moved.body.id}/_history`, { headers: t });
    assert.deepEqual(versions.body.entry.map((e: { resource: { meta: { versionId: string } } }) => e.resource.meta.versionId), ['2']);
  });

  test('writes may not name another patient through any membership parameter, nor take over a deleted id', async () => {
    const t = auth(await patientToken(alice));
    const seed = auth(await system());
    const viaPerformer = await call(`${base}/Observation`, { method: 'POST', headers: t, json: {
      resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: ref.bob }, performer: [{ reference: ref.alice }],
    } });
    assert.equal(viaPerformer.status, 403);
    const mine = await call(`${base}/Observation`, { method: 'POST', headers: t, json: {
      resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: ref.alice }, performer: [{ reference: ref.alice }],
    } });
    assert.equal(mine.status, 201, mine.text);
    const swapped = await call(`${base}/Observation/${mine.body.id}`, { method: 'PUT', headers: t, json: { ...mine.body, subject: { reference: ref.bob } } });
    assert.equal(swapped.status, 403);
    const bobs = await call(`${base}/Observation`, { method: 'POST', headers: seed, json: { resourceType: 'Observation', status: 'final', code: { text: 'b' }, subject: { reference: ref.bob } } });
    await call(`${base}/Observation/${bobs.body.id}`, { method: 'DELETE', headers: seed });
    const takeover = await call(`${base}/Observation/${bobs.body.id}`, { method: 'PUT', headers: t, json: { resourceType: 'Observation', id: bobs.body.id, status: 'final', code: { text: 'mine now' }, subject: { reference: ref.alice } } });
    assert.equal(takeover.status, 403);
  });

  test('chains and _has do not look at resources outside her compartment; includes only readable types', async () => {
    const t = auth(await patientToken(alice));
    // aliceVital's performer is Bob: a chain through performer must not test Bob's Patient resource.
    assert.deepEqual(ids(await call(`${base}/Observation?performer:Patient.name=confbob`, { headers: t })), []);
    const onlyPatients = auth(await patientToken(alice, 'patient/Patient.rs'));
    assert.deepEqual(ids(await call(`${base}/Patient?_revinclude=Observation:subject`, { headers: onlyPatients })), [ref.alice], 'Observations are not readable with patient/Patient.rs');
    assert.deepEqual(ids(await call(`${base}/Patient?_has:Observation:subject:category=laboratory`, { headers: onlyPatients })), [], '_has cannot probe unreadable types');
    const userPatients = auth(await token({ sub: 'nurse-1', client_id: 'app', scope: 'user/Patient.rs', role: 'nurse', fhirUser: 'Practitioner/nurse-1' }));
    const r = await call(`${base}/Patient?_revinclude=Observation:subject&_id=${ref.bob.split('/')[1]}`, { headers: userPatients });
    assert.deepEqual(ids(r), [ref.bob], 'user/Patient.rs does not bring Observations along');
  });

  test('granular scopes: only resources matching the scope\'s query', async () => {
    const t = auth(await patientToken(alice, 'patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory'));
    assert.deepEqual(ids(await call(`${base}/Observation`, { headers: t })), [ref.aliceLab]);
    assert.equal((await call(`${base}/${ref.aliceVital}`, { headers: t })).status, 404);
    assert.equal((await call(`${base}/${ref.aliceLab}`, { headers: t })).status, 200);
  });

  test('user/ and system/ scopes are not confined to one patient', async () => {
    const sys = auth(await token({ sub: 'svc', client_id: 'svc', scope: 'system/Observation.rs', role: 'system' }));
    assert.deepEqual(ids(await call(`${base}/Observation?category=laboratory`, { headers: sys })), [ref.aliceLab, ref.bobLab].sort());
  });
});
