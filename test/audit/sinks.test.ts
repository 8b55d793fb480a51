import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { openssl } from '../pki.ts';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket, type TlsOptions } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { escapeParamValue, formatSyslog, frame, msgIdOf, severityOf } from '../../src/audit/sinks/rfc5424.ts';
import { Backlog } from '../../src/audit/sinks/backlog.ts';
import { NdjsonSink } from '../../src/audit/sinks/ndjson-sink.ts';
import { SyslogSink } from '../../src/audit/sinks/syslog-sink.ts';
import { AuditSinkError } from '../../src/audit/sinks/audit-sink.ts';
import { openAuditSinks } from '../../src/audit/sinks/open-sinks.ts';
import { ConfigError, loadConfig } from '../../src/config/config.ts';

/** An AuditEvent as the trail renders a read (references only, as in production). */
function auditEvent(seq: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    resourceType: 'AuditEvent',
    id: String(seq),
    type: { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest', display: 'RESTful Operation' },
    subtype: [{ system: 'http://hl7.org/fhir/restful-interaction', code: 'read' }],
    action: 'R',
    recorded: '2025-03-01T10:15:30.123Z',
    outcome: '0',
    agent: [{ who: { identifier: { value: 'user-7' } }, requestor: true, network: { address: '127.0.0.1', type: '2' } }],
    source: { observer: { display: 'Bastion' }, type: [{ system: 'http://terminology.hl7.org/CodeSystem/security-source-type', code: '4' }] },
    entity: [{ what: { reference: `Patient/p${seq}` }, type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '2' } }],
    ...extra,
  };
}

const batch = (from: number, to: number, extra: Record<string, unknown> = {}) =>
  Array.from({ length: to - from + 1 }, (_, i) => ({ seq: from + i, event: auditEvent(from + i, extra) }));

const header = { facility: 10, hostname: 'fhir-1.example', appName: 'bastion', procId: '4242' };
const BOM = '\uFEFF';

/** A syslog message split into its RFC 5424 parts (the BOM only ever starts MSG). */
function parseSyslog(message: string) {
  const bom = message.indexOf(` ${BOM}`);
  assert.ok(bom > 0, 'MSG starts with a BOM');
  const m = /^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) (\[.*\])$/.exec(message.slice(0, bom));
  assert.ok(m, `an RFC 5424 header: ${message.slice(0, bom)}`);
  return { pri: Number(m[1]), timestamp: m[2], hostname: m[3], appName: m[4], procId: m[5], msgId: m[6], sd: m[7], event: JSON.parse(message.slice(bom + 2)) };
}

