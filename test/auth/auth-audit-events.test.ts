import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as oauth from 'oauth4webapi';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { generate } from 'otplib';
import { registerClient } from '../../src/auth/clients.ts';
import { addUser } from '../../src/auth/users.ts';
import { newTotpSecret } from '../../src/auth/totp.ts';
import { renderAuditEvent, authEventSystem } from '../../src/audit/audit-event.ts';
import type { AuditRecordFacts } from '../../src/audit/audit-record.ts';
import { useSmartServer } from './smart-server.ts';
import { Browser } from './browser.ts';
import { call, patient } from '../rest/server.ts';
import { auditEventsIn } from '../audit/audit-file.ts';

/**
 * Every authentication, authorization and administrative event leaves an audit record (`do:
 * authn`, `ev: <kind>`) naming who, from which app, and how it ended, and none holds a password,
 * TOTP or recovery code, client secret or assertion, authorization code, launch value or token.
 * Driven over HTTP against a real server; the records are read from its trail.
 */
// Sessions end after 2 s idle here, so that their expiry is recorded within the test.
const t = useSmartServer({ BASTION_SESSION_IDLE: '2' });
const insecure = { [oauth.allowInsecureRequests]: true };
const redirectUri = 'http://127.0.0.1:9/audit-callback';
const password = 'audited sign-in password';
const totpSecret = newTotpSecret();
const bin = new URL('../../bin/bastion.js', import.meta.url).pathname;
const run = promisify(execFile);

/** Everything secret the tests send or receive: none may appear in any audit record. */
const secrets = new Set<string>([password]);
/** Short secrets (TOTP codes): looked for as whole words, outside ids. */
const codes = new Set<string>();

let as: oauth.AuthorizationServer;
let app: oauth.Client;
let consoleApp: oauth.Client;
let portal: { clientId: string; secret: string };
let ehr: { clientId: string; kid: string; key: CryptoKey; auth: oauth.ClientAuth };
const users: Record<string, string> = {};
let patId = '';
let strangerId = '';

type Facts = AuditRecordFacts & { ev: string };

let ready: Promise<void> | undefined;
const setup = () => (ready ??= prepare());

async function prepare(): Promise<void> {
  const issuer = new URL(t.issuer);
  as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...insecure }));
  app = { client_id: (await registerClient(t.authStore, { name: 'Audited app', type: 'public', redirectUris: [redirectUri], scope: 'openid fhirUser launch/patient offline_access patient/*.rs user/*.rs' })).clientId };
  consoleApp = { client_id: (await registerClient(t.authStore, { name: 'Admin console', type: 'public', redirectUris: [redirectUri], scope: 'openid bastion/admin user/*.rs' })).clientId };
  const p = await registerClient(t.authStore, { name: 'Portal', type: 'confidential', redirectUris: [redirectUri], scope: 'openid patient/*.rs' });
  portal = { clientId: p.clientId, secret: p.clientSecret! };
  secrets.add(portal.secret);
  const { privateKey, publicKey } = await generateKeyPair('ES384');
  const kid = 'ehr-audit';
  const reg = await registerClient(t.authStore, { name: 'EHR', type: 'backend', jwks: { keys: [{ ...(await exportJWK(publicKey)), kid, alg: 'ES384' }] }, scope: 'system/*.rs' });
  ehr = { clientId: reg.clientId, kid, key: privateKey, auth: oauth.PrivateKeyJwt({ key: privateKey, kid }) };
  patId = (await t.server.store.transaction((tx) => tx.create({ ...patient('Auditpat'), id: crypto.randomUUID() }))).id;
  strangerId = (await t.server.store.transaction((tx) => tx.create({ ...patient('Auditstranger'), id: crypto.randomUUID() }))).id;
  const add = async (username: string, role: 'patient' | 'physician' | 'nurse' | 'admin', extra: { fhirUser?: string; totpSecret?: string } = {}) => {
    users[username] = (await addUser(t.authStore, { username, role, password, ...extra })).id;
  };
  for (const name of ['pat', 'locky', 'bye', 'idler']) await add(name, 'patient', { fhirUser: `Patient/${patId}` });
  for (const name of ['drmfa', 'drlock', 'drbtg']) await add(name, 'physician', { fhirUser: `Practitioner/${name}`, totpSecret });
  await add('newnurse', 'nurse', { fhirUser: 'Practitioner/newnurse' });
  await add('boss', 'admin', { totpSecret });
}

