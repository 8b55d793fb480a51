import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as oauth from 'oauth4webapi';
import { registerClient } from '../../src/auth/clients.ts';
import { addUser } from '../../src/auth/users.ts';
import { useSmartServer } from './smart-server.ts';
import { Browser } from './browser.ts';
import { patient } from '../rest/server.ts';

/** Confidential symmetric clients (client_secret_basic and client_secret_post), and the role ceiling on scopes. */
const t = useSmartServer();
const insecure = { [oauth.allowInsecureRequests]: true };
const redirectUri = 'https://portal.example/callback';
const password = 'portal user password';
let as: oauth.AuthorizationServer;

describe('confidential clients', () => {
  const clients: Record<string, { client: oauth.Client; secret: string }> = {};
  before(async () => {
    const issuer = new URL(t.issuer);
    as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...insecure }));
    for (const method of ['client_secret_basic', 'client_secret_post'] as const) {
      const r = await registerClient(t.authStore, {
        name: `Portal ${method}`, type: 'confidential', redirectUris: [redirectUri], secretMethod: method,
        scope: 'openid launch/patient patient/*.rs user/*.rs',
      });
      clients[method] = { client: { client_id: r.clientId }, secret: r.clientSecret! };
    }
    const id = (await t.server.store.transaction((tx) => tx.create({ ...patient('Portalpat'), id: crypto.randomUUID() }))).id;
    await addUser(t.authStore, { username: 'portal', role: 'patient', fhirUser: `Patient/${id}`, password });
  });

  async function signIn(clientId: string, scope: string, pkce: boolean) {
    const verifier = oauth.generateRandomCodeVerifier();
    const url = new URL(as.authorization_endpoint!);
    const params: Record<string, string> = { client_id: clientId, redirect_uri: redirectUri, response_type: 'code', state: 'st', aud: t.base, scope };
    if (pkce) Object.assign(params, { code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    const browser = new Browser();
    const origin = new URL(t.issuer).origin;
    await browser.open(url.toString(), origin);
    await browser.submit('/login', { username: 'portal', password }, origin);
    const offered = browser.html;
    const callback = await browser.submit('/consent', { decision: 'allow', scope: browser.checkboxes() }, origin);
    return { callback: callback!, verifier, offered };
  }

  for (const method of ['client_secret_basic', 'client_secret_post'] as const) {
    test(`${method}: code exchanged with the secret (PKCE optional); a wrong secret is invalid_client`, async () => {
      const { client, secret } = clients[method];
      const auth = method === 'client_secret_basic' ? oauth.ClientSecretBasic(secret) : oauth.ClientSecretPost(secret);
      const { callback } = await signIn(client.client_id, 'openid launch/patient patient/*.rs', false);
      const params = oauth.validateAuthResponse(as, client, new URL(callback), 'st');
      const wrongAuth = method === 'client_secret_basic' ? oauth.ClientSecretBasic('not-the-secret') : oauth.ClientSecretPost('not-the-secret');
      const wrong = await oauth.authorizationCodeGrantRequest(as, client, wrongAuth, params, redirectUri, oauth.nopkce, insecure);
      assert.equal(wrong.status, 401);
      assert.equal(((await wrong.json()) as { error: string }).error, 'invalid_client');
      const { callback: again } = await signIn(client.client_id, 'openid launch/patient patient/*.rs', false);
      const ok = await oauth.authorizationCodeGrantRequest(as, client, auth, oauth.validateAuthResponse(as, client, new URL(again), 'st'), redirectUri, oauth.nopkce, insecure);
      const tokens = await oauth.processAuthorizationCodeResponse(as, client, ok);
      assert.ok(tokens.access_token);
      assert.ok(tokens.patient);
    });
  }

  test('a patient is never granted user/ scopes, whatever the app asks and is registered for', async () => {
    const { client, secret } = clients.client_secret_basic;
    const { callback, verifier, offered } = await signIn(client.client_id, 'openid launch/patient patient/*.rs user/*.rs', true);
    assert.match(offered, /user\/\*\.rs<\/code>: not available/);
    const tokens = await oauth.processAuthorizationCodeResponse(as, client,
      await oauth.authorizationCodeGrantRequest(as, client, oauth.ClientSecretBasic(secret), oauth.validateAuthResponse(as, client, new URL(callback), 'st'), redirectUri, verifier, insecure));
    assert.ok(!tokens.scope?.split(' ').includes('user/*.rs'), `granted ${tokens.scope}`);
    assert.ok(tokens.scope?.split(' ').includes('patient/*.rs'));
  });

  test('launch and identity scopes too only as registered: no offline_access, no refresh token', async () => {
    const { client, secret } = clients.client_secret_basic;
    const { callback, verifier } = await signIn(client.client_id, 'openid launch/patient patient/*.rs offline_access', true);
    const tokens = await oauth.processAuthorizationCodeResponse(as, client,
      await oauth.authorizationCodeGrantRequest(as, client, oauth.ClientSecretBasic(secret), oauth.validateAuthResponse(as, client, new URL(callback), 'st'), redirectUri, verifier, insecure));
    assert.equal(tokens.refresh_token, undefined);
    assert.ok(!tokens.scope?.includes('offline_access'));
  });

  test('a forged approval listing a scope that was not offered does not grant it', async () => {
    const { client, secret } = clients.client_secret_basic;
    const verifier = oauth.generateRandomCodeVerifier();
    const url = new URL(as.authorization_endpoint!);
    for (const [k, v] of Object.entries({
      client_id: client.client_id, redirect_uri: redirectUri, response_type: 'code', state: 'st', aud: t.base, scope: 'openid launch/patient patient/*.rs user/*.rs',
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    })) url.searchParams.set(k, v);
    const browser = new Browser();
    const origin = new URL(t.issuer).origin;
    await browser.open(url.toString(), origin);
    await browser.submit('/login', { username: 'portal', password }, origin);
    const callback = await browser.submit('/consent', { decision: 'allow', scope: [...browser.checkboxes(), 'user/*.rs', 'system/*.cruds'] }, origin);
    const tokens = await oauth.processAuthorizationCodeResponse(as, client,
      await oauth.authorizationCodeGrantRequest(as, client, oauth.ClientSecretBasic(secret), oauth.validateAuthResponse(as, client, new URL(callback!), 'st'), redirectUri, verifier, insecure));
    assert.deepEqual(tokens.scope?.split(' ').filter((s) => s.includes('/*')).sort(), ['patient/*.rs']);
  });
});
