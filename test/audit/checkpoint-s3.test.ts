import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import aws4 from 'aws4';
import { S3CheckpointCopy } from '../../src/audit/checkpoint-s3.ts';
import { AuditCheckpoints } from '../../src/audit/checkpoints.ts';
import { auditSigningKey, openStore, startServer } from '../../src/main.ts';
import { ConfigError, loadConfig } from '../../src/config/config.ts';

/** A stand-in S3 endpoint on loopback that records each request (and can refuse them). */
interface Received { method: string; path: string; headers: IncomingMessage['headers']; body: string }

const credentials = { accessKeyId: 'AKIDBASTIONTEST', secretAccessKey: 'bastion-test-secret' };

describe('checkpoints copied to S3 with Object Lock', () => {
  let server: Server;
  let endpoint = '';
  let refuse = false;
  const received: Received[] = [];
  before(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        received.push({ method: req.method!, path: req.url!, headers: req.headers, body });
        if (refuse) {
          res.writeHead(403, { 'content-type': 'application/xml' }).end('<Error><Code>AccessDenied</Code><Message>secret detail</Message></Error>');
        } else res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    endpoint = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(() => server.close());

  const copy = () => new S3CheckpointCopy({ bucket: 'audit-bucket', region: 'eu-west-1', endpoint, prefix: 'bastion/', mode: 'COMPLIANCE', retainDays: 2196 }, credentials);

  test('each checkpoint is one object, locked in compliance mode until its retention ends, signed with SigV4', async () => {
    received.length = 0;
    const at = '2026-11-29T10:00:00.000Z';
    const line = JSON.stringify({ count: 42, head: 'ab'.repeat(32), at, jws: 'x.y.z' });
    await copy().write({ count: 42, at }, line);
    assert.equal(received.length, 1);
    const r = received[0];
    assert.equal(r.method, 'PUT');
    assert.equal(decodeURIComponent(r.path), `/audit-bucket/bastion/checkpoint-000000000042-${at}.json`);
    assert.equal(r.body, line);
    assert.equal(r.headers['x-amz-object-lock-mode'], 'COMPLIANCE');
    assert.equal(r.headers['x-amz-object-lock-retain-until-date'], new Date(Date.parse(at) + 2196 * 86_400_000).toISOString());
    assert.equal(r.headers['content-md5'], createHash('md5').update(line).digest('base64'));
    assert.equal(r.headers['x-amz-content-sha256'], createHash('sha256').update(line).digest('hex'));
    const authorization = String(r.headers.authorization);
    assert.match(authorization, /^AWS4-HMAC-SHA256 Credential=AKIDBASTIONTEST\/\d{8}\/eu-west-1\/s3\/aws4_request, SignedHeaders=[^,]*content-md5[^,]*x-amz-object-lock-mode;x-amz-object-lock-retain-until-date/);
    assert.ok(!authorization.includes(credentials.secretAccessKey));
    // The signature covers exactly what arrived: signing the received request again gives it back.
    const names = /SignedHeaders=([^,]+)/.exec(authorization)![1].split(';').filter((n) => n !== 'content-length');
    const signedHeaders = Object.fromEntries(names.map((n) => [n, String(r.headers[n])]));
    const again = aws4.sign({ host: String(r.headers.host), path: r.path, method: 'PUT', service: 's3', region: 'eu-west-1', body: r.body, headers: signedHeaders as Record<string, string> }, credentials);
    assert.equal((again.headers as Record<string, string>).Authorization, authorization);
  });

  test('a bucket that refuses is reported without its message, and the checkpoint is still kept with the trail', async () => {
    refuse = true;
    try {
      await assert.rejects(copy().write({ count: 1, at: new Date().toISOString() }, '{}'), (err: Error) => /403 AccessDenied/.test(err.message) && !err.message.includes('secret detail'));
      const dir = mkdtempSync(join(tmpdir(), 'bastion-s3-'));
      const store = await openStore(dir);
      try {
        await store.appendAudit([{ recorded: new Date().toISOString(), json: JSON.stringify({ at: new Date().toISOString(), do: 'read', st: 200, who: 'u', ip: '127.0.0.1' }) }]);
        const errors: unknown[] = [];
        await new AuditCheckpoints(store, await auditSigningKey(dir), [copy()], (err) => errors.push(err)).checkpoint();
        assert.equal(errors.length, 1);
        const head = await store.auditHead();
        assert.equal(head.count, 1);
      } finally {
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      }
    } finally {
      refuse = false;
    }
  });

  test('settings are checked: https outside loopback, a bucket name, a mode, credentials in the environment', async () => {
    const config = (s3: unknown) => loadConfig({}, { BASTION_AUDIT_CHECKPOINT_S3: JSON.stringify(s3) });
    assert.throws(() => config({ bucket: 'b-ok', region: 'us-east-1', endpoint: 'http://s3.example.org' }), ConfigError);
    assert.throws(() => config({ bucket: 'Bad_Bucket', region: 'us-east-1' }), ConfigError);
    assert.throws(() => config({ bucket: 'b-ok', region: 'us-east-1', mode: 'NONE' }), ConfigError);
    assert.throws(() => loadConfig({}, { BASTION_AUDIT_CHECKPOINT_S3: '{not json' }), ConfigError);
    const ok = config({ bucket: 'b-ok', region: 'us-east-1' }).auditCheckpointS3!;
    assert.equal(ok.mode, 'COMPLIANCE');
    assert.ok(ok.retainDays >= 6 * 365, 'locked at least as long as the trail is kept');
    const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
    delete process.env.AWS_ACCESS_KEY_ID;
    delete process.env.AWS_SECRET_ACCESS_KEY;
    const dir = mkdtempSync(join(tmpdir(), 'bastion-s3-'));
    try {
      await assert.rejects(startServer(loadConfig({ port: 0, dataDir: dir }, { BASTION_AUTH: 'off', BASTION_TLS: 'off', BASTION_AUDIT_CHECKPOINT_S3: JSON.stringify({ bucket: 'b-ok', region: 'us-east-1', endpoint }) })), /AWS_ACCESS_KEY_ID/);
    } finally {
      if (saved.id) process.env.AWS_ACCESS_KEY_ID = saved.id;
      if (saved.secret) process.env.AWS_SECRET_ACCESS_KEY = saved.secret;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