describe('RFC 5424 formatting', () => {
  test('PRI is facility * 8 + the severity the outcome implies', () => {
    const pri = (extra: Record<string, unknown>, facility = 10) => parseSyslog(formatSyslog(1, auditEvent(1, extra), { ...header, facility })).pri;
    assert.equal(pri({ outcome: '0' }), 86, 'authpriv.info');
    assert.equal(pri({ outcome: '4' }), 84, 'authpriv.warning');
    assert.equal(pri({ outcome: '8' }), 83, 'authpriv.err');
    assert.equal(pri({ outcome: '12' }), 83, 'authpriv.err');
    assert.equal(pri({ outcome: '0' }, 16), 134, 'local0.info');
    assert.equal(pri({ outcome: '0' }, 0), 6);
    const btg = { entity: [{ detail: [{ type: 'access-decision', valueString: 'break-the-glass' }] }] };
    assert.equal(severityOf(auditEvent(1, btg)), 5, 'break-the-glass is a notice');
    assert.equal(severityOf(auditEvent(1, { ...btg, outcome: '4' })), 4, 'a failure stays a failure');
    assert.equal(severityOf(auditEvent(1, { agent: [{ purposeOfUse: [{ coding: [{ code: 'BTG' }] }] }] })), 5);
    assert.equal(severityOf(auditEvent(1, { outcome: undefined })), 5, 'an unknown outcome is a notice');
  });

  test('header fields, structured data and the AuditEvent as MSG', () => {
    const event = auditEvent(17);
    const message = formatSyslog(17, event, header);
    const parsed = parseSyslog(message);
    assert.equal(parsed.timestamp, '2025-03-01T10:15:30.123Z');
    assert.equal(parsed.hostname, 'fhir-1.example');
    assert.equal(parsed.appName, 'bastion');
    assert.equal(parsed.procId, '4242');
    assert.equal(parsed.msgId, 'read');
    assert.equal(parsed.sd, '[bastion@32473 seq="17" outcome="0" action="R"]');
    assert.deepEqual(parsed.event, event);
    assert.ok(!message.includes('\n'), 'one line');
    const login = auditEvent(3, { subtype: [{ code: '110122' }], action: 'E', outcome: '4', entity: [{ detail: [{ type: 'event', valueString: 'login-failed' }] }] });
    assert.equal(parseSyslog(formatSyslog(3, login, header)).sd, '[bastion@32473 seq="3" outcome="4" action="E" event="login-failed"]');
  });

  test('timestamps: at most six fraction digits; a missing or odd one is the NILVALUE', () => {
    const ts = (recorded: unknown) => parseSyslog(formatSyslog(1, auditEvent(1, { recorded }), header)).timestamp;
    assert.equal(ts('2025-03-01T10:15:30.123456789+02:00'), '2025-03-01T10:15:30.123456+02:00');
    assert.equal(ts('2025-03-01T10:15:30Z'), '2025-03-01T10:15:30Z');
    assert.equal(ts(undefined), '-');
    assert.equal(ts('yesterday'), '-');
    assert.equal(ts('2025-03-01T10:15:60Z'), '-', 'no leap seconds in syslog');
  });

  test('SD-PARAM values escape ", \\ and ]', () => {
    assert.equal(escapeParamValue('a"b\\c]d'), 'a\\"b\\\\c\\]d');
    assert.equal(escapeParamValue('plain [text]'), 'plain [text\\]');
    const sd = parseSyslog(formatSyslog(2, auditEvent(2, { action: 'R"] x\\' }), header)).sd;
    assert.equal(sd, '[bastion@32473 seq="2" outcome="0" action="R\\"\\] x\\\\"]');
  });

  test('MSGID: printable US-ASCII, at most 32, "-" when there is no subtype', () => {
    assert.equal(msgIdOf(auditEvent(1, { subtype: [{ code: 'x'.repeat(40) }] })), 'x'.repeat(32));
    assert.equal(msgIdOf(auditEvent(1, { subtype: [{ code: 'search type ü' }] })), 'search_type__');
    assert.equal(msgIdOf(auditEvent(1, { subtype: undefined })), '-');
    assert.equal(msgIdOf(auditEvent(1, { subtype: [] })), '-');
    assert.equal(msgIdOf(auditEvent(1, { subtype: [{ code: '' }] })), '-');
    const weird = { ...header, hostname: 'host name', appName: 'a'.repeat(60) };
    const parsed = parseSyslog(formatSyslog(1, auditEvent(1), weird));
    assert.equal(parsed.hostname, 'host_name');
    assert.equal(parsed.appName, 'a'.repeat(48));
  });

  test('octet counting counts UTF-8 bytes, not characters', () => {
    const message = formatSyslog(5, auditEvent(5, { outcomeDesc: 'Zugriff für Müller verweigert — 患者' }), header);
    const framed = frame(message);
    const sp = framed.indexOf(0x20);
    const length = Number(framed.subarray(0, sp).toString('ascii'));
    assert.equal(length, Buffer.byteLength(message, 'utf8'));
    assert.ok(length > message.length, 'the BOM and the non-ASCII text take more bytes than characters');
    assert.equal(framed.length, sp + 1 + length);
    assert.equal(framed.subarray(sp + 1).toString('utf8'), message);
    assert.deepEqual([...framed.subarray(sp + 1).subarray(framed.subarray(sp + 1).indexOf(0xef), framed.subarray(sp + 1).indexOf(0xef) + 3)], [0xef, 0xbb, 0xbf], 'the BOM in UTF-8');
  });
});

