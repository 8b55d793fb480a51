import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { request as httpsRequest } from 'node:https';
import { connect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/config.ts';
import { startServer, type Server } from '../../src/main.ts';
import { openssl, type KeyAndCert } from '../pki.ts';

interface Handshake {
  ok: boolean;
  protocol?: string | null;
  peer?: string;
  error?: string;
}

/** A TLS handshake to the server, then an HTTP/1.1 GET on it when it succeeds. */
function handshake(url: string, options: ConnectionOptions): Promise<Handshake & { status?: number; body?: string }> {
  const { hostname, port, pathname } = new URL(url);
  return new Promise((resolve) => {
    const socket: TLSSocket = connect({ host: hostname, port: Number(port), servername: undefined, ...options }, () => {
      const protocol = socket.getProtocol();
      const peer = socket.getPeerX509Certificate()?.fingerprint256;
      socket.write(`GET ${pathname} HTTP/1.1\r\nhost: ${hostname}\r\nconnection: close\r\n\r\n`);
      let text = '';
      socket.on('data', (d) => (text += d));
      socket.on('end', () => {
        const status = /^HTTP\/1\.1 (\d+)/.exec(text)?.[1];
        resolve(status ? { ok: true, protocol, peer, status: Number(status), body: text } : { ok: false, protocol, peer, error: 'closed without an answer' });
      });
      // TLS 1.3 reports a refused client certificate only after the handshake, as an alert on the first read.
      socket.on('error', (err) => resolve({ ok: false, protocol, error: err.message }));
    });
    socket.on('error', (err) => resolve({ ok: false, error: err.message }));
  });
}

async function start(dataDir: string, env: Record<string, string>): Promise<Server> {
  return startServer(loadConfig({ port: 0, dataDir }, { BASTION_AUTH: 'off', ...env }));
}

describe('HTTPS by default', () => {
  let dir: string;
  let server: Server;
  let ca: Buffer;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bastion-tls-'));
    server = await start(join(dir, 'data'), {});
    ca = readFileSync(join(dir, 'data', 'tls-dev-cert.pem'));
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the first start makes a development certificate for loopback and serves HTTPS with TLS 1.3 and HSTS', async () => {
    assert.match(server.baseUrl, /^https:\/\/127\.0\.0\.1:\d+\/fhir$/);
    const cert = new X509Certificate(ca);
    assert.ok(cert.checkIP('127.0.0.1') && cert.checkHost('localhost'));
    const res = await new Promise<{ status: number; hsts?: string; protocol: string | null }>((resolve, reject) => {
      httpsRequest(`${server.baseUrl}/metadata`, { ca }, (r) => {
        const protocol = (r.socket as TLSSocket).getProtocol();
        r.resume();
        r.on('end', () => resolve({ status: r.statusCode!, hsts: r.headers['strict-transport-security'] as string, protocol }));
      }).on('error', reject).end();
    });
    assert.deepEqual(res, { status: 200, hsts: 'max-age=31536000', protocol: 'TLSv1.3' });
  });

  test('a TLS 1.2 client is refused (node tls and openssl s_client -tls1_2)', async () => {
    const old = await handshake(server.baseUrl, { ca, maxVersion: 'TLSv1.2' });
    assert.equal(old.ok, false);
    assert.match(old.error!, /protocol version|alert/i);
    const port = new URL(server.baseUrl).port;
    const s = await sClient(port, '-tls1_2');
    assert.notEqual(s.status, 0);
    assert.match(s.output, /alert protocol version|no protocols available|handshake failure/i);
    const now = await sClient(port, '-tls1_3');
    assert.equal(now.status, 0);
    assert.match(now.output, /TLSv1\.3/);
    assert.match(now.output, /Verify return code: 0 \(ok\)/, 'the development certificate verifies when pinned');
  });

  /** `openssl s_client` run asynchronously: the server answering it lives in this process. */
  function sClient(port: string, version: string): Promise<{ status: number | null; output: string }> {
    return new Promise((resolve) => {
      const child = spawn('/usr/bin/openssl', ['s_client', '-connect', `127.0.0.1:${port}`, version, '-CAfile', join(dir, 'data', 'tls-dev-cert.pem')]);
      let output = '';
      child.stdout.on('data', (d) => (output += d));
      child.stderr.on('data', (d) => (output += d));
      child.stdin.end();
      child.on('close', (status) => resolve({ status, output }));
    });
  }

  test('plain HTTP to the HTTPS port is not served', async () => {
    const res = await fetch(server.baseUrl.replace('https:', 'http:') + '/metadata').then((r) => r.status, (e: Error) => e.message);
    assert.ok(res !== 200, `plain HTTP answered ${res}`);
  });

  test('the development certificate is kept across restarts', async () => {
    const again = await start(join(dir, 'data'), {});
    try {
      assert.equal(readFileSync(join(dir, 'data', 'tls-dev-cert.pem')).toString(), ca.toString());
    } finally {
      await again.close();
    }
  });
});