/** All the authorization server's audit records so far. */
async function authEvents(): Promise<Facts[]> {
  await t.server.app.audit.flush();
  const records = await t.server.store.auditRecords({ afterSeq: 0, limit: 1_000_000 });
  return records.map((r) => JSON.parse(r.json) as Facts).filter((f) => f.do === 'authn');
}

interface Expected { who?: string; app?: string; success?: boolean; why?: RegExp }

function matching(all: Facts[], kind: string, e: Expected): Facts[] {
  return all.filter((f) => f.ev === kind && (e.who === undefined || f.who === e.who) && (e.app === undefined || f.app === e.app) && (e.why === undefined || e.why.test(f.why ?? '')));
}

/** The latest record of `kind` matching `e`; its AuditEvent has the kind as subtype and the outcome expected. */
async function recorded(kind: string, e: Expected = {}): Promise<Facts> {
  const all = await authEvents();
  const found = matching(all, kind, e);
  assert.ok(found.length > 0, `an audit record ${kind} ${JSON.stringify({ ...e, why: e.why?.source })}; of that kind there are ${JSON.stringify(all.filter((f) => f.ev === kind))}`);
  const facts = found.at(-1)!;
  const success = e.success ?? true;
  assert.equal(facts.st, success ? 200 : 401);
  const event = renderAuditEvent(facts) as { outcome: string; subtype: { system: string; code: string }[] };
  assert.equal(event.outcome, success ? '0' : '4');
  assert.ok(event.subtype.some((c) => c.system === authEventSystem && c.code === kind));
  return facts;
}

/** Waits for a record written by the server on its own (housekeeping), at most `ms`. */
async function eventually(kind: string, e: Expected, ms = 15_000): Promise<Facts> {
  const until = Date.now() + ms;
  while (matching(await authEvents(), kind, e).length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 250));
  return recorded(kind, e);
}

async function authorizeUrl(client: oauth.Client, scope: string, extra: Record<string, string> = {}) {
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const url = new URL(as.authorization_endpoint!);
  for (const [k, v] of Object.entries({
    client_id: client.client_id, redirect_uri: redirectUri, response_type: 'code', state, aud: t.base, scope,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', ...extra,
  })) url.searchParams.set(k, v);
  return { url: url.toString(), verifier, state };
}

const origin = () => new URL(t.issuer).origin;

/** Opens the authorization and submits username and password; the browser is left on the page that follows. */
async function startSignIn(username: string, opts: { client?: oauth.Client; scope?: string; password?: string } = {}) {
  const client = opts.client ?? app;
  const { url, verifier, state } = await authorizeUrl(client, opts.scope ?? 'openid fhirUser launch/patient offline_access patient/*.rs');
  const browser = new Browser();
  await browser.open(url, origin());
  assert.match(browser.html, /Sign in/);
  await browser.submit('/login', { username, password: opts.password ?? password }, origin());
  return { browser, verifier, state, client };
}

/** A TOTP code for now, noted as a secret. */
async function totp(): Promise<string> {
  const code = await generate({ secret: totpSecret });
  codes.add(code);
  return code;
}

/** Approves everything offered and redeems the code; the code and tokens are noted as secrets. */
async function approveAndRedeem(s: Awaited<ReturnType<typeof startSignIn>>) {
  assert.match(s.browser.html, /Allow access\?/, s.browser.html.slice(0, 400));
  const callback = await s.browser.submit('/consent', { decision: 'allow', scope: s.browser.checkboxes() }, origin());
  assert.ok(callback?.startsWith(redirectUri), `redirected to ${callback}`);
  const params = oauth.validateAuthResponse(as, s.client, new URL(callback!), s.state);
  secrets.add(params.get('code')!);
  const tokens = await oauth.processAuthorizationCodeResponse(as, s.client, await oauth.authorizationCodeGrantRequest(as, s.client, oauth.None(), params, redirectUri, s.verifier, insecure));
  for (const v of [tokens.access_token, tokens.refresh_token, tokens.id_token]) if (v) secrets.add(v);
  return { tokens, callback: callback!, params };
}

