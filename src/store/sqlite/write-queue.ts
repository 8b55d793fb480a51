import type { Db } from './open.ts';
import type Database from 'better-sqlite3-multiple-ciphers';

interface Job {
  work: () => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (reason: unknown) => void;
}

/**
 * Group commit: transactions that arrive together (in one turn of the event loop, or while a batch
 * runs) run one after another inside a single SQLite transaction, each in its own savepoint. A job
 * that throws rolls back to its savepoint only. No job's promise settles before its batch is
 * committed and `durable` (the WAL sync) has resolved; the next batch need not wait for that sync.
 */
export class WriteQueue {
  private readonly db: Db;
  private readonly durable: () => Promise<void>;
  private readonly maxBatch: number;
  private readonly sql: Record<'begin' | 'savepoint' | 'release' | 'rollbackTo' | 'commit' | 'rollback', Database.Statement>;
  private pending: Job[] = [];
  private running = false;

  constructor(db: Db, durable: () => Promise<void>, maxBatch = 64) {
    this.db = db;
    this.durable = durable;
    this.maxBatch = maxBatch;
    // Prepared once: compiling these on every job was a measurable share of a write's cost.
    this.sql = {
      begin: db.prepare('BEGIN IMMEDIATE'),
      savepoint: db.prepare('SAVEPOINT job'),
      release: db.prepare('RELEASE job'),
      rollbackTo: db.prepare('ROLLBACK TO job'),
      commit: db.prepare('COMMIT'),
      rollback: db.prepare('ROLLBACK'),
    };
  }

  run<T>(work: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ work, resolve: resolve as (v: unknown) => void, reject });
      if (!this.running) {
        this.running = true;
        // Wait for the rest of this turn's I/O, so requests that arrived together commit together.
        setImmediate(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
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
    const { sql } = this;
    try {
      sql.begin.run();
    } catch (err) {
      for (const job of batch) job.reject(err);
      return;
    }
    for (const job of batch) {
      sql.savepoint.run();
      try {
        const value = await job.work();
        sql.release.run();
        outcomes.push({ ok: true, value });
      } catch (err) {
        sql.rollbackTo.run();
        sql.release.run();
        outcomes.push({ ok: false, value: err });
      }
    }
    try {
      sql.commit.run();
    } catch (err) {
      if (this.db.inTransaction) sql.rollback.run();
      for (const job of batch) job.reject(err);
      return;
    }
    const settle = () => batch.forEach((job, i) => (outcomes[i].ok ? job.resolve(outcomes[i].value) : job.reject(outcomes[i].value)));
    // A failed sync means the commit may not survive a crash: nobody may be told it succeeded.
    this.durable().then(settle, (err: unknown) => batch.forEach((job) => job.reject(err)));
  }
}
