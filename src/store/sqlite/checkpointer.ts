import { Worker } from 'node:worker_threads';

/** The checkpoint worker's handle: started with the store, stopped (after a last checkpoint) with it. */
export class Checkpointer {
  private readonly worker: Worker;

  constructor(path: string, key: Buffer, onError: (code: string) => void, intervalMs = 100, restartAtPages = 8192) {
    this.worker = new Worker(new URL('./checkpoint-worker.ts', import.meta.url), {
      workerData: { path, key: new Uint8Array(key), intervalMs, restartAtPages },
    });
    this.worker.on('message', (m: unknown) => {
      if (typeof m === 'object' && m !== null && 'error' in m) onError(String((m as { error: unknown }).error));
    });
    this.worker.on('error', (err) => onError((err as { code?: string }).code ?? err.name));
    // A store left open must not keep the process alive.
    this.worker.unref();
  }

  async stop(): Promise<void> {
    const stopped = new Promise<void>((resolve) => {
      this.worker.on('message', (m: unknown) => m === 'stopped' && resolve());
      this.worker.once('exit', () => resolve());
    });
    // Until the last checkpoint is done, the process must wait for it.
    this.worker.ref();
    this.worker.postMessage('stop');
    await stopped;
    await this.worker.terminate();
  }
}