describe('TLS settings', () => {
  test('TLS 1.2 only when lowered explicitly, never below; plain HTTP only on loopback or behind a named proxy', () => {
    assert.equal(loadConfig({}, {}).transport.mode, 'on');
    const lowered = loadConfig({}, { BASTION_TLS_MIN_VERSION: '1.2' }).transport;
    assert.equal(lowered.mode === 'on' && lowered.minVersion, 'TLSv1.2');
    for (const v of ['1.1', '1.0', 'TLSv1.1', 'SSLv3', 'any']) {
      assert.throws(() => loadConfig({}, { BASTION_TLS_MIN_VERSION: v }), (e: unknown) => e instanceof ConfigError && /1\.3 or 1\.2/.test(e.message), v);
    }
    assert.throws(() => loadConfig({}, { BASTION_TLS: 'off', BASTION_HOST: '0.0.0.0' }), /only loopback/);
    assert.throws(() => loadConfig({}, { BASTION_TLS: 'off', BASTION_HOST: '10.1.2.3' }), /only loopback/);
    assert.equal(loadConfig({}, { BASTION_TLS: 'off' }).baseUrl, 'http://127.0.0.1:8080/fhir');
    assert.throws(() => loadConfig({}, { BASTION_TLS: 'proxy', BASTION_HOST: '0.0.0.0', BASTION_BASE_URL: 'https://fhir.example.org/fhir' }), /trustProxy/);
    assert.throws(() => loadConfig({}, { BASTION_TLS: 'proxy', BASTION_HOST: '0.0.0.0', BASTION_TRUST_PROXY: '10.0.0.2' }), /https URL/);
    assert.throws(() => loadConfig({}, { BASTION_TLS: 'proxy', BASTION_TRUST_PROXY: 'proxy.local', BASTION_BASE_URL: 'https://x.example/fhir' }), /not an IP/);
    const proxied = loadConfig({}, { BASTION_TLS: 'proxy', BASTION_HOST: '0.0.0.0', BASTION_TRUST_PROXY: '10.0.0.2, 10.0.1.0/24', BASTION_BASE_URL: 'https://fhir.example.org/fhir' });
    assert.deepEqual(proxied.transport, { mode: 'proxy', trustProxy: ['10.0.0.2', '10.0.1.0/24'] });
    assert.throws(() => loadConfig({}, { BASTION_TLS: 'plain' }), /on, proxy or off/);
    assert.throws(() => loadConfig({}, { BASTION_TLS: 'off', BASTION_TLS_CERT: '/c.pem' }), /needs tls=on/);
    assert.throws(() => loadConfig({}, { BASTION_TLS_CERT: '/c.pem' }), /go together/);
    assert.throws(() => loadConfig({}, { BASTION_TLS_CLIENT_CERTIFICATES: 'required' }), /needs tlsClientCa/);
    assert.throws(() => loadConfig({}, { BASTION_TLS_CLIENT_CERTIFICATES: 'optional' }), /needs tlsClientCa/);
    assert.throws(() => loadConfig({}, { BASTION_TLS_CLIENT_CERTIFICATES: 'sometimes', BASTION_TLS_CLIENT_CA: '/ca.pem' }), /off, optional or required/);
  });

  test('a missing or unreadable certificate stops the start with a clear error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bastion-tls-bad-'));
    try {
      writeFileSync(join(dir, 'garbage.pem'), 'not a certificate');
      await assert.rejects(start(join(dir, 'data'), { BASTION_TLS_CERT: join(dir, 'missing.pem'), BASTION_TLS_KEY: join(dir, 'missing.key') }), (e: unknown) => e instanceof ConfigError && /TLS: .*missing\.pem/.test(e.message));
      await assert.rejects(start(join(dir, 'data2'), { BASTION_TLS_CERT: join(dir, 'garbage.pem'), BASTION_TLS_KEY: join(dir, 'garbage.pem') }), (e: unknown) => e instanceof ConfigError && /^TLS: /.test(e.message));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('configured certificates, reloaded when they change; client certificates required', () => {
  let dir: string;
  let server: Server;
  let caCert: Buffer;
  let first: KeyAndCert;
  let renewed: KeyAndCert;
  let client: KeyAndCert;
  let rogue: KeyAndCert;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bastion-tls-pki-'));
    const pki = openssl(dir);
    caCert = pki.ca('site-ca');
    pki.ca('rogue-ca');
    first = pki.leaf('server-1', 'site-ca', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth');
    renewed = pki.leaf('server-2', 'site-ca', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth');
    client = pki.leaf('lab-feed', 'site-ca', 'extendedKeyUsage=clientAuth');
    rogue = pki.leaf('impostor', 'rogue-ca', 'extendedKeyUsage=clientAuth');
    copyFileSync(join(dir, 'server-1.crt'), join(dir, 'live.crt'));
    copyFileSync(join(dir, 'server-1.key'), join(dir, 'live.key'));
    server = await start(join(dir, 'data'), {
      BASTION_TLS_CERT: join(dir, 'live.crt'), BASTION_TLS_KEY: join(dir, 'live.key'),
      BASTION_TLS_CLIENT_CA: join(dir, 'site-ca.crt'), BASTION_TLS_CLIENT_CERTIFICATES: 'required',
    });
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const fingerprint = (pem: Buffer) => new X509Certificate(pem).fingerprint256;

  test('without a client certificate, or with one from another CA, the connection is refused', async () => {
    const none = await handshake(server.baseUrl + '/metadata', { ca: caCert });
    assert.equal(none.ok, false, 'no certificate');
    assert.match(none.error!, /certificate required|alert|handshake/i);
    const wrong = await handshake(server.baseUrl + '/metadata', { ca: caCert, ...rogue });
    assert.equal(wrong.ok, false, 'certificate from an untrusted CA');
    assert.match(wrong.error!, /unknown ca|alert|certificate|without an answer/i);
    const good = await handshake(server.baseUrl + '/metadata', { ca: caCert, ...client });
    assert.equal(good.ok, true, good.error);
    assert.equal(good.status, 200);
  });

  test('a renewed certificate written in place is served to new connections without a restart', async () => {
    const before = await handshake(server.baseUrl + '/metadata', { ca: caCert, ...client });
    assert.equal(before.peer, fingerprint(first.cert));
    writeFileSync(join(dir, 'live.key'), renewed.key);
    writeFileSync(join(dir, 'live.crt'), renewed.cert);
    let seen: string | undefined;
    for (let i = 0; i < 40 && seen !== fingerprint(renewed.cert); i++) {
      await new Promise((r) => setTimeout(r, 250));
      seen = (await handshake(server.baseUrl + '/metadata', { ca: caCert, ...client })).peer;
    }
    assert.equal(seen, fingerprint(renewed.cert));
  });
});
