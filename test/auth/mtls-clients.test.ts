import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { hash, X509Certificate } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { registerClient, ClientRegistrationError } from '../../src/auth/clients.ts';
import { openssl, type KeyAndCert } from '../pki.ts';
import { useSmartServer } from './smart-server.ts';

// RFC 8705: backend clients that authenticate with their TLS client certificate, and access tokens bound to it.
const pkiDir = mkdtempSync(join(tmpdir(), 'bastion-mtls-pki-'));
const pki = openssl(pkiDir);
const ca = pki.ca('site-ca');
pki.ca('rogue-ca');
pki.leaf('server', 'site-ca', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth');
const labFeed = pki.leaf('lab-feed', 'site-ca', 'extendedKeyUsage=clientAuth', '/O=Example Lab/CN=lab-feed');
const otherClient = pki.leaf('pharmacy', 'site-ca', 'extendedKeyUsage=clientAuth', '/O=Example Lab/CN=pharmacy');
const impostor = pki.leaf('impostor', 'rogue-ca', 'extendedKeyUsage=clientAuth', '/O=Example Lab/CN=lab-feed');
const selfSigned = pki.selfSigned('device-gateway');
const otherSelfSigned = pki.selfSigned('device-gateway-2');
after(() => rmSync(pkiDir, { recursive: true, force: true }));

const t = useSmartServer({
  BASTION_TLS: 'on',
  BASTION_TLS_CERT: join(pkiDir, 'server.crt'),
  BASTION_TLS_KEY: join(pkiDir, 'server.key'),
  BASTION_TLS_CLIENT_CA: join(pkiDir, 'site-ca.crt'),
});

interface Answer {
  status: number;
  body: Record<string, unknown>;
  headers: Record<string, string | string[] | undefined>;
}

/** An HTTPS request presenting `identity` as the client certificate (or none). */
function send(url: string, identity: KeyAndCert | undefined, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { method: init.method ?? 'GET', headers: init.headers, ca, ...(identity ?? {}), agent: false }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, body: text ? JSON.parse(text) as Record<string, unknown> : {}, headers: res.headers }));
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

function tokenRequest(clientId: string, identity: KeyAndCert | undefined): Promise<Answer> {
  const body = new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, scope: 'system/Patient.rs' }).toString();
  return send(`${t.issuer}/token`, identity, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
}

const thumbprint = (identity: KeyAndCert) => hash('sha256', new X509Certificate(identity.cert).raw, 'base64url');

describe('tls_client_auth: a certificate from the configured CAs with the registered subject', () => {
  test('the client gets a token bound to its certificate, usable only over a connection presenting it', async () => {
    const { clientId } = await registerClient(t.authStore, { name: 'Lab feed', type: 'backend', scope: 'system/Patient.rs', tlsSubjectDn: 'CN=lab-feed, O=Example Lab' });
    const issued = await tokenRequest(clientId, labFeed);
    assert.equal(issued.status, 200, JSON.stringify(issued.body));
    const token = issued.body.access_token as string;
    assert.deepEqual(decodeJwt(token).cnf, { 'x5t#S256': thumbprint(labFeed) });
    const auth = { authorization: `Bearer ${token}` };
    assert.equal((await send(`${t.base}/Patient?_count=1`, labFeed, { headers: auth })).status, 200);
    const bare = await send(`${t.base}/Patient?_count=1`, undefined, { headers: auth });
    assert.equal(bare.status, 401, 'a bound token without the certificate');
    assert.match(String(bare.headers['www-authenticate']), /invalid_token/);
    assert.equal((await send(`${t.base}/Patient?_count=1`, otherClient, { headers: auth })).status, 401, 'a bound token over another client\'s certificate');
  });

  test('no certificate, a certificate from another CA with the same subject, or another subject: invalid_client', async () => {
    const { clientId } = await registerClient(t.authStore, { name: 'Lab feed 2', type: 'backend', scope: 'system/Patient.rs', tlsSubjectDn: 'CN=lab-feed,O=Example Lab' });
    for (const [identity, why] of [[undefined, 'none'], [impostor, 'untrusted CA'], [otherClient, 'other subject']] as const) {
      const refused = await tokenRequest(clientId, identity);
      assert.equal(refused.status, 401, why);
      assert.equal(refused.body.error, 'invalid_client', why);
      assert.equal(refused.body.access_token, undefined, why);
    }
  });
});

describe('self_signed_tls_client_auth: the registered certificate itself', () => {
  test('the registered certificate gets a bound token; another self-signed one is refused', async () => {
    const { clientId } = await registerClient(t.authStore, { name: 'Device gateway', type: 'backend', scope: 'system/Patient.rs', certificate: selfSigned.cert.toString() });
    const issued = await tokenRequest(clientId, selfSigned);
    assert.equal(issued.status, 200, JSON.stringify(issued.body));
    assert.deepEqual(decodeJwt(issued.body.access_token as string).cnf, { 'x5t#S256': thumbprint(selfSigned) });
    assert.equal((await send(`${t.base}/Patient?_count=1`, selfSigned, { headers: { authorization: `Bearer ${issued.body.access_token as string}` } })).status, 200);
    const other = await tokenRequest(clientId, otherSelfSigned);
    assert.equal(other.status, 401);
    assert.equal(other.body.error, 'invalid_client');
    assert.equal((await tokenRequest(clientId, undefined)).body.error, 'invalid_client');
  });

  test('registration refuses what is not one client certificate, and mixing authentication methods', async () => {
    await assert.rejects(registerClient(t.authStore, { name: 'x', type: 'backend', scope: 'system/Patient.rs', certificate: 'not a pem' }), ClientRegistrationError);
    await assert.rejects(registerClient(t.authStore, { name: 'x', type: 'backend', scope: 'system/Patient.rs', certificate: ca.toString() }), /not a CA/);
    await assert.rejects(registerClient(t.authStore, { name: 'x', type: 'backend', scope: 'system/Patient.rs', tlsSubjectDn: 'lab-feed' }), /distinguished name/);
    await assert.rejects(registerClient(t.authStore, { name: 'x', type: 'backend', scope: 'system/Patient.rs', tlsSubjectDn: 'CN=a', certificate: selfSigned.cert.toString() }), /one way to authenticate/);
  });
});

test('discovery names the certificate methods and bound tokens', async () => {
  const smart = await send(`${t.base}/.well-known/smart-configuration`, undefined);
  assert.equal(smart.status, 200);
  assert.ok((smart.body.token_endpoint_auth_methods_supported as string[]).includes('tls_client_auth'));
  assert.ok((smart.body.token_endpoint_auth_methods_supported as string[]).includes('self_signed_tls_client_auth'));
  assert.equal(smart.body.tls_client_certificate_bound_access_tokens, true);
});
