import { describe, test, before } from 'node:test';
import { storeKey } from '../store-key.ts';
import assert from 'node:assert/strict';
import * as oauth from 'oauth4webapi';
import { decodeJwt } from 'jose';
import { generate } from 'otplib';
import { registerClient } from '../../src/auth/clients.ts';
import { addUser } from '../../src/auth/users.ts';
import { newTotpSecret } from '../../src/auth/totp.ts';
import { useSmartServer } from './smart-server.ts';
import { Browser } from './browser.ts';
import { call, patient } from '../rest/server.ts';
import { join } from 'node:path';
import { openEncrypted } from '../../src/store/sqlite/open.ts';

/** SMART App Launch (standalone) through the sign-in pages, with oauth4webapi as the app. */
const t = useSmartServer();
const insecure = { [oauth.allowInsecureRequests]: true };
const redirectUri = 'http://127.0.0.1:9/callback';
const password = 'correct horse battery staple';
let as: oauth.AuthorizationServer;
let app: oauth.Client;
let alice = '';
let bob = '';
let doctorSecret = '';

let ready: Promise<void> | undefined;
const setup = () => (ready ??= prepare());

async function prepare(): Promise<void> {
  const issuer = new URL(t.issuer);
  as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...insecure }));
  const { clientId } = await registerClient(t.authStore, {
    name: 'Test app', type: 'public', redirectUris: [redirectUri],
    scope: 'openid fhirUser launch/patient offline_access online_access patient/*.rs user/*.rs',
  });
  app = { client_id: clientId };
  for (const [family, set] of [['Launchalice', (id: string) => (alice = id)], ['Launchbob', (id: string) => (bob = id)]] as const) {
    // Bob's GP is Dr Who: the relationship that lets the physician reach his record.
    const gp = family === 'Launchbob' ? { generalPractitioner: [{ reference: 'Practitioner/who' }] } : {};
    const stored = await t.server.store.transaction((tx) => tx.create({ ...patient(family, gp), id: crypto.randomUUID() }));
    set(stored.id);
  }
  await addUser(t.authStore, { username: 'alice', role: 'patient', fhirUser: `Patient/${alice}`, password });
  doctorSecret = newTotpSecret();
  await addUser(t.authStore, { username: 'drwho', role: 'physician', fhirUser: 'Practitioner/who', password, totpSecret: doctorSecret });
  await addUser(t.authStore, { username: 'nurse', role: 'nurse', fhirUser: 'Practitioner/nurse', password });
  await addUser(t.authStore, { username: 'locky', role: 'patient', fhirUser: `Patient/${bob}`, password });
}

async function authorizeUrl(overrides: Record<string, string | undefined> = {}) {
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const url = new URL(as.authorization_endpoint!);
  const params: Record<string, string | undefined> = {
    client_id: app.client_id, redirect_uri: redirectUri, response_type: 'code', state, aud: t.base,
    scope: 'openid fhirUser launch/patient offline_access patient/*.rs', code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    ...overrides,
  };
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v);
  return { url: url.toString(), verifier, state };
}

async function exchange(callback: string, state: string, verifier: string) {
  const params = oauth.validateAuthResponse(as, app, new URL(callback), state);
  const response = await oauth.authorizationCodeGrantRequest(as, app, oauth.None(), params, redirectUri, verifier, insecure);
  return oauth.processAuthorizationCodeResponse(as, app, response);
}

