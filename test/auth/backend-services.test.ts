import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as oauth from 'oauth4webapi';
import { SignJWT, exportJWK, generateKeyPair, decodeJwt } from 'jose';
import { registerClient } from '../../src/auth/clients.ts';
import { useSmartServer } from './smart-server.ts';
import { call, patient } from '../rest/server.ts';

/** SMART Backend Services against a running server, driven by oauth4webapi (a certified-grade OAuth client). */
const t = useSmartServer();
const insecure = { [oauth.allowInsecureRequests]: true };

async function backendClient(alg: 'RS384' | 'ES384', scope: string) {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  const kid = `${alg}-${crypto.randomUUID()}`;
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  const { clientId } = await registerClient(t.authStore, { name: `backend ${alg}`, type: 'backend', jwks: { keys: [jwk] }, scope });
  return { clientId, privateKey, kid, auth: oauth.PrivateKeyJwt({ key: privateKey, kid }) };
}

async function discover(): Promise<oauth.AuthorizationServer> {
  const issuer = new URL(t.issuer);
  return oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...insecure }));
}

async function tokenFor(client: Awaited<ReturnType<typeof backendClient>>, scope: string) {
  const as = await discover();
  const response = await oauth.clientCredentialsGrantRequest(as, { client_id: client.clientId }, client.auth, new URLSearchParams({ scope }), insecure);
  return oauth.processClientCredentialsResponse(as, { client_id: client.clientId }, response);
}

/** A hand-made assertion, for the deny paths a well-behaved client library will not produce. */
async function assertion(client: Awaited<ReturnType<typeof backendClient>>, alg: string, claims: { exp?: number; jti?: string; aud?: string } = {}) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg, kid: client.kid })
    .setIssuer(client.clientId).setSubject(client.clientId)
    .setAudience(claims.aud ?? `${t.issuer}/token`)
    .setIssuedAt(now).setExpirationTime(claims.exp ?? now + 60)
    .setJti(claims.jti ?? crypto.randomUUID())
    .sign(client.privateKey);
}

async function rawToken(clientAssertion: string, scope = 'system/*.rs') {
  const body = new URLSearchParams({
    grant_type: 'client_credentials', scope,
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: clientAssertion,
  });
  const res = await fetch(`${t.issuer}/token`, { method: 'POST', body });
  return { status: res.status, body: (await res.json()) as Record<string, string> };
}

describe('discovery', () => {
  test('smart-configuration, OpenID configuration, JWKS and the CapabilityStatement agree', async () => {
    const smart = await call(`${t.base}/.well-known/smart-configuration`);
    assert.equal(smart.status, 200);
    assert.equal(smart.body.issuer, t.issuer);
    assert.deepEqual(smart.body.code_challenge_methods_supported, ['S256']);
    for (const c of ['launch-standalone', 'client-confidential-asymmetric', 'permission-v2', 'sso-openid-connect']) assert.ok(smart.body.capabilities.includes(c), c);
    const oidc = await call(`${t.issuer}/.well-known/openid-configuration`);
    assert.equal(oidc.body.issuer, t.issuer);
    assert.equal(oidc.body.token_endpoint, smart.body.token_endpoint);
    assert.equal(oidc.body.authorization_endpoint, smart.body.authorization_endpoint);
    assert.equal(oidc.body.jwks_uri, smart.body.jwks_uri);
    const jwks = await call(smart.body.jwks_uri);
    assert.ok(jwks.body.keys.length >= 1);
    for (const k of jwks.body.keys) assert.equal(k.d, undefined, 'no private key material is published');
    const cap = await call(`${t.base}/metadata`);
    const security = cap.body.rest[0].security;
    assert.equal(security.service[0].coding[0].code, 'SMART-on-FHIR');
    const uris = Object.fromEntries(security.extension[0].extension.map((e: { url: string; valueUri: string }) => [e.url, e.valueUri]));
    assert.equal(uris.token, smart.body.token_endpoint);
    assert.equal(uris.authorize, smart.body.authorization_endpoint);
  });

  test('a forged Host header does not change the advertised endpoints', async () => {
    const { request } = await import('node:http');
    const url = new URL(`${t.issuer}/.well-known/openid-configuration`);
    const body = await new Promise<string>((resolve, reject) => {
      request({ host: url.hostname, port: url.port, path: url.pathname, headers: { host: 'evil.example:1234' } }, (res) => {
        let s = '';
        res.on('data', (c) => (s += c));
        res.on('end', () => resolve(s));
      }).on('error', reject).end();
    });
    assert.doesNotMatch(body, /evil\.example/);
  });
});