async function ehrAssertion(key: CryptoKey = ehr.key, sub = ehr.clientId, aud = `${t.issuer}/token`): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const jwt = await new SignJWT({}).setProtectedHeader({ alg: 'ES384', kid: ehr.kid }).setIssuer(sub).setSubject(sub).setAudience(aud)
    .setIssuedAt(now).setExpirationTime(now + 60).setJti(crypto.randomUUID()).sign(key);
  secrets.add(jwt);
  return jwt;
}

async function ehrToken(): Promise<string> {
  const res = await oauth.clientCredentialsGrantRequest(as, { client_id: ehr.clientId }, ehr.auth, new URLSearchParams({ scope: 'system/*.rs' }), insecure);
  const token = (await oauth.processClientCredentialsResponse(as, { client_id: ehr.clientId }, res)).access_token;
  secrets.add(token);
  return token;
}

describe('first start', () => {
  before(setup);
  test('the generated admin account and the signing keys are recorded as made by the system', async () => {
    if (t.server.setupSecret) secrets.add(t.server.setupSecret);
    const admin = await t.authStore.userByName('admin');
    await recorded('user-created', { who: 'system', why: new RegExp(`user=${admin!.id} role=admin`) });
    await recorded('key-created', { who: 'system', why: /kid=/ });
  });
});

describe('sign-in', () => {
  before(setup);

  test('a password sign-in, the approval with its launch context, and the tokens issued', async () => {
    const s = await startSignIn('pat');
    await approveAndRedeem(s);
    await recorded('login', { who: users.pat, app: app.client_id, why: /^password$/ });
    await recorded('consent', { who: users.pat, app: app.client_id, why: new RegExp(`patient=Patient/${patId}`) });
    await recorded('token', { who: users.pat, app: app.client_id, why: /^authorization_code/ });
  });

  test('a wrong password (known and unknown usernames) and a lockout', async () => {
    await startSignIn('pat', { password: 'not the password at all' });
    secrets.add('not the password at all');
    await recorded('login-failed', { who: users.pat, app: app.client_id, success: false, why: /bad-password/ });
    await startSignIn('ghost', { password: 'ghost password guess' });
    secrets.add('ghost password guess');
    const ghost = await recorded('login-failed', { success: false, why: /unknown-user/ });
    // Never what was typed (it may be a password): a keyed digest that repeats with the same text.
    assert.match(ghost.who, /^unknown-user:[0-9a-f]{16}$/);
    await startSignIn('ghost', { password: 'ghost password guess' });
    assert.equal((await recorded('login-failed', { success: false, why: /unknown-user/ })).who, ghost.who);
    secrets.add('ghost');
    for (let i = 0; i < 5; i++) {
      await startSignIn('locky', { password: `wrong guess number ${i}` });
      secrets.add(`wrong guess number ${i}`);
    }
    await recorded('locked-out', { who: users.locky, app: app.client_id, success: false });
  });

  test('the second factor: a wrong code and a verified one', async () => {
    const s = await startSignIn('drmfa', { scope: 'openid fhirUser user/*.rs' });
    assert.match(s.browser.html, /Verification code/);
    codes.add('000000');
    await s.browser.submit('/totp', { code: '000000' }, origin());
    await recorded('mfa-failed', { who: users.drmfa, app: app.client_id, success: false });
    await s.browser.submit('/totp', { code: await totp() }, origin());
    await recorded('mfa-verified', { who: users.drmfa, app: app.client_id, why: /^totp$/ });
    await recorded('login', { who: users.drmfa, why: /password\+totp/ });
  });

  test('wrong second-factor codes lock the account too', async () => {
    const s = await startSignIn('drlock', { scope: 'openid fhirUser user/*.rs' });
    for (let i = 0; i < 5; i++) {
      const code = String(100000 + i * 7919);
      codes.add(code);
      await s.browser.submit('/totp', { code }, origin());
    }
    await recorded('locked-out', { who: users.drlock, app: app.client_id, success: false, why: /second factor/ });
  });

  test('enrolment: a wrong code, then enrolled; later a recovery code signs in', async () => {
    const s = await startSignIn('newnurse', { scope: 'openid fhirUser user/*.rs' });
    assert.match(s.browser.html, /Set up two-step verification/);
    const secret = /by hand: <code>([A-Z2-7]+)<\/code>/.exec(s.browser.html)![1];
    secrets.add(secret);
    codes.add('000000');
    await s.browser.submit('/enrol', { code: '000000' }, origin());
    await recorded('mfa-failed', { who: users.newnurse, success: false, why: /enrol/ });
    const code = await generate({ secret });
    codes.add(code);
    await s.browser.submit('/enrol', { code }, origin());
    await recorded('mfa-enrolled', { who: users.newnurse, app: app.client_id });
    const recovery = [...s.browser.html.matchAll(/<li><code>([0-9a-f]{10})<\/code><\/li>/g)].map((m) => m[1]);
    for (const r of recovery) secrets.add(r);
    const again = await startSignIn('newnurse', { scope: 'openid fhirUser user/*.rs' });
    await again.browser.submit('/totp', { code: recovery[0] }, origin());
    await recorded('recovery-code-used', { who: users.newnurse, app: app.client_id });
    await recorded('mfa-verified', { who: users.newnurse, why: /^recovery$/ });
  });

  test('the user refuses the approval, or cancels', async () => {
    const s = await startSignIn('pat');
    await s.browser.submit('/consent', { decision: 'deny' }, origin());
    await recorded('consent-denied', { who: users.pat, app: app.client_id, success: false });
    const { url } = await authorizeUrl(app, 'openid patient/*.rs');
    const b = new Browser();
    await b.open(url, origin());
    await b.submit('/abort', {}, origin());
    await recorded('consent-denied', { app: app.client_id, success: false, why: /cancel/ });
  });
});

