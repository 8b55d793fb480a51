import { hostname as osHostname } from 'node:os';
import { isIP } from 'node:net';
import { connect, createSecureContext, type SecureContext, type TLSSocket } from 'node:tls';
import { AuditSinkError, errorCode, type AuditSink } from './audit-sink.ts';
import { Backlog } from './backlog.ts';
import { Backoff, within } from './timing.ts';
import { formatSyslog, frame, type SyslogHeader } from './rfc5424.ts';

export interface SyslogSinkOptions {
  host: string;
  port: number;
  /** PEM; the CAs the collector's certificate must chain to (default: Node's public roots). */
  ca?: string | Buffer;
  /** PEM client certificate and key, for collectors that require mutual TLS. */
  cert?: string | Buffer;
  key?: string | Buffer;
  appName?: string;
  hostname?: string;
  /** 0-23; 10 (authpriv) by default. */
  facility?: number;
  /** Messages held while disconnected or slow; beyond it the oldest are dropped. */
  maxQueued?: number;
  /** Failures and drops, each reported once per episode; never carries event content. */
  onError: (err: unknown) => void;
}

const chunkSize = 64 * 1024;
/** A collector that does not answer must not hold a connection attempt for the OS's two minutes. */
const connectTimeout = 10_000;

/**
 * The trail to a syslog collector: RFC 5424 messages over TLS (RFC 5425). The connection is
 * opened at the first event, verified (the collector's certificate and name, TLS 1.2 at least)
 * before anything is sent, and reopened with backoff when lost; meanwhile messages wait in a
 * bounded queue. Delivery is best effort: syslog has no acknowledgement, so what the socket held
 * when a connection broke is lost; the chained trail in the data dir is the complete record.
 */
export class SyslogSink implements AuditSink {
  private readonly host: string;
  private readonly port: number;
  private readonly header: SyslogHeader;
  private readonly context: SecureContext;
  private readonly onError: (err: unknown) => void;
  private readonly backlog: Backlog<Buffer>;
  private readonly backoff = new Backoff(1000, 60_000);
  private socket: TLSSocket | undefined;
  /** Handshake done and the collector verified: only then is anything written. */
  private ready = false;
  private waiting = false;
  private retry: NodeJS.Timeout | undefined;
  private notBefore = 0;
  private outageReported = false;
  /** Messages handed to a connection that then failed. */
  private lost = 0;
  private closed = false;
  private closing: Promise<void> | undefined;
  private socketGone: (() => void) | undefined;

  constructor(options: SyslogSinkOptions) {
    const facility = options.facility ?? 10;
    if (!Number.isInteger(facility) || facility < 0 || facility > 23) throw new RangeError('syslog facility must be 0-23');
    this.host = options.host;
    this.port = options.port;
    this.header = { facility, hostname: options.hostname ?? osHostname(), appName: options.appName ?? 'bastion', procId: String(process.pid) };
    this.onError = options.onError;
    this.backlog = new Backlog(options.maxQueued ?? 10_000);
    // Built once, so a bad certificate or key fails at start rather than at the first event.
    this.context = createSecureContext({
      minVersion: 'TLSv1.2',
      ...(options.ca !== undefined ? { ca: options.ca } : {}),
      ...(options.cert !== undefined ? { cert: options.cert } : {}),
      ...(options.key !== undefined ? { key: options.key } : {}),
    });
  }

  /** Connected to a verified collector. */
  get connected(): boolean {
    return this.ready;
  }

  write(events: { seq: number; event: Record<string, unknown> }[]): void {
    if (this.closed) return;
    const frames: Buffer[] = [];
    for (const { seq, event } of events) {
      try {
        frames.push(frame(formatSyslog(seq, event, this.header)));
      } catch (err) {
        this.report(new AuditSinkError('syslog', `event ${seq} could not be formatted (${errorCode(err)})`));
      }
    }
    if (frames.length === 0) return;
    if (this.ready && !this.waiting && this.backlog.length === 0) this.send(frames);
    else {
      for (const f of frames) this.backlog.push(f);
      this.ensureConnection();
    }
  }