/** Signs in as `username` (with a TOTP code when asked) and approves what the page offers; returns the redirect to the app. */
async function launch(browser: Browser, username: string, opts: { patient?: string; deselect?: string[]; scope?: string } = {}) {
  const { url, verifier, state } = await authorizeUrl(opts.scope ? { scope: opts.scope } : {});
  const origin = new URL(t.issuer).origin;
  let out = await browser.open(url, origin);
  assert.match(browser.html, /Sign in/);
  out = await browser.submit('/login', { username, password }, origin);
  if (!out && /Verification code/.test(browser.html)) out = await browser.submit('/totp', { code: await generate({ secret: doctorSecret }) }, origin);
  if (!out && /Choose a patient/.test(browser.html)) {
    out = await browser.submit('/patients', { q: 'launchbob' }, origin);
    out = await browser.submit('/patient', { patient: opts.patient ?? bob }, origin);
  }
  assert.equal(out, undefined, `expected the approval page, went to ${out}`);
  assert.match(browser.html, /Allow access\?/, browser.html.slice(0, 500));
  const scopes = browser.checkboxes().filter((s) => !(opts.deselect ?? []).includes(s));
  const callback = await browser.submit('/consent', { decision: 'allow', scope: scopes }, origin);
  assert.ok(callback?.startsWith(redirectUri), `redirected to ${callback}`);
  return { callback: callback!, verifier, state };
}

describe('standalone launch', () => {
  before(setup);
  test('a patient signs in, approves, and the app gets tokens bound to her own record', async () => {
    const { callback, verifier, state } = await launch(new Browser(), 'alice');
    const tokens = await exchange(callback, state, verifier);
    assert.equal(tokens.patient, alice);
    assert.equal(tokens.need_patient_banner, true);
    assert.ok(tokens.refresh_token, 'offline_access brings a refresh token');
    assert.ok(tokens.id_token);
    assert.equal(decodeJwt(tokens.id_token!).fhirUser, `${t.base}/Patient/${alice}`);
    assert.ok(tokens.expires_in! <= 900);
    const claims = decodeJwt(tokens.access_token);
    assert.equal(claims.aud, t.base);
    assert.equal(claims.patient, alice);
    const auth = { authorization: `Bearer ${tokens.access_token}` };
    assert.equal((await call(`${t.base}/Patient/${alice}`, { headers: auth })).status, 200);
    assert.equal((await call(`${t.base}/Patient/${bob}`, { headers: auth })).status, 404, 'another patient is not in her compartment');
    assert.equal((await call(`${t.base}/Patient`, { method: 'POST', headers: auth, json: patient('Nope') })).status, 403, 'rs does not permit create');
    const idTokenAsAccess = await call(`${t.base}/Patient/${alice}`, { headers: { authorization: `Bearer ${tokens.id_token}` } });
    assert.equal(idTokenAsAccess.status, 401, 'an ID token is not an access token');
  });

  test('authorize-post: a POSTed authorization request works like the GET', async () => {
    const { url, verifier, state } = await authorizeUrl();
    const u = new URL(url);
    const res = await fetch(`${u.origin}${u.pathname}`, { method: 'POST', body: u.searchParams, redirect: 'manual' });
    assert.equal(res.status, 303);
    const browser = new Browser();
    const origin = new URL(t.issuer).origin;
    await browser.open(new URL(res.headers.get('location')!, url).toString(), origin);
    await browser.submit('/login', { username: 'alice', password }, origin);
    const callback = await browser.submit('/consent', { decision: 'allow', scope: browser.checkboxes() }, origin);
    const tokens = await exchange(callback!, state, verifier);
    assert.equal(tokens.patient, alice);
  });

  test('a physician passes TOTP, picks a patient, deselects a scope; the token has only what was approved', async () => {
    const { callback, verifier, state } = await launch(new Browser(), 'drwho', { scope: 'openid fhirUser launch/patient patient/*.rs user/*.rs', deselect: ['user/*.rs'] });
    const tokens = await exchange(callback, state, verifier);
    assert.equal(tokens.patient, bob);
    assert.deepEqual(tokens.scope?.split(' ').sort(), ['fhirUser', 'launch/patient', 'openid', 'patient/*.rs']);
    assert.equal(tokens.refresh_token, undefined, 'no offline_access or online_access asked: no refresh token');
    const auth = { authorization: `Bearer ${tokens.access_token}` };
    assert.equal((await call(`${t.base}/Patient/${bob}`, { headers: auth })).status, 200);
    assert.equal((await call(`${t.base}/Patient/${alice}`, { headers: auth })).status, 404);
  });

  test('a nurse without TOTP must enrol first, and sees her recovery codes once', async () => {
    const browser = new Browser();
    const { url } = await authorizeUrl();
    const origin = new URL(t.issuer).origin;
    await browser.open(url, origin);
    await browser.submit('/login', { username: 'nurse', password }, origin);
    assert.match(browser.html, /Set up two-step verification/);
    const secret = /by hand: <code>([A-Z2-7]+)<\/code>/.exec(browser.html)![1];
    await browser.submit('/enrol', { code: '000000' }, origin);
    assert.equal(browser.status, 401);
    await browser.submit('/enrol', { code: await generate({ secret }) }, origin);
    assert.match(browser.html, /Recovery codes/);
    assert.equal([...browser.html.matchAll(/<li><code>[0-9a-f]{10}<\/code><\/li>/g)].length, 10);
    await browser.submit('/recovery-done', {}, origin);
    assert.match(browser.html, /Choose a patient/);
    const nurse = await t.authStore.userByName('nurse');
    assert.equal(nurse?.totpSecret, secret);
  });
});