describe('tokens', () => {
  before(setup);

  test('a refresh is told apart from a code redemption; reusing a rotated refresh token is detected and revokes the grant', async () => {
    const { tokens } = await approveAndRedeem(await startSignIn('pat'));
    const refreshed = await oauth.processRefreshTokenResponse(as, app, await oauth.refreshTokenGrantRequest(as, app, oauth.None(), tokens.refresh_token!, insecure));
    for (const v of [refreshed.access_token, refreshed.refresh_token, refreshed.id_token]) if (v) secrets.add(v);
    await recorded('token-refreshed', { who: users.pat, app: app.client_id, why: /^refresh_token/ });
    const reuse = await oauth.refreshTokenGrantRequest(as, app, oauth.None(), tokens.refresh_token!, insecure);
    assert.equal(reuse.status, 400);
    await recorded('token-reuse', { who: users.pat, app: app.client_id, success: false, why: /refresh token/ });
    await recorded('grant-revoked', { who: users.pat, app: app.client_id, why: /token/ });
  });

  test('a reused authorization code is detected', async () => {
    const s = await startSignIn('pat');
    const first = await approveAndRedeem(s);
    const again = await oauth.authorizationCodeGrantRequest(as, app, oauth.None(), first.params, redirectUri, s.verifier, insecure);
    assert.equal(again.status, 400);
    await recorded('token-reuse', { app: app.client_id, success: false, why: /authorization code/ });
  });

  test('revocation of a refresh token (the grant) and of an access token; introspection', async () => {
    const { tokens } = await approveAndRedeem(await startSignIn('pat'));
    await oauth.processRevocationResponse(await oauth.revocationRequest(as, app, oauth.None(), tokens.access_token, insecure));
    await recorded('token-revoked', { who: users.pat, app: app.client_id });
    await oauth.processRevocationResponse(await oauth.revocationRequest(as, app, oauth.None(), tokens.refresh_token!, insecure));
    await recorded('grant-revoked', { who: users.pat, app: app.client_id, why: /revocation/ });
    const token = await ehrToken();
    await recorded('token', { who: ehr.clientId, app: ehr.clientId, why: /^client_credentials/ });
    const client = { client_id: ehr.clientId };
    const active = await oauth.processIntrospectionResponse(as, client, await oauth.introspectionRequest(as, client, ehr.auth, token, insecure));
    assert.equal(active.active, true);
    await recorded('token-introspected', { who: ehr.clientId, app: ehr.clientId, why: /^active/ });
    const inactive = await oauth.processIntrospectionResponse(as, client, await oauth.introspectionRequest(as, client, ehr.auth, 'not-a-token-at-all', insecure));
    assert.equal(inactive.active, false);
    await recorded('token-introspected', { who: ehr.clientId, why: /^inactive/ });
  });

  test('client authentication failures name the client, never its secret or assertion', async () => {
    const wrongSecret = 'definitely-not-the-portal-secret';
    secrets.add(wrongSecret);
    const basic = Buffer.from(`${encodeURIComponent(portal.clientId)}:${encodeURIComponent(wrongSecret)}`).toString('base64');
    secrets.add(basic);
    const res = await fetch(`${t.issuer}/token`, {
      method: 'POST', headers: { authorization: `Basic ${basic}` },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: 'some-code-value-xyz', redirect_uri: redirectUri }),
    });
    assert.equal(res.status, 401);
    await recorded('client-auth-failed', { who: portal.clientId, app: portal.clientId, success: false, why: /token/ });

    const { privateKey: wrongKey } = await generateKeyPair('ES384');
    const tokenWith = (assertion: string, endpoint = 'token', extra: Record<string, string> = { grant_type: 'client_credentials', scope: 'system/*.rs' }) => fetch(`${t.issuer}/${endpoint}`, {
      method: 'POST',
      body: new URLSearchParams({ ...extra, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion }),
    });
    assert.equal((await tokenWith(await ehrAssertion(wrongKey))).status, 401);
    await recorded('client-auth-failed', { who: ehr.clientId, app: ehr.clientId, success: false, why: /token/ });
    assert.equal((await tokenWith(await ehrAssertion(wrongKey, 'no-such-client'))).status, 401);
    const unknown = await recorded('client-auth-failed', { success: false, why: /token/, who: 'unknown-client:no-such-client' });
    assert.equal(unknown.app, undefined, 'an unknown client is no app');
    const introspection = await tokenWith(await ehrAssertion(wrongKey, ehr.clientId, `${t.issuer}/token/introspection`), 'token/introspection', { token: 'whatever' });
    assert.equal(introspection.status, 401);
    await recorded('client-auth-failed', { who: ehr.clientId, success: false, why: /introspection/ });
  });
});