describe('client_credentials with private_key_jwt', () => {
  let rs: Awaited<ReturnType<typeof backendClient>>;
  let es: Awaited<ReturnType<typeof backendClient>>;
  before(async () => {
    rs = await backendClient('RS384', 'system/*.cruds');
    es = await backendClient('ES384', 'system/Patient.rs system/Observation.rs');
  });

  test('RS384 and ES384 assertions get a JWT access token for the FHIR base that the API accepts', async () => {
    const token = await tokenFor(rs, 'system/*.cruds');
    assert.equal(token.token_type.toLowerCase(), 'bearer');
    assert.ok(token.expires_in && token.expires_in <= 900);
    const claims = decodeJwt(token.access_token);
    assert.equal(claims.aud, t.base);
    assert.equal(claims.iss, t.issuer);
    assert.equal(claims.client_id, rs.clientId);
    const created = await call(`${t.base}/Patient`, { method: 'POST', headers: { authorization: `Bearer ${token.access_token}` }, json: patient('Backend') });
    assert.equal(created.status, 201, created.text);
    const esToken = await tokenFor(es, 'system/Patient.rs');
    assert.equal(esToken.scope, 'system/Patient.rs');
    const read = await call(`${t.base}/Patient/${created.body.id}`, { headers: { authorization: `Bearer ${esToken.access_token}` } });
    assert.equal(read.status, 200);
  });

  test('scopes beyond the registration are not granted; none at all is invalid_scope', async () => {
    const token = await tokenFor(es, 'system/*.cruds system/Observation.rs');
    assert.deepEqual(token.scope?.split(' '), ['system/Observation.rs'], 'system/*.cruds exceeds the registration and is not granted');
    const write = await call(`${t.base}/Patient`, { method: 'POST', headers: { authorization: `Bearer ${token.access_token}` }, json: patient('Escalate') });
    assert.equal(write.status, 403);
    const none = await rawToken(await assertion(es, 'ES384'), 'system/Condition.rs');
    assert.equal(none.status, 400);
    assert.equal(none.body.error, 'invalid_scope');
  });

  test('a replayed assertion (same jti), one living over five minutes, a wrong key or audience are refused', async () => {
    const once = await assertion(rs, 'RS384');
    assert.equal((await rawToken(once)).status, 200);
    const replay = await rawToken(once);
    assert.equal(replay.status, 401);
    assert.equal(replay.body.error, 'invalid_client');
    const long = await rawToken(await assertion(rs, 'RS384', { exp: Math.floor(Date.now() / 1000) + 600 }));
    assert.equal(long.status, 401);
    const other = await backendClient('RS384', 'system/*.rs');
    const wrongKey = await rawToken(await assertion({ ...rs, privateKey: other.privateKey }, 'RS384'));
    assert.equal(wrongKey.status, 401);
    const wrongAud = await rawToken(await assertion(rs, 'RS384', { aud: 'https://elsewhere.example/token' }));
    assert.equal(wrongAud.status, 401);
  });

  test('introspection and revocation of an access token by its client; a revoked token is refused by the API', async () => {
    const as = await discover();
    const token = await tokenFor(rs, 'system/Patient.rs');
    const client = { client_id: rs.clientId };
    const active = await oauth.processIntrospectionResponse(as, client, await oauth.introspectionRequest(as, client, rs.auth, token.access_token, insecure));
    assert.equal(active.active, true);
    assert.equal(active.client_id, rs.clientId);
    // Another client may neither see nor revoke it.
    const otherView = await oauth.processIntrospectionResponse(as, { client_id: es.clientId }, await oauth.introspectionRequest(as, { client_id: es.clientId }, es.auth, token.access_token, insecure));
    assert.equal(otherView.active, false);
    await oauth.processRevocationResponse(await oauth.revocationRequest(as, { client_id: es.clientId }, es.auth, token.access_token, insecure));
    assert.equal((await call(`${t.base}/Patient`, { headers: { authorization: `Bearer ${token.access_token}` } })).status, 200);
    await oauth.processRevocationResponse(await oauth.revocationRequest(as, client, rs.auth, token.access_token, insecure));
    const after = await oauth.processIntrospectionResponse(as, client, await oauth.introspectionRequest(as, client, rs.auth, token.access_token, insecure));
    assert.equal(after.active, false);
    const refused = await call(`${t.base}/Patient`, { headers: { authorization: `Bearer ${token.access_token}` } });
    assert.equal(refused.status, 401);
  });
});