  close(): Promise<void> {
    this.closed = true;
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private ensureConnection(): void {
    if (this.socket || this.retry) return;
    const delay = this.notBefore - Date.now();
    if (delay <= 0) return this.connect();
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.connect();
    }, delay);
    this.retry.unref();
  }

  private connect(): void {
    let socket: TLSSocket;
    try {
      socket = connect({
        host: this.host,
        port: this.port,
        // SNI and the name check go by the host name; an IP address is checked against the certificate's IP SANs.
        ...(isIP(this.host) ? {} : { servername: this.host }),
        secureContext: this.context,
        rejectUnauthorized: true,
      });
    } catch (err) {
      this.reportOutage(err);
      this.notBefore = Date.now() + this.backoff.next();
      return;
    }
    this.socket = socket;
    socket.setTimeout(connectTimeout, () => socket.destroy(Object.assign(new Error('connection timed out'), { code: 'ETIMEDOUT' })));
    socket.once('secureConnect', () => {
      if (!socket.authorized) return void socket.destroy(socket.authorizationError ?? new Error('peer not verified'));
      socket.setTimeout(0);
      socket.setKeepAlive(true, 60_000);
      this.ready = true;
      this.outageReported = false;
      this.backoff.reset();
      this.pump();
    });
    socket.on('drain', () => {
      this.waiting = false;
      this.pump();
    });
    socket.on('error', (err) => this.reportOutage(err));
    socket.on('close', () => this.disconnected(socket));
    // Collectors send nothing, but reading is how a close from their side is noticed.
    socket.resume();
  }

  private disconnected(socket: TLSSocket): void {
    if (this.socket !== socket) return;
    this.socket = undefined;
    this.ready = false;
    this.waiting = false;
    this.notBefore = Date.now() + this.backoff.next();
    if (this.closed) this.socketGone?.();
    else if (this.backlog.length > 0) this.ensureConnection();
  }

  private send(frames: Buffer[]): void {
    // Frames still in the socket when it fails are known lost and counted; those the kernel took may be lost too, unknown.
    const ok = this.socket!.write(Buffer.concat(frames), (err) => {
      if (err) this.lost += frames.length;
    });
    if (!ok) this.waiting = true;
  }

  private pump(): void {
    while (this.ready && !this.waiting && this.backlog.length > 0) this.send(this.backlog.take(chunkSize));
    if (this.backlog.length > 0) return;
    this.reportDrops(0);
    if (this.closed && this.ready) this.socket!.end();
  }

  private async shutdown(): Promise<void> {
    if (this.retry) clearTimeout(this.retry);
    this.retry = undefined;
    // One last attempt at shutdown, whatever the backoff says: the final events matter too.
    if (!this.socket && this.backlog.length > 0) this.connect();
    const socket = this.socket;
    if (socket) {
      const gone = new Promise<void>((resolve) => {
        this.socketGone = resolve;
      });
      this.pump();
      await within(2000, gone);
      socket.destroy();
      // Let the destroyed socket fail its pending writes, so they are counted below.
      await new Promise((resolve) => setImmediate(resolve));
    }
    this.reportDrops(this.backlog.length);
    this.backlog.clear();
  }

  private reportOutage(err: unknown): void {
    if (this.outageReported) return;
    this.outageReported = true;
    const retrying = this.closed ? '' : `; queueing and retrying with backoff`;
    this.report(new AuditSinkError('syslog', `${this.host}:${this.port} unavailable (${errorCode(err)})${retrying}`, { cause: err }));
  }

  private reportDrops(unsent: number): void {
    const dropped = this.backlog.takeDropped() + this.lost + unsent;
    this.lost = 0;
    if (dropped > 0) this.report(new AuditSinkError('syslog', `${dropped} audit events not sent to ${this.host}:${this.port} (queue full or collector unavailable)`, { dropped }));
  }

  private report(err: AuditSinkError): void {
    try {
      this.onError(err);
    } catch {
      // The caller's handler must not turn a sink's trouble into the server's.
    }
  }
}