describe('launch, break-the-glass, sign-out and sessions', () => {
  before(setup);

  test('an EHR creates a launch: recorded with the patient it is about, not the launch value', async () => {
    const res = await fetch(`${t.issuer}/launch`, {
      method: 'POST', body: JSON.stringify({ patient: patId }), headers: { 'content-type': 'application/json', authorization: `Bearer ${await ehrToken()}` },
    });
    assert.equal(res.status, 201);
    secrets.add(((await res.json()) as { launch: string }).launch);
    await recorded('launch-created', { who: ehr.clientId, app: ehr.clientId, why: new RegExp(`patient=Patient/${patId}`) });
  });

  test('break-the-glass: granted with its reason and marked BTG; refused too', async () => {
    const s = await startSignIn('drbtg', { scope: 'openid fhirUser user/*.rs' });
    await s.browser.submit('/totp', { code: await totp() }, origin());
    const { tokens } = await approveAndRedeem(s);
    const auth = { authorization: `Bearer ${tokens.access_token}` };
    const refused = await call(`${t.base}/Patient/${strangerId}`, { headers: { ...auth, 'x-break-glass-patient': strangerId, 'x-break-glass-reason': 'urgent' } });
    assert.equal(refused.status, 403);
    await recorded('break-glass-refused', { who: users.drbtg, app: app.client_id, success: false, why: /severity=high.*reason=urgent/ });
    const reason = 'unconscious in the ED, no relationship on file';
    const opened = await call(`${t.base}/Patient/${strangerId}`, { headers: { ...auth, 'x-break-glass-patient': strangerId, 'x-break-glass-reason': reason } });
    assert.equal(opened.status, 200);
    const facts = await recorded('break-glass', { who: users.drbtg, app: app.client_id, why: new RegExp(`severity=high.*patient=Patient/${strangerId}.*reason=${reason}`) });
    const event = renderAuditEvent(facts) as { agent: { purposeOfUse?: { coding: { code: string }[] }[] }[] };
    assert.ok(event.agent[0].purposeOfUse?.some((p) => p.coding.some((c) => c.code === 'BTG')), 'the AuditEvent states purpose of use BTG');
  });

  test('a sign-out is recorded, and that session does not later count as expired', async () => {
    // The browser that signed in holds the session cookie the sign-out ends.
    const b = await startSignIn('bye');
    await approveAndRedeem(b);
    await b.browser.open(`${t.issuer}/session/end`, origin());
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(b.browser.html)?.[1];
    assert.ok(xsrf, b.browser.html.slice(0, 400));
    const res = await b.browser.post(`${t.issuer}/session/end/confirm`, new URLSearchParams({ xsrf, logout: 'yes' }));
    assert.equal(res.status, 303);
    await recorded('logout', { who: users.bye, why: /session ended/ });
  });

  test('a session left idle past its limit is recorded as expired, for its user', async () => {
    await approveAndRedeem(await startSignIn('idler'));
    await eventually('session-expired', { who: users.idler, why: /idle/ });
    // By now the session signed out of above would have expired too, had the sign-out not ended it.
    const all = await authEvents();
    const byeLogout = matching(all, 'logout', { who: users.bye }).at(-1);
    if (byeLogout) assert.ok(!all.some((f) => f.ev === 'session-expired' && f.who === users.bye && f.at > byeLogout.at), 'a session ended by sign-out does not expire later');
  });
});

