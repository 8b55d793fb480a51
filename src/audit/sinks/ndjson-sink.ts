import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { AuditSinkError, errorCode, type AuditSink } from './audit-sink.ts';
import { Backlog } from './backlog.ts';
import { Backoff, within } from './timing.ts';

export interface NdjsonSinkOptions {
  /** Lines held while the stream is slow or failing; beyond it the oldest are dropped. */
  maxBuffered?: number;
  /** Failures and drops, each reported once per episode; never carries event content. */
  onError: (err: unknown) => void;
}

/** One chunk per write: fs streams write each chunk with its own system call. */
const chunkSize = 64 * 1024;

/**
 * The trail as newline-delimited JSON AuditEvents, appended to a file (for a log shipper to tail)
 * or written to stdout (`-`, for a container's log collector).
 */
export class NdjsonSink implements AuditSink {
  private readonly target: string;
  private readonly onError: (err: unknown) => void;
  private readonly backlog: Backlog<string>;
  private readonly backoff = new Backoff();
  private stream: Writable | undefined;
  /** The stream said its buffer is full: hold lines until it drains. */
  private waiting = false;
  private failureReported = false;
  /** Lines handed to a stream that then failed. */
  private lost = 0;
  private reopen: NodeJS.Timeout | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;
  private emptied: (() => void) | undefined;
  private readonly drained = () => {
    this.waiting = false;
    this.pump();
  };

  constructor(target: string, options: NdjsonSinkOptions) {
    this.target = target;
    this.onError = options.onError;
    this.backlog = new Backlog(options.maxBuffered ?? 10_000);
    this.open();
  }

  write(events: { seq: number; event: Record<string, unknown> }[]): void {
    if (this.closed) return;
    const lines: string[] = [];
    for (const { seq, event } of events) {
      try {
        lines.push(JSON.stringify(event) + '\n');
      } catch (err) {
        this.report(new AuditSinkError('ndjson', `event ${seq} could not be serialised (${errorCode(err)})`));
      }
    }
    if (lines.length === 0) return;
    // A batch goes out whole when the stream keeps up: the bound is for lines that wait, not for batch size.
    if (this.stream && !this.waiting && this.backlog.length === 0) this.send(lines);
    else for (const line of lines) this.backlog.push(line);
  }

  close(): Promise<void> {
    this.closed = true;
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private open(): void {
    const out = this.target === '-' ? process.stdout : createWriteStream(this.target, { flags: 'a', mode: 0o600 });
    out.on('error', this.failed);
    out.on('drain', this.drained);
    this.stream = out;
    this.pump();
  }

  private readonly failed = (err: unknown) => {
    const out = this.stream;
    if (!out) return;
    this.detach(out);
    this.stream = undefined;
    this.waiting = false;
    // What waits in the backlog is kept for the next stream.
    if (!this.failureReported) {
      this.failureReported = true;
      this.report(new AuditSinkError('ndjson', `writing to ${this.targetName()} failed (${errorCode(err)})${this.target === '-' ? '' : '; reopening with backoff'}`, { cause: err }));
    }
    // stdout cannot be reopened: the backlog fills, and what it drops is reported at close.
    if (this.target !== '-' && !this.closed) {
      this.reopen = setTimeout(() => {
        this.reopen = undefined;
        this.open();
      }, this.backoff.next());
      this.reopen.unref();
    }
  };

  private send(lines: string[]): void {
    const ok = this.stream!.write(lines.join(''), (err) => {
      // Lines a failing stream still held are lost with it; they count as dropped.
      if (err) return void (this.lost += lines.length);
      this.failureReported = false;
      this.backoff.reset();
    });
    if (!ok) this.waiting = true;
  }

  private pump(): void {
    while (this.stream && !this.waiting && this.backlog.length > 0) this.send(this.backlog.take(chunkSize));
    if (this.backlog.length > 0) return;
    this.reportDrops(0);
    this.emptied?.();
  }

  private async shutdown(): Promise<void> {
    const deadline = Date.now() + 2000;
    if (this.reopen) clearTimeout(this.reopen);
    if (this.stream && this.backlog.length > 0) await within(deadline - Date.now(), new Promise<void>((r) => { this.emptied = r; }));
    const out = this.stream;
    this.stream = undefined;
    if (out === process.stdout) {
      if (out.writableNeedDrain) await within(deadline - Date.now(), new Promise((r) => out.once('drain', r)));
      this.detach(out);
    } else if (out) {
      // Ending lets the stream flush and close its file even past the deadline; errors now are only reported.
      out.off('drain', this.drained);
      out.off('error', this.failed);
      out.on('error', (err) => this.report(new AuditSinkError('ndjson', `closing ${this.targetName()} failed (${errorCode(err)})`, { cause: err })));
      await within(deadline - Date.now(), new Promise((r) => out.end(r)));
    }
    this.reportDrops(this.backlog.length);
    this.backlog.clear();
  }

  private detach(out: Writable): void {
    out.off('error', this.failed);
    out.off('drain', this.drained);
    // A failed file stream may still report; that must not become an uncaught 'error'.
    if (out !== process.stdout) out.on('error', () => {});
  }

  private reportDrops(unsent: number): void {
    const dropped = this.backlog.takeDropped() + this.lost + unsent;
    this.lost = 0;
    if (dropped > 0) this.report(new AuditSinkError('ndjson', `${dropped} audit events not written to ${this.targetName()} (backlog full or stream unavailable)`, { dropped }));
  }

  private targetName(): string {
    return this.target === '-' ? 'stdout' : this.target;
  }

  private report(err: AuditSinkError): void {
    try {
      this.onError(err);
    } catch {
      // The caller's handler must not turn a sink's trouble into the server's.
    }
  }
}
