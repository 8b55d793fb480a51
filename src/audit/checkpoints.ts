import { appendFile } from 'node:fs/promises';
import type { JWK } from 'jose';
import { signAuditStatement, verifiedAuditStatement } from './audit-signature.ts';
import type { Store } from '../store/store.ts';

/**
 * Signed checkpoints of the audit chain: now and then (and at shutdown) the chain's head — how
 * many records, the last link, when — is signed with the audit key and kept with the trail, and
 * appended to an outside file when one is configured (a write-once location). Whoever rewrites
 * the chain from some record on, or cuts its end off, no longer matches a checkpoint, and cannot
 * sign a new one without the key.
 */
export interface CheckpointPayload {
  count: number;
  /** The last link, hex. */
  head: string;
  at: string;
}

export class AuditCheckpoints {
  private readonly store: Store;
  private readonly key: JWK;
  private readonly file: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private last = -1;
  private running: Promise<void> = Promise.resolve();

  constructor(store: Store, key: JWK, file?: string) {
    this.store = store;
    this.key = key;
    this.file = file;
  }

  /** Checkpoints every `seconds` from now on (not holding the process open). */
  start(seconds: number, onError: (err: unknown) => void): void {
    this.timer = setInterval(() => void this.checkpoint().catch(onError), seconds * 1000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.checkpoint();
  }

  /** Signs and keeps the head now, unless nothing was appended since the last checkpoint. */
  checkpoint(): Promise<void> {
    this.running = this.running.then(async () => {
      const { count, head } = await this.store.auditHead();
      if (count === this.last || count === 0) return;
      const payload: CheckpointPayload = { count, head: head.toString('hex'), at: new Date().toISOString() };
      const jws = await signAuditStatement(payload, this.key, 'bastion-audit-checkpoint');
      await this.store.appendAuditCheckpoint({ count, head, at: payload.at, jws });
      if (this.file) await appendFile(this.file, JSON.stringify({ ...payload, jws }) + '\n', { mode: 0o600 });
      this.last = count;
    });
    return this.running;
  }
}

/** The payload of a checkpoint whose signature the public key verifies; undefined otherwise. */
export function verifiedCheckpoint(jws: string, publicKey: JWK): Promise<CheckpointPayload | undefined> {
  return verifiedAuditStatement<CheckpointPayload>(jws, publicKey);
}
