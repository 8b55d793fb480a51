import type { AuditRecord, Store } from '../store/store.ts';
import type { AuditRecordFacts } from './audit-record.ts';

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

  constructor(store: Store, onError: (err: unknown) => void) {
    this.store = store;
    this.onError = onError;
  }

  record(facts: AuditRecordFacts): void {
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
        () => {
          this.failing = false;
        },
        (err: unknown) => {
          this.failing = true;
          this.onError(err);
        },
      );
    }
    return this.flushing;
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