test('the backlog keeps the newest items and counts what it dropped', () => {
  const backlog = new Backlog<string>(3);
  for (const s of ['a', 'b', 'c', 'd', 'e']) backlog.push(s);
  assert.equal(backlog.length, 3);
  assert.equal(backlog.takeDropped(), 2);
  assert.equal(backlog.takeDropped(), 0, 'reported once');
  assert.deepEqual(backlog.take(2), ['c', 'd']);
  assert.deepEqual(backlog.take(0), ['e'], 'at least one item, however large');
  assert.equal(backlog.length, 0);
});

describe('NDJSON sink', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'bastion-ndjson-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('appends one AuditEvent per line to an owner-only file', async () => {
    const file = join(dir, 'trail.ndjson');
    const errors: unknown[] = [];
    const first = new NdjsonSink(file, { onError: (e) => errors.push(e) });
    first.write(batch(1, 3));
    first.write(batch(4, 4, { outcomeDesc: 'Müller' }));
    await first.close();
    const second = new NdjsonSink(file, { onError: (e) => errors.push(e) });
    second.write(batch(5, 6));
    await second.close();
    second.write(batch(7, 7));
    assert.deepEqual(errors, []);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const lines = readFileSync(file, 'utf8').split('\n');
    assert.equal(lines.pop(), '', 'every line ends with a newline');
    assert.deepEqual(lines.map((l) => JSON.parse(l)), [...batch(1, 3), ...batch(4, 4, { outcomeDesc: 'Müller' }), ...batch(5, 6)].map((e) => e.event), 'appended in order, nothing after close');
  });

  test('a stream that does not keep up: the oldest waiting lines are dropped and the count reported once', async () => {
    const file = join(dir, 'slow.ndjson');
    const errors: unknown[] = [];
    const sink = new NdjsonSink(file, { maxBuffered: 10, onError: (e) => errors.push(e) });
    const padding = { outcomeDesc: 'x'.repeat(1000) };
    sink.write(batch(1, 100, padding)); // 100 kB: more than the stream buffers, so the next batch waits
    sink.write(batch(101, 200, padding));
    await sink.close();
    const seqs = readFileSync(file, 'utf8').trim().split('\n').map((l) => Number(JSON.parse(l).id));
    assert.deepEqual(seqs, [...batch(1, 100), ...batch(191, 200)].map((e) => e.seq), 'the first batch whole, then the newest 10');
    assert.equal(errors.length, 1);
    assert.ok(errors[0] instanceof AuditSinkError);
    assert.equal(errors[0].dropped, 90);
    assert.doesNotMatch(errors[0].message, /Patient|xxxx/, 'no event content in reports');
  });

  test('a target it cannot open is reported, not thrown', async () => {
    const errors: unknown[] = [];
    const sink = new NdjsonSink(join(dir, 'no-such-dir', 'trail.ndjson'), { onError: (e) => errors.push(e) });
    sink.write(batch(1, 2));
    await new Promise((r) => setTimeout(r, 50));
    await sink.close();
    assert.match(String((errors[0] as Error).message), /ENOENT/);
    assert.equal((errors.at(-1) as AuditSinkError).dropped, 2, 'what never left is counted at close');
  });

  test('"-" writes to stdout', () => {
    const sinkModule = new URL('../../src/audit/sinks/ndjson-sink.ts', import.meta.url).href;
    const script = `import { NdjsonSink } from ${JSON.stringify(sinkModule)};
      const sink = new NdjsonSink('-', { onError: (e) => { console.error(e); process.exitCode = 3; } });
      sink.write(${JSON.stringify(batch(1, 2))});
      await sink.close();`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n').map((l) => JSON.parse(l)), batch(1, 2).map((e) => e.event));
  });
});

