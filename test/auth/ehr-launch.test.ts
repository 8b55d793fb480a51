import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as oauth from 'oauth4webapi';
import { exportJWK, generateKeyPair } from 'jose';
import { generate } from 'otplib';
import { registerClient } from '../../src/auth/clients.ts';
import { addUser } from '../../src/auth/users.ts';
import { newTotpSecret } from '../../src/auth/totp.ts';
import { useSmartServer } from './smart-server.ts';
import { Browser } from './browser.ts';
import { call, patient } from '../rest/server.ts';

/** EHR launch: the EHR creates a launch for a patient and encounter; the app gets that context. Also the admin API. */
// Only admins need TOTP here: the physician signs in several times within one 30 s step (a TOTP code is good once).
const t = useSmartServer({ BASTION_MFA_ROLES: 'admin' });
const insecure = { [oauth.allowInsecureRequests]: true };
const redirectUri = 'http://127.0.0.1:9/ehr-callback';
const password = 'another long password';
let as: oauth.AuthorizationServer;
let app: oauth.Client;
let ehr: { clientId: string; auth: oauth.ClientAuth };
let patientId = '';
let encounterId = '';
const secret = newTotpSecret();

let ready: Promise<void> | undefined;
const setup = () => (ready ??= prepare());

async function prepare(): Promise<void> {
  const issuer = new URL(t.issuer);
  as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...insecure }));
  app = { client_id: (await registerClient(t.authStore, { name: 'EHR app', type: 'public', redirectUris: [redirectUri], scope: 'launch openid fhirUser patient/*.rs' })).clientId };
  const { privateKey, publicKey } = await generateKeyPair('ES384');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'ehr', alg: 'ES384' };
  const reg = await registerClient(t.authStore, { name: 'EHR', type: 'backend', jwks: { keys: [jwk] }, scope: 'system/*.rs' });
  ehr = { clientId: reg.clientId, auth: oauth.PrivateKeyJwt({ key: privateKey, kid: 'ehr' }) };
  patientId = (await t.server.store.transaction((tx) => tx.create({ ...patient('Ehrpatient'), id: crypto.randomUUID() }))).id;
  encounterId = (await t.server.store.transaction((tx) => tx.create({ resourceType: 'Encounter', id: crypto.randomUUID(), status: 'in-progress', class: { code: 'AMB' }, subject: { reference: `Patient/${patientId}` }, participant: [{ individual: { reference: 'Practitioner/launch' } }] }))).id;
  await addUser(t.authStore, { username: 'drlaunch', role: 'physician', fhirUser: 'Practitioner/launch', password });
  await addUser(t.authStore, { username: 'otherpatient', role: 'patient', fhirUser: `Patient/${crypto.randomUUID()}`, password });
  await addUser(t.authStore, { username: 'boss', role: 'admin', password, totpSecret: secret });
  await addUser(t.authStore, { username: 'boss2', role: 'admin', password, totpSecret: secret });
}

/** Signs `username` in for the EHR app with `launch`; returns where the approval step led (the page, or the app). */
async function launchAs(username: string, launch: string, clientId = app.client_id): Promise<Browser & { redirected?: string }> {
  const verifier = oauth.generateRandomCodeVerifier();
  const url = new URL(as.authorization_endpoint!);
  for (const [k, v] of Object.entries({
    client_id: clientId, redirect_uri: redirectUri, response_type: 'code', state: 's2', aud: t.base, launch,
    scope: 'launch openid fhirUser patient/*.rs', code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  })) url.searchParams.set(k, v);
  const browser: Browser & { redirected?: string } = new Browser();
  const origin = new URL(t.issuer).origin;
  browser.redirected = await browser.open(url.toString(), origin);
  if (browser.redirected) return browser;
  await browser.submit('/login', { username, password }, origin);
  if (/Verification code/.test(browser.html)) await browser.submit('/totp', { code: await generate({ secret }) }, origin);
  return browser;
}

async function ehrToken(): Promise<string> {
  const res = await oauth.clientCredentialsGrantRequest(as, { client_id: ehr.clientId }, ehr.auth, new URLSearchParams({ scope: 'system/*.rs' }), insecure);
  return (await oauth.processClientCredentialsResponse(as, { client_id: ehr.clientId }, res)).access_token;
}

async function createLaunch(body: unknown, token?: string) {
  const res = await fetch(`${t.issuer}/launch`, {
    method: 'POST', body: JSON.stringify(body),
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
  });
  return { status: res.status, body: (await res.json()) as Record<string, string> };
}

