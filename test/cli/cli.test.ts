import { test } from 'node:test';
import { storeKey } from '../store-key.ts';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertLoopback, loadConfig, ConfigError } from '../../src/config/config.ts';

const bin = new URL('../../bin/bastion.js', import.meta.url).pathname;
const runWith = (env: Record<string, string>, ...args: string[]) =>
  spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, BASTION_HOST: '', BASTION_PORT: '', ...env } });
const run = (...args: string[]) => runWith({}, ...args);

test('every subcommand has --help', () => {
  for (const cmd of [[], ['serve'], ['import'], ['reindex'], ['users'], ['clients'], ['audit'], ['audit', 'verify']]) {
    const r = run(...cmd, '--help');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Usage: bastion/);
  }
});

test('unknown commands and options fail with a usage message', () => {
  const a = run('frobnicate');
  assert.equal(a.status, 2);
  assert.match(a.stderr, /Unknown command/);
  const b = run('serve', '--no-such-flag');
  assert.equal(b.status, 2);
  assert.match(b.stderr, /bastion serve:/);
});

test('with authorization off the server refuses to bind to anything but loopback', () => {
  assert.throws(() => assertLoopback('0.0.0.0'), ConfigError);
  assert.throws(() => assertLoopback('192.168.1.10'), ConfigError);
  assert.throws(() => assertLoopback('::'), ConfigError);
  for (const ok of ['127.0.0.1', '127.1.2.3', '::1', 'localhost']) assertLoopback(ok);
  const r = runWith({ BASTION_AUTH: 'off' }, 'serve', '--host', '0.0.0.0', '--port', '0');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /Refusing to listen on 0\.0\.0\.0/);
});

test('configuration: flags beat environment, environment beats defaults; bad values are refused', () => {
  const env = { BASTION_PORT: '9000', BASTION_HOST: '127.0.0.2', BASTION_DATA_DIR: '/tmp/x' };
  const c = loadConfig({ port: '9100' }, env);
  assert.equal(c.port, 9100);
  assert.equal(c.host, '127.0.0.2');
  assert.equal(c.dataDir, '/tmp/x');
  assert.equal(c.baseUrl, 'https://127.0.0.2:9100/fhir');
  assert.equal(loadConfig({}, {}).port, 8080);
  assert.throws(() => loadConfig({ port: 'eighty' }, {}), /port must be an integer/);
  assert.throws(() => loadConfig({}, { BASTION_PORT: '70000' }), /port/);
});