// --- syslog over TLS -------------------------------------------------------------------------

interface Pki {
  ca: Buffer;
  server: { key: Buffer; cert: Buffer };
  client: { key: Buffer; cert: Buffer };
  /** Signed by another CA, which the sink does not trust. */
  rogue: { key: Buffer; cert: Buffer };
  /** Signed by the trusted CA, but for another name than 127.0.0.1. */
  wrongName: { key: Buffer; cert: Buffer };
}

function makePki(dir: string): Pki {
  const { ca, leaf } = openssl(dir);
  ca('trusted-ca');
  ca('rogue-ca');
  return {
    ca: readFileSync(join(dir, 'trusted-ca.crt')),
    server: leaf('collector', 'trusted-ca', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth'),
    client: leaf('bastion-client', 'trusted-ca', 'extendedKeyUsage=clientAuth'),
    rogue: leaf('impostor', 'rogue-ca', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth'),
    wrongName: leaf('elsewhere', 'trusted-ca', 'subjectAltName=DNS:elsewhere.example\nextendedKeyUsage=serverAuth'),
  };
}

/** A syslog-over-TLS collector that splits what it receives by octet counting (RFC 5425). */
async function collector(options: TlsOptions, port = 0) {
  const messages: string[] = [];
  const problems: string[] = [];
  const sockets = new Set<TLSSocket>();
  const peers: { protocol: string | null; authorized: boolean; client?: string }[] = [];
  const server = createTlsServer(options, (socket) => {
    sockets.add(socket);
    peers.push({ protocol: socket.getProtocol(), authorized: socket.authorized, client: String(socket.getPeerCertificate()?.subject?.CN) });
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        const sp = pending.indexOf(0x20);
        if (sp < 0) return;
        const digits = pending.subarray(0, sp).toString('latin1');
        if (!/^[1-9]\d{0,8}$/.test(digits)) {
          problems.push(`bad MSGLEN ${JSON.stringify(digits.slice(0, 20))}`);
          socket.destroy();
          return;
        }
        const end = sp + 1 + Number(digits);
        if (pending.length < end) return;
        messages.push(pending.subarray(sp + 1, end).toString('utf8'));
        pending = pending.subarray(end);
      }
    });
  });
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    messages,
    problems,
    peers,
    async waitFor(count: number, ms = 4000): Promise<void> {
      const until = Date.now() + ms;
      while (messages.length < count) {
        if (Date.now() > until) throw new Error(`collector got ${messages.length} of ${count} messages`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    async close(): Promise<void> {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

const seqsOf = (messages: string[]) => messages.map((m) => parseSyslog(m).event.id);

async function until(condition: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('syslog sink over TLS', () => {
  let dir: string;
  let pki: Pki;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'bastion-syslog-'));
    pki = makePki(dir);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('delivers RFC 5424 messages, octet-counted, to a verified collector over mutual TLS', async () => {
    const c = await collector({ ...pki.server, ca: pki.ca, requestCert: true, rejectUnauthorized: true });
    const errors: unknown[] = [];
    const sink = new SyslogSink({ host: '127.0.0.1', port: c.port, ca: pki.ca, ...pki.client, hostname: 'fhir-1', onError: (e) => errors.push(e) });
    try {
      const first = [...batch(1, 2), { seq: 3, event: auditEvent(3, { outcome: '4', outcomeDesc: 'Zugriff für Müller verweigert — 患者' }) }];
      sink.write(first);
      await c.waitFor(3);
      sink.write(batch(4, 5));
      const closing = Date.now();
      await sink.close(); // flushes before it ends the connection
      assert.ok(Date.now() - closing < 1000, 'closes as soon as it is flushed, not at the deadline');
      await c.waitFor(5);
      assert.deepEqual(c.problems, []);
      assert.deepEqual(seqsOf(c.messages), ['1', '2', '3', '4', '5']);
      const third = parseSyslog(c.messages[2]);
      assert.equal(third.pri, 10 * 8 + 4);
      assert.equal(third.hostname, 'fhir-1');
      assert.equal(third.appName, 'bastion');
      assert.equal(third.msgId, 'read');
      assert.equal(third.sd, '[bastion@32473 seq="3" outcome="4" action="R"]');
      assert.deepEqual(third.event, first[2].event);
      assert.equal(c.peers.length, 1, 'one connection for all of it');
      assert.equal(c.peers[0].protocol, 'TLSv1.3');
      assert.equal(c.peers[0].authorized, true);
      assert.equal(c.peers[0].client, 'bastion-client');
      assert.deepEqual(errors, []);
    } finally {
      await sink.close();
      await c.close();
    }
  });

  test('a collector whose certificate is not from the configured CA gets nothing', async () => {
    const c = await collector(pki.rogue);
    const errors: unknown[] = [];
    const sink = new SyslogSink({ host: '127.0.0.1', port: c.port, ca: pki.ca, onError: (e) => errors.push(e) });
    try {
      sink.write(batch(1, 3));
      await until(() => errors.length > 0);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(sink.connected, false);
      assert.deepEqual(c.peers, [], 'no TLS session was established');
      assert.deepEqual(c.messages, []);
      const err = errors[0] as AuditSinkError;
      assert.ok(err instanceof AuditSinkError);
      assert.match(String((err.cause as { code?: string }).code), /SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/);
      assert.doesNotMatch(err.message, /Patient/);
      await sink.close();
      assert.equal((errors.at(-1) as AuditSinkError).dropped, 3, 'at close, what was never sent is counted');
      assert.deepEqual(c.messages, []);
    } finally {
      await sink.close();
      await c.close();
    }
  });

  test('a collector whose certificate names another host gets nothing', async () => {
    const c = await collector(pki.wrongName);
    const errors: unknown[] = [];
    const sink = new SyslogSink({ host: '127.0.0.1', port: c.port, ca: pki.ca, onError: (e) => errors.push(e) });
    try {
      sink.write(batch(1, 1));
      await until(() => errors.length > 0);
      assert.equal(((errors[0] as AuditSinkError).cause as { code?: string }).code, 'ERR_TLS_CERT_ALTNAME_INVALID');
      assert.deepEqual(c.peers, []);
      assert.deepEqual(c.messages, []);
    } finally {
      await sink.close();
      await c.close();
    }
  });

  test('a plaintext listener sees a TLS handshake, never an event', async () => {
    let received = Buffer.alloc(0);
    const sockets: Socket[] = [];
    const server = createNetServer((socket) => {
      sockets.push(socket);
      socket.on('error', () => {});
      socket.on('data', (d: Buffer) => {
        received = Buffer.concat([received, d]);
        socket.end('not tls\n');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const errors: unknown[] = [];
    const sink = new SyslogSink({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, ca: pki.ca, onError: (e) => errors.push(e) });
    try {
      sink.write(batch(1, 2));
      await until(() => errors.length > 0);
      assert.ok(received.length > 0);
      assert.equal(received[0], 0x16, 'a TLS handshake record');
      assert.equal(received.indexOf('AuditEvent'), -1);
      assert.equal(received.indexOf('Patient/p1'), -1);
    } finally {
      await sink.close();
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    }
  });

  test('close() gives up on a collector that never answers after about 2 s, and counts what was not sent', async () => {
    const sockets: Socket[] = [];
    const server = createNetServer((socket) => void sockets.push(socket.on('error', () => {})));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const errors: unknown[] = [];
    const sink = new SyslogSink({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, ca: pki.ca, onError: (e) => errors.push(e) });
    try {
      sink.write(batch(1, 4));
      await until(() => sockets.length > 0);
      const closing = Date.now();
      await sink.close();
      const took = Date.now() - closing;
      assert.ok(took >= 1900 && took < 3000, `took ${took} ms`);
      assert.equal((errors.at(-1) as AuditSinkError).dropped, 4);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    }
  });

  test('events written while the collector is away are delivered once it is back', async () => {
    const first = await collector(pki.server);
    const port = first.port;
    const errors: unknown[] = [];
    const sink = new SyslogSink({ host: '127.0.0.1', port, ca: pki.ca, onError: (e) => errors.push(e) });
    let second: Awaited<ReturnType<typeof collector>> | undefined;
    try {
      sink.write(batch(1, 2));
      await first.waitFor(2);
      await first.close();
      await until(() => !sink.connected);
      sink.write(batch(3, 4));
      sink.write(batch(5, 5));
      second = await collector(pki.server, port);
      await second.waitFor(3, 5000);
      assert.deepEqual(seqsOf(first.messages), ['1', '2']);
      assert.deepEqual(seqsOf(second.messages), ['3', '4', '5']);
      assert.deepEqual(second.problems, []);
      assert.ok(sink.connected);
    } finally {
      await sink.close();
      await first.close().catch(() => {});
      await second?.close();
    }
  });

  test('with a small queue, an outage drops the oldest and reports the count once, when delivery resumes', async () => {
    const c = await collector(pki.server);
    const port = c.port;
    await c.close();
    const errors: unknown[] = [];
    const sink = new SyslogSink({ host: '127.0.0.1', port, ca: pki.ca, maxQueued: 2, onError: (e) => errors.push(e) });
    let back: Awaited<ReturnType<typeof collector>> | undefined;
    try {
      sink.write(batch(1, 5));
      await until(() => errors.length > 0);
      assert.match((errors[0] as Error).message, /ECONNREFUSED/);
      back = await collector(pki.server, port);
      await back.waitFor(2, 5000);
      await until(() => errors.length > 1);
      assert.deepEqual(seqsOf(back.messages), ['4', '5']);
      assert.equal(errors.length, 2, 'one outage, one drop report');
      assert.equal((errors[1] as AuditSinkError).dropped, 3);
    } finally {
      await sink.close();
      await back?.close();
    }
  });

  test('openAuditSinks builds the configured sinks; an unreadable or unusable CA stops the start', async () => {
    const caFile = join(dir, 'trusted-ca.crt');
    const stream = join(dir, 'from-config.ndjson');
    const config = loadConfig({}, { BASTION_AUDIT_STREAM: stream, BASTION_AUDIT_SYSLOG: '127.0.0.1:6514', BASTION_AUDIT_SYSLOG_CA: caFile });
    const sinks = openAuditSinks(config, () => {});
    assert.deepEqual(sinks.map((s) => s.constructor.name).sort(), ['NdjsonSink', 'SyslogSink']);
    await Promise.all(sinks.map((s) => s.close()));
    assert.deepEqual(openAuditSinks(loadConfig({}, {}), () => {}), []);
    const missing = loadConfig({}, { BASTION_AUDIT_SYSLOG: '127.0.0.1:6514', BASTION_AUDIT_SYSLOG_CA: join(dir, 'nope.pem') });
    assert.throws(() => openAuditSinks(missing, () => {}), (e: unknown) => e instanceof ConfigError && /auditSyslogCa: cannot read .*ENOENT/.test(e.message));
    const notPem = join(dir, 'collector.ext');
    const garbage = loadConfig({}, { BASTION_AUDIT_SYSLOG: '127.0.0.1:6514', BASTION_AUDIT_SYSLOG_CERT: notPem, BASTION_AUDIT_SYSLOG_KEY: notPem });
    assert.throws(() => openAuditSinks(garbage, () => {}), ConfigError);
  });
});
