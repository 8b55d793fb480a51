import { Worker } from 'node:worker_threads';
import type { AuditRecord } from '../store.ts';
import type { AppendMessage } from './audit-worker.ts';

type Reply = { id: number; first?: number; error?: string } | 'stopped';

/** The request thread's handle on the audit worker (audit-worker.ts): append batches, await their commit. */
export class AuditWriter {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, { resolve: (first: number) => void; reject: (err: Error) => void }>();
  private nextId = 1;
  private stopped: Promise<void> | undefined;

  constructor(path: string, key: Buffer) {
    this.worker = new Worker(new URL('./audit-worker.ts', import.meta.url), { workerData: { path, key: new Uint8Array(key) } });
    this.worker.on('message', (reply: Reply) => {
      if (reply === 'stopped') return;
      const w = this.waiting.get(reply.id);
      this.waiting.delete(reply.id);
      if (this.waiting.size === 0) this.worker.unref();
      if (reply.error) w?.reject(new Error(`audit append failed: ${reply.error}`));
      else w?.resolve(reply.first ?? 0);
    });
    this.worker.on('error', (err) => this.failAll(err));
    this.worker.on('exit', () => this.failAll(new Error('the audit worker stopped')));
    this.worker.unref();
  }

  /** Appends a batch; resolves, once it is committed, with the position of its first record. */
  append(records: AuditRecord[]): Promise<number> {
    if (this.stopped) return Promise.reject(new Error('the audit log is closed'));
    if (records.length === 0) return Promise.resolve(0);
    const id = this.nextId++;
    const message: AppendMessage = { id, records: records.map((r) => [r.recorded, r.json]) };
    return new Promise<number>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      // While an append is outstanding the process must not exit under it.
      this.worker.ref();
      this.worker.postMessage(message);
    });
  }

  close(): Promise<void> {
    this.stopped ??= new Promise<void>((resolve) => {
      this.worker.ref();
      this.worker.once('exit', () => resolve());
      this.worker.on('message', (m: Reply) => m === 'stopped' && void this.worker.terminate());
      // Messages are handled in order: every append sent before this is committed first.
      this.worker.postMessage('stop');
    });
    return this.stopped;
  }

  private failAll(err: Error): void {
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
  }
}