test('configuration: the audit trail SIEM sinks; bad values are refused', () => {
  const none = loadConfig({}, {});
  assert.equal(none.auditStream, undefined);
  assert.equal(none.auditSyslog, undefined);
  assert.equal(loadConfig({}, { BASTION_AUDIT_STREAM: '-' }).auditStream, '-', 'stdout');
  assert.equal(loadConfig({}, { BASTION_AUDIT_STREAM: 'siem/audit.ndjson' }).auditStream, join(process.cwd(), 'siem/audit.ndjson'));
  const env = {
    BASTION_AUDIT_SYSLOG: 'siem.example.org:6514',
    BASTION_AUDIT_SYSLOG_CA: '/etc/bastion/siem-ca.pem',
    BASTION_AUDIT_SYSLOG_CERT: '/etc/bastion/client.pem',
    BASTION_AUDIT_SYSLOG_KEY: '/etc/bastion/client.key',
  };
  assert.deepEqual(loadConfig({}, env).auditSyslog, { host: 'siem.example.org', port: 6514, caFile: '/etc/bastion/siem-ca.pem', certFile: '/etc/bastion/client.pem', keyFile: '/etc/bastion/client.key' });
  assert.deepEqual(loadConfig({}, { BASTION_AUDIT_SYSLOG: '[2001:db8::7]:6514' }).auditSyslog, { host: '2001:db8::7', port: 6514 });
  assert.deepEqual(loadConfig({}, { BASTION_AUDIT_SYSLOG: '10.0.0.5:1' }).auditSyslog, { host: '10.0.0.5', port: 1 });
  for (const bad of ['siem.example.org', 'siem.example.org:', ':6514', 'siem.example.org:65536', 'siem.example.org:0', 'siem.example.org:-1', '2001:db8::7:6514', 'siem.example.org:6514/tcp', 'a b:6514']) {
    assert.throws(() => loadConfig({}, { BASTION_AUDIT_SYSLOG: bad }), (e: unknown) => e instanceof ConfigError && /auditSyslog/.test(e.message), bad);
  }
  assert.throws(() => loadConfig({}, { BASTION_AUDIT_SYSLOG: 'siem:6514', BASTION_AUDIT_SYSLOG_CERT: '/c.pem' }), /auditSyslogCert and auditSyslogKey go together/);
  assert.throws(() => loadConfig({}, { BASTION_AUDIT_SYSLOG: 'siem:6514', BASTION_AUDIT_SYSLOG_KEY: '/c.key' }), /auditSyslogCert and auditSyslogKey go together/);
  assert.throws(() => loadConfig({}, { BASTION_AUDIT_SYSLOG_CA: '/ca.pem' }), /need auditSyslog/, 'a CA without a collector is a mistake, not a no-op');
  const dir = mkdtempSync(join(tmpdir(), 'bastion-config-'));
  try {
    const file = join(dir, 'config.json');
    writeFileSync(file, JSON.stringify({ auditStream: '-', auditSyslog: 'siem.example.org:6514', auditSyslogCa: '/ca.pem' }));
    const c = loadConfig({}, {}, file);
    assert.equal(c.auditStream, '-');
    assert.deepEqual(c.auditSyslog, { host: 'siem.example.org', port: 6514, caFile: '/ca.pem' });
    writeFileSync(file, JSON.stringify({ auditSyslog: { host: 'siem.example.org', port: 6514 } }));
    assert.throws(() => loadConfig({}, {}, file), /auditSyslog must be "host:port"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A GET over HTTPS trusting the data dir's development certificate. */
function httpsGet(url: string, ca: Buffer): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; protocol: string | null }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca }, (res) => {
      const protocol = (res.socket as TLSSocket).getProtocol();
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, protocol }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('bastion serve initialises a fresh data dir, prints the FHIR base URL and serves it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bastion-cli-'));
  let out = '';
  const child = spawn(process.execPath, [bin, 'serve', '--port', '0', '--data-dir', dir], { env: { ...process.env, BASTION_LOG_LEVEL: 'warn' } });
  try {
    const base = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (d) => {
        out += d;
        const m = /serving FHIR R4 at (\S+)/.exec(out);
        if (m) resolve(m[1]);
      });
      child.on('exit', (code) => reject(new Error(`exited ${code}`)));
      setTimeout(() => reject(new Error('no start line')), 20000);
    });
    assert.match(base, /^https:\/\/127\.0\.0\.1:\d+\/fhir$/, 'HTTPS by default');
    const ca = readFileSync(join(dir, 'tls-dev-cert.pem'));
    const res = await httpsGet(`${base}/metadata`, ca);
    assert.equal(res.status, 200);
    assert.equal(res.headers['strict-transport-security'], 'max-age=31536000');
    assert.equal(res.protocol, 'TLSv1.3');
    assert.equal((await httpsGet(`${base}/Patient`, ca)).status, 401, 'authorization is on by default');
    await new Promise((r) => setTimeout(r, 50));
    assert.match(out, /one-time password\s+(\S{20})/, 'the first start prints the admin\'s one-time password');
    assert.equal(statSync(join(dir, 'signing-keys.json')).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'bastion-auth.db')).mode & 0o077, 0);
    for (const file of ['keyring.json', 'data-keys.json', 'master.key', 'tls-dev-key.pem']) assert.equal(statSync(join(dir, file)).mode & 0o777, 0o600, file);
    assert.ok(!existsSync(join(dir, 'store.key')), 'no plain store key');
    assert.equal(statSync(join(dir, 'bastion.db')).mode & 0o077, 0);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bastion reindex rebuilds a lost search index, and refuses a store in use', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bastion-reindex-'));
  try {
    const { openStore } = await import('../../src/main.ts');
    const { parseSearch } = await import('../../src/fhir/search/parse.ts');
    const { openEncrypted } = await import('../../src/store/sqlite/open.ts');
    const search = { maxCount: 10, defaultCount: 10, lenient: false };
    let store = await openStore(dir);
    await store.transaction((tx) => tx.create({ resourceType: 'Patient', id: 'r1', name: [{ family: 'Reindexed' }] }));
    await store.close();
    // Lose the index rows, as a changed definition would leave them wrong.
    const db = openEncrypted(join(dir, 'bastion.db'), await storeKey(dir));
    db.exec('DELETE FROM search_string');
    db.close();
    store = await openStore(dir);
    assert.deepEqual((await store.search(parseSearch('Patient', [['family', 'reindexed']], search).request)).matches, []);
    const busy = run('reindex', '--data-dir', dir);
    assert.equal(busy.status, 1);
    assert.match(busy.stderr, /in use by another process/);
    await store.close();
    const r = run('reindex', '--data-dir', dir);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /reindexed 1 resources/);
    store = await openStore(dir);
    assert.deepEqual((await store.search(parseSearch('Patient', [['family', 'reindexed']], search).request)).matches.map((m) => m.id), ['r1']);
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bastion users add and clients add provision the authorization server; bad input is a usage error', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bastion-users-'));
  try {
    const pw = join(dir, 'pw.txt');
    writeFileSync(pw, 'a password of some length\n');
    const user = run('users', 'add', '--username', 'drx', '--role', 'physician', '--fhir-user', 'Practitioner/x', '--password-file', pw, '--data-dir', dir);
    assert.equal(user.status, 0, user.stderr);
    assert.match(user.stdout, /created user drx \(physician\)/);
    assert.doesNotMatch(user.stdout, /one-time password/);
    const generated = run('users', 'add', '--username', 'nurse1', '--role', 'nurse', '--data-dir', dir);
    assert.match(generated.stdout, /one-time password \(to be changed at first sign-in\): \S{20}/);
    assert.equal(run('users', 'add', '--username', 'drx', '--role', 'physician', '--data-dir', dir).status, 1, 'a duplicate username');
    assert.equal(run('users', 'add', '--username', 'p', '--role', 'patient', '--data-dir', dir).status, 2, 'a patient needs --fhir-user Patient/...');
    assert.equal(run('users', 'add', '--username', 'q', '--role', 'wizard', '--data-dir', dir).status, 2);
    const jwks = join(dir, 'jwks.json');
    const { generateKeyPair, exportJWK } = await import('jose');
    const { publicKey } = await generateKeyPair('ES384');
    writeFileSync(jwks, JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k' }] }));
    const backend = run('clients', 'add', '--name', 'Lab feed', '--type', 'backend', '--jwks', jwks, '--scope', 'system/Observation.cruds', '--data-dir', dir);
    assert.equal(backend.status, 0, backend.stderr);
    assert.match(backend.stdout, /client_id: \S+/);
    const confidential = run('clients', 'add', '--name', 'Portal', '--type', 'confidential', '--redirect-uri', 'https://portal.example/cb', '--scope', 'openid patient/*.rs', '--data-dir', dir);
    assert.match(confidential.stdout, /client_secret \(shown only now\): \S{40,}/);
    assert.equal(run('clients', 'add', '--name', 'Bad', '--type', 'backend', '--scope', 'patient/*.rs', '--jwks', jwks, '--data-dir', dir).status, 2, 'backend clients get system/ scopes only');
    assert.equal(run('clients', 'add', '--name', 'Bad', '--type', 'public', '--scope', 'patient/*.rs', '--data-dir', dir).status, 2, 'a public client needs a redirect URI');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
