import { open, type FileHandle } from 'node:fs/promises';

/**
 * Makes commits durable without stopping the event loop. The writer connection runs with
 * `synchronous = NORMAL`, under which a WAL commit skips the one fsync that FULL adds; this does
 * that fsync on libuv's thread pool instead, and the write queue acknowledges a commit only after
 * a sync that began after it. So the guarantee is FULL's (acknowledged = on disk) while requests
 * keep being parsed and served during the sync, and commits that land meanwhile share the next one.
 */
export class WalSync {
  private readonly walPath: string;
  private file: FileHandle | undefined;
  private running: Promise<void> | undefined;
  private queued: Promise<void> | undefined;

  constructor(databasePath: string) {
    this.walPath = `${databasePath}-wal`;
  }

  /** Resolves once everything committed before the call is on disk. */
  sync(): Promise<void> {
    if (this.queued) return this.queued;
    if (!this.running) return this.start();
    // A sync already under way may have begun before the caller's commit: wait for the next one.
    const next = () => {
      this.queued = undefined;
      return this.start();
    };
    this.queued = this.running.then(next, next);
    return this.queued;
  }

  async close(): Promise<void> {
    await this.queued?.catch(() => undefined);
    await this.running?.catch(() => undefined);
    await this.file?.close();
    this.file = undefined;
  }

  private start(): Promise<void> {
    const run = this.syncOnce().finally(() => {
      if (this.running === run) this.running = undefined;
    });
    this.running = run;
    return run;
  }

  private async syncOnce(): Promise<void> {
    // fdatasync flushes the inode's data whichever descriptor asks, so one read-only handle serves.
    this.file ??= await open(this.walPath, 'r');
    await this.file.datasync();
  }
}