describe('EHR launch', () => {
  before(setup);
  test('the app launched with the EHR\'s launch value gets its patient and encounter, no picker', async () => {
    const created = await createLaunch({ patient: patientId, encounter: encounterId }, await ehrToken());
    assert.equal(created.status, 201);
    const verifier = oauth.generateRandomCodeVerifier();
    const url = new URL(as.authorization_endpoint!);
    for (const [k, v] of Object.entries({
      client_id: app.client_id, redirect_uri: redirectUri, response_type: 'code', state: 's1', aud: t.base, launch: created.body.launch,
      scope: 'launch openid fhirUser patient/*.rs', code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    })) url.searchParams.set(k, v);
    const browser = new Browser();
    const origin = new URL(t.issuer).origin;
    await browser.open(url.toString(), origin);
    await browser.submit('/login', { username: 'drlaunch', password }, origin);
    assert.match(browser.html, /Allow access\?/);
    assert.match(browser.html, /Ehrpatient/, 'the approval page names the patient in context');
    const callback = await browser.submit('/consent', { decision: 'allow', scope: browser.checkboxes() }, origin);
    const params = oauth.validateAuthResponse(as, app, new URL(callback!), 's1');
    const tokens = await oauth.processAuthorizationCodeResponse(as, app, await oauth.authorizationCodeGrantRequest(as, app, oauth.None(), params, redirectUri, verifier, insecure));
    assert.equal(tokens.patient, patientId);
    assert.equal(tokens.encounter, encounterId);
    assert.equal(tokens.need_patient_banner, false);
    assert.equal((await call(`${t.base}/Encounter/${encounterId}`, { headers: { authorization: `Bearer ${tokens.access_token}` } })).status, 200);
  });

  test('a launch serves one authorization, by staff (not another patient), in the app it was made for', async () => {
    const token = await ehrToken();
    const forPatientUser = await createLaunch({ patient: patientId }, token);
    const patientUser = await launchAs('otherpatient', forPatientUser.body.launch);
    assert.equal(patientUser.status, 403, 'a patient user cannot take over a launch about someone else');
    assert.match(patientUser.html, /another patient/);

    const once = await createLaunch({ patient: patientId }, token);
    const first = await launchAs('drlaunch', once.body.launch);
    assert.match(first.html, /Allow access\?/);
    await first.submit('/consent', { decision: 'allow', scope: first.checkboxes() }, new URL(t.issuer).origin);
    const second = await launchAs('drlaunch', once.body.launch);
    assert.equal(new URL(second.redirected!).searchParams.get('error'), 'invalid_request', 'the launch was used up');

    const otherApp = (await registerClient(t.authStore, { name: 'Other', type: 'public', redirectUris: [redirectUri], scope: 'launch openid fhirUser patient/*.rs' })).clientId;
    const bound = await createLaunch({ patient: patientId, client_id: app.client_id }, token);
    const wrongApp = await launchAs('drlaunch', bound.body.launch, otherApp);
    assert.equal(wrongApp.status, 403);
    assert.match(wrongApp.html, /another app/);
  });

  test('launches need a token of a clinician or an EHR client, and a patient that exists', async () => {
    assert.equal((await createLaunch({ patient: patientId })).status, 401);
    assert.equal((await createLaunch({ patient: 'nobody' }, await ehrToken())).status, 400);
    assert.equal((await createLaunch({}, await ehrToken())).status, 400);
  });
});

describe('admin API', () => {
  before(setup);

  async function adminToken(username: string, scope: string): Promise<string> {
    const admin = (await registerClient(t.authStore, { name: 'Console', type: 'public', redirectUris: [redirectUri], scope: 'openid bastion/admin user/*.rs' })).clientId;
    const verifier = oauth.generateRandomCodeVerifier();
    const url = new URL(as.authorization_endpoint!);
    for (const [k, v] of Object.entries({
      client_id: admin, redirect_uri: redirectUri, response_type: 'code', state: 's3', aud: t.base, scope,
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    })) url.searchParams.set(k, v);
    const browser = new Browser();
    const origin = new URL(t.issuer).origin;
    await browser.open(url.toString(), origin);
    await browser.submit('/login', { username, password }, origin);
    await browser.submit('/totp', { code: await generate({ secret }) }, origin);
    const callback = await browser.submit('/consent', { decision: 'allow', scope: browser.checkboxes() }, origin);
    const client = { client_id: admin };
    const res = await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), oauth.validateAuthResponse(as, client, new URL(callback!), 's3'), redirectUri, verifier, insecure);
    return (await oauth.processAuthorizationCodeResponse(as, client, res)).access_token;
  }

  test('an admin\'s token with bastion/admin provisions users; without that scope it may not', async () => {
    const withScope = await adminToken('boss', 'openid bastion/admin');
    const created = await fetch(`${t.issuer}/admin/users`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${withScope}` }, body: JSON.stringify({ username: 'newnurse', role: 'nurse' }) });
    assert.equal(created.status, 201);
    const body = (await created.json()) as { oneTimePassword?: string };
    assert.ok(body.oneTimePassword);
    const without = await adminToken('boss2', 'openid user/*.rs');
    const refused = await fetch(`${t.issuer}/admin/users`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${without}` }, body: JSON.stringify({ username: 'x2', role: 'nurse' }) });
    assert.equal(refused.status, 403);
  });
  test('only an admin may provision; a patient user or a backend client may not', async () => {
    const token = await ehrToken();
    const res = await fetch(`${t.issuer}/admin/users`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ username: 'x', role: 'nurse' }) });
    assert.equal(res.status, 403);
    const anon = await fetch(`${t.issuer}/admin/clients`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(anon.status, 401);
  });
});
