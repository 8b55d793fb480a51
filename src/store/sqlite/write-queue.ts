import type { Db } from './open.ts';

interface Job {
  work: () => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (reason: unknown) => void;
}

/**
 * Group commit: transactions that arrive while one is running are run one after another inside a
 * single SQLite transaction, each in its own savepoint, and committed with one fsync. A job that
 * throws rolls back to its savepoint only; no job sees its promise settle before the commit.
 */
export class WriteQueue {
  private readonly db: Db;
  private readonly maxBatch: number;
  private pending: Job[] = [];
  private running = false;

  constructor(db: Db, maxBatch = 64) {
    this.db = db;
    this.maxBatch = maxBatch;
  }

  run<T>(work: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ work, resolve: resolve as (v: unknown) => void, reject });
      if (!this.running) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.pending.length > 0) {
        const batch = this.pending.splice(0, this.maxBatch);
        await this.runBatch(batch);
      }
    } finally {
      this.running = false;
    }
  }

  private async runBatch(batch: Job[]): Promise<void> {
    const outcomes: { ok: boolean; value: unknown }[] = [];
    try {
      this.db.exec('BEGIN IMMEDIATE');
    } catch (err) {
      for (const job of batch) job.reject(err);
      return;
    }
    for (const job of batch) {
      this.db.exec('SAVEPOINT job');
      try {
        const value = await job.work();
        this.db.exec('RELEASE job');
        outcomes.push({ ok: true, value });
      } catch (err) {
        this.db.exec('ROLLBACK TO job');
        this.db.exec('RELEASE job');
        outcomes.push({ ok: false, value: err });
      }
    }
    try {
      this.db.exec('COMMIT');
    } catch (err) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      for (const job of batch) job.reject(err);
      return;
    }
    batch.forEach((job, i) => (outcomes[i].ok ? job.resolve(outcomes[i].value) : job.reject(outcomes[i].value)));
  }
}
