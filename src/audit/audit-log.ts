import type { AuditRecord, Store } from '../store/store.ts';
import type { AuditRecordFacts } from './audit-record.ts';
import type { AuditSink } from './sinks/audit-sink.ts';
import { auditEventOf } from './audit-read.ts';
import { redactIdentifierValues } from './redact-query.ts';

/**
 * Buffers audit records and appends them in batches, so auditing costs one insert per batch
 * rather than a commit per request. `flush` is awaited on shutdown so nothing is lost.
 */
export class AuditLog {
  private readonly store: Store;
  private buffer: AuditRecord[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private failing = false;
  private readonly onError: (err: unknown) => void;
  private readonly sinks: readonly AuditSink[];
  private readonly node: string | undefined;

  /**
   * `sinks` (a SIEM's stream, syslog) get each batch once it is committed to the chained trail.
   * `node`: this node's name, on each record, where several nodes append to one trail.
   */
  constructor(store: Store, onError: (err: unknown) => void, sinks: readonly AuditSink[] = [], node?: string) {
    this.store = store;
    this.onError = onError;
    this.sinks = sinks;
    this.node = node;
  }

  record(facts: AuditRecordFacts): void {
    if (this.node && facts.node === undefined) facts.node = this.node;
    if (facts.q && this.store.blindIndex) facts.q = redactIdentifierValues(facts.q, (v) => this.store.blindIndex!(v));
    this.buffer.push({ recorded: facts.at, json: JSON.stringify(facts) });
    if (this.buffer.length >= 512) void this.flush();
    else if (!this.timer) this.timer = setTimeout(() => void this.flush(), 20);
  }

  flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const batch = this.buffer;
    this.buffer = [];
    if (batch.length > 0) {
      this.flushing = this.flushing.then(() => this.store.appendAudit(batch)).then(
        (first) => {
          this.failing = false;
          this.deliver(batch, first);
        },
        (err: unknown) => {
          this.failing = true;
          this.onError(err);
        },
      );
    }
    return this.flushing;
  }

  /** Flushes what is buffered, then lets the sinks send what they hold. */
  async close(): Promise<void> {
    await this.flush();
    await Promise.all(this.sinks.map((s) => s.close()));
  }

  private deliver(batch: AuditRecord[], first: number): void {
    if (this.sinks.length === 0 || first === 0) return;
    const events = batch.map((r, i) => ({ seq: first + i, event: auditEventOf({ ...r, seq: first + i }) }));
    for (const sink of this.sinks) sink.write(events);
  }

  /**
   * Whether the last append failed: until one succeeds again, the trail may be losing records
   * (see the fail-closed check in rest/pipeline.ts).
   */
  get unwritable(): boolean {
    return this.failing;
  }
}

/** After a transaction Bundle: its entries' events, as successes if it committed, as failures if not. */
export function settleTransactionAudit(audit: AuditLog, events: AuditRecordFacts[], committed: boolean): void {
  for (const facts of events) {
    if (!committed && facts.st < 400) facts.why = 'Not applied: the transaction it belonged to failed and was rolled back';
    audit.record(facts);
  }
}