describe('administration', () => {
  before(setup);
  let adminToken = '';

  test('an admin creates a user and registers a client through the API: who, through which app, and what', async () => {
    const s = await startSignIn('boss', { client: consoleApp, scope: 'openid bastion/admin' });
    await s.browser.submit('/totp', { code: await totp() }, origin());
    adminToken = (await approveAndRedeem(s)).tokens.access_token;
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${adminToken}` };
    const created = await fetch(`${t.issuer}/admin/users`, { method: 'POST', headers, body: JSON.stringify({ username: 'hired', role: 'nurse' }) });
    assert.equal(created.status, 201);
    const user = (await created.json()) as { id: string; oneTimePassword: string };
    secrets.add(user.oneTimePassword);
    await recorded('user-created', { who: users.boss, app: consoleApp.client_id, why: new RegExp(`user=${user.id} role=nurse`) });
    const registered = await fetch(`${t.issuer}/admin/clients`, {
      method: 'POST', headers, body: JSON.stringify({ name: 'Registered by API', type: 'confidential', scope: 'openid patient/*.rs', redirectUris: [redirectUri] }),
    });
    assert.equal(registered.status, 201);
    const client = (await registered.json()) as { clientId: string; clientSecret: string };
    secrets.add(client.clientSecret);
    await recorded('client-registered', { who: users.boss, app: consoleApp.client_id, why: new RegExp(`client=${client.clientId} type=confidential`) });
    // The new user's one-time password is changed at first sign-in.
    const newPassword = 'the password hired chose';
    secrets.add(newPassword);
    const first = await startSignIn('hired', { password: user.oneTimePassword, scope: 'openid user/*.rs' });
    await first.browser.submit('/password', { password: newPassword, confirm: newPassword }, origin());
    await recorded('password-changed', { who: user.id, app: app.client_id });
  });

  test('provisioning by someone who is not an admin is refused and recorded', async () => {
    const { tokens } = await approveAndRedeem(await startSignIn('pat'));
    const res = await fetch(`${t.issuer}/admin/users`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens.access_token}` }, body: JSON.stringify({ username: 'sneaky', role: 'admin' }) });
    assert.equal(res.status, 403);
    await recorded('authorization-refused', { who: users.pat, app: app.client_id, success: false, why: /provisioning/ });
  });

  test('the console (bastion users add / clients add) while the server runs: recorded as the console, handed over to the server', async () => {
    const { stdout } = await run(process.execPath, [bin, 'users', 'add', '--username', 'cliwhilerunning', '--role', 'nurse', '--data-dir', t.dataDir]);
    const oneTime = /one-time password[^:]*: (\S+)/.exec(stdout)![1];
    secrets.add(oneTime);
    const id = /, id (\S+)/.exec(stdout)![1];
    await eventually('user-created', { who: 'console', why: new RegExp(`user=${id} role=nurse`) });
    const out = await run(process.execPath, [bin, 'clients', 'add', '--name', 'Console app', '--type', 'confidential', '--redirect-uri', redirectUri, '--scope', 'openid patient/*.rs', '--data-dir', t.dataDir]);
    secrets.add(/client_secret[^:]*: (\S+)/.exec(out.stdout)![1]);
    const clientId = /client_id: (\S+)/.exec(out.stdout)![1];
    await eventually('client-registered', { who: 'console', why: new RegExp(`client=${clientId} type=confidential`) });
  });
});