describe('refresh tokens and codes', () => {
  before(setup);
  test('refresh rotates; reusing an old refresh token revokes the family and its access tokens', async () => {
    const { callback, verifier, state } = await launch(new Browser(), 'alice');
    const first = await exchange(callback, state, verifier);
    const second = await oauth.processRefreshTokenResponse(as, app, await oauth.refreshTokenGrantRequest(as, app, oauth.None(), first.refresh_token!, insecure));
    assert.notEqual(second.refresh_token, first.refresh_token);
    // Refresh tokens are kept only as digests: not even the decrypted auth file holds them.
    const db = openEncrypted(join(t.dataDir, 'bastion-auth.db'), await storeKey(t.dataDir, 'bastion-auth.db'), { readonly: true });
    const dump = (db.prepare('SELECT key, payload FROM oauth').all() as { key: string; payload: string }[]).map((r) => r.key + r.payload).join('\n');
    db.close();
    for (const secret of [first.refresh_token!, second.refresh_token!]) assert.ok(!dump.includes(secret), 'no refresh token in the auth file');
    assert.equal(second.patient, alice, 'the launch context comes with refreshed tokens too');
    const auth = { authorization: `Bearer ${second.access_token}` };
    assert.equal((await call(`${t.base}/Patient/${alice}`, { headers: auth })).status, 200);
    const reuse = await oauth.refreshTokenGrantRequest(as, app, oauth.None(), first.refresh_token!, insecure);
    assert.equal(reuse.status, 400);
    assert.equal(((await reuse.json()) as { error: string }).error, 'invalid_grant');
    const newest = await oauth.refreshTokenGrantRequest(as, app, oauth.None(), second.refresh_token!, insecure);
    assert.equal(newest.status, 400, 'the whole family is revoked');
    assert.equal((await call(`${t.base}/Patient/${alice}`, { headers: auth })).status, 401, 'and the access tokens issued from it');
  });

  test('a code works once; its reuse revokes what it gave; a wrong code_verifier is refused', async () => {
    const { callback, verifier, state } = await launch(new Browser(), 'alice');
    const params = oauth.validateAuthResponse(as, app, new URL(callback), state);
    const wrong = await oauth.authorizationCodeGrantRequest(as, app, oauth.None(), params, redirectUri, oauth.generateRandomCodeVerifier(), insecure);
    assert.equal(wrong.status, 400);
    const second = await launch(new Browser(), 'alice');
    const tokens = await exchange(second.callback, second.state, second.verifier);
    const again = await oauth.authorizationCodeGrantRequest(as, app, oauth.None(), oauth.validateAuthResponse(as, app, new URL(second.callback), second.state), redirectUri, second.verifier, insecure);
    assert.equal(again.status, 400);
    assert.equal((await call(`${t.base}/Patient/${alice}`, { headers: { authorization: `Bearer ${tokens.access_token}` } })).status, 401);
    void verifier;
  });
});