describe('the console with the server stopped', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bastion-cli-audit-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('bastion users add and clients add append their records to the trail themselves', async () => {
    const pw = join(dir, 'pw.txt');
    const cliPassword = 'a console user password';
    writeFileSync(pw, `${cliPassword}\n`);
    const { stdout } = await run(process.execPath, [bin, 'users', 'add', '--username', 'offline', '--role', 'physician', '--password-file', pw, '--data-dir', dir]);
    const id = /, id (\S+)/.exec(stdout)![1];
    const out = await run(process.execPath, [bin, 'clients', 'add', '--name', 'Offline app', '--type', 'confidential', '--redirect-uri', redirectUri, '--scope', 'openid patient/*.rs', '--data-dir', dir]);
    const secret = /client_secret[^:]*: (\S+)/.exec(out.stdout)![1];
    const clientId = /client_id: (\S+)/.exec(out.stdout)![1];
    const events = (await auditEventsIn(dir)) as { subtype: { system: string; code: string }[]; agent: { altId?: string }[]; outcomeDesc?: string; outcome: string }[];
    const of = (kind: string) => events.filter((e) => e.subtype.some((c) => c.system === authEventSystem && c.code === kind));
    const user = of('user-created').find((e) => e.agent[0].altId === 'console' && new RegExp(`user=${id} role=physician`).test(e.outcomeDesc ?? ''));
    assert.ok(user, JSON.stringify(events));
    assert.equal(user.outcome, '0');
    assert.ok(of('client-registered').some((e) => e.agent[0].altId === 'console' && (e.outcomeDesc ?? '').includes(`client=${clientId}`)));
    const all = JSON.stringify(events);
    assert.ok(!all.includes(cliPassword) && !all.includes(secret), 'no password or client secret in the trail');
  });
});

describe('what the records leave out', () => {
  before(setup);
  test('no audit record holds a password, code, secret, assertion, launch value or token used above', async () => {
    await t.server.app.audit.flush();
    const records = await t.server.store.auditRecords({ afterSeq: 0, limit: 1_000_000 });
    const all = records.map((r) => r.json).join('\n');
    assert.ok(secrets.size > 20, `the tests above noted their secrets (${secrets.size})`);
    for (const secret of secrets) assert.ok(!all.includes(secret), `a secret (${secret.slice(0, 4)}...) is in the audit trail`);
    const withoutIds = all.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '');
    for (const code of codes) assert.doesNotMatch(withoutIds, new RegExp(`(?<![0-9A-Za-z_-])${code}(?![0-9A-Za-z_-])`), 'a TOTP code is in the audit trail');
  });
});