describe('authorization requests that are refused', () => {
  before(setup);
  const origin = () => new URL(t.issuer).origin;

  test('wrong redirect_uri: an error page, never a redirect to it', async () => {
    const browser = new Browser();
    const { url } = await authorizeUrl({ redirect_uri: 'http://127.0.0.1:9/elsewhere' });
    const out = await browser.open(url, origin());
    assert.equal(out, undefined);
    assert.equal(browser.status, 400);
  });

  for (const [name, overrides, error] of [
    ['no PKCE for a public client', { code_challenge: undefined, code_challenge_method: undefined }, 'invalid_request'],
    ['plain PKCE', { code_challenge_method: 'plain', code_challenge: 'a'.repeat(43) }, 'invalid_request'],
    ['aud that is not this FHIR server', { aud: 'https://other.example/fhir' }, 'invalid_request'],
    ['no aud', { aud: undefined }, 'invalid_request'],
    ['an unknown launch', { launch: 'nope' }, 'invalid_request'],
  ] as const) {
    test(`${name}: error redirected to the app, with state`, async () => {
      const { url, state } = await authorizeUrl(overrides);
      const out = await new Browser().open(url, origin());
      assert.ok(out?.startsWith(redirectUri), `got ${out}`);
      const params = new URL(out!).searchParams;
      assert.equal(params.get('error'), error);
      assert.equal(params.get('state'), state);
    });
  }

  test('the user denies: access_denied to the app', async () => {
    const browser = new Browser();
    const { url } = await authorizeUrl();
    await browser.open(url, origin());
    await browser.submit('/login', { username: 'alice', password }, origin());
    const out = await browser.submit('/consent', { decision: 'deny' }, origin());
    assert.equal(new URL(out!).searchParams.get('error'), 'access_denied');
  });

  test('forms without the CSRF token are refused', async () => {
    const browser = new Browser();
    const { url } = await authorizeUrl();
    await browser.open(url, origin());
    const res = await browser.post(browser.url.replace(/\/?$/, '/login'), new URLSearchParams({ username: 'alice', password }));
    assert.equal(res.status, 403);
  });

  test('five wrong passwords lock the account; the right one is then refused too, with the same message', async () => {
    const browser = new Browser();
    const { url } = await authorizeUrl();
    await browser.open(url, origin());
    for (let i = 0; i < 5; i++) {
      await browser.submit('/login', { username: 'locky', password: 'wrong password ' + i }, origin());
      assert.equal(browser.status, 401);
    }
    const failed = browser.html;
    await browser.submit('/login', { username: 'locky', password }, origin());
    assert.equal(browser.status, 401);
    assert.match(browser.html, /Sign-in failed/);
    assert.equal(browser.html.replace(/value="[^"]*"/g, ''), failed.replace(/value="[^"]*"/g, ''), 'a locked account looks like a wrong password');
    const user = await t.authStore.userByName('locky');
    assert.ok(user?.lockedUntil && user.lockedUntil > Date.now());
  });

  test('pages carry a strict CSP and no script', async () => {
    const { url } = await authorizeUrl();
    const res = await fetch(url, { redirect: 'manual' });
    const page = await fetch(new URL(res.headers.get('location')!, url), { headers: { cookie: res.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ') } });
    const csp = page.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline|script-src/);
    assert.doesNotMatch(await page.text(), /<script/i);
  });
});

describe('the audit trail', () => {
  before(setup);

  test('sign-ins, failures, lockouts, approvals, tokens and revocations are recorded, without secrets', async () => {
    await t.server.app.audit.flush();
    const records = await t.server.store.auditRecords({ afterSeq: 0, limit: 100_000 });
    const facts = records.map((r) => JSON.parse(r.json) as { do: string; ev?: string; st: number; who: string });
    const kinds = new Set(facts.filter((f) => f.do === 'authn').map((f) => f.ev));
    for (const k of ['login', 'login-failed', 'locked-out', 'mfa-enrolled', 'consent', 'consent-denied', 'token', 'token-failed', 'grant-revoked', 'authorization-refused']) {
      assert.ok(kinds.has(k), `an audit record of ${k}`);
    }
    const all = records.map((r) => r.json).join('\n');
    assert.ok(!all.includes(password), 'no password in the audit trail');
  });
});
