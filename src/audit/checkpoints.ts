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
  private readonly copies: readonly CheckpointCopy[];
  private readonly onCopyError: (err: unknown) => void;
  private timer: NodeJS.Timeout | undefined;
  private last = -1;
  private running: Promise<void> = Promise.resolve();

  /** `copies`: the outside places each checkpoint is also written to (a failure there is reported, the checkpoint stays). */
  constructor(store: Store, key: JWK, copies: readonly CheckpointCopy[] = [], onCopyError: (err: unknown) => void = () => {}) {
    this.store = store;
    this.key = key;
    this.copies = copies;
    this.onCopyError = onCopyError;
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
      const head = await this.store.auditHead();
      if (head.count === this.last || head.count === 0) return;
      const { payload, stored } = await signCheckpoint(head, new Date().toISOString(), this.key);
      await this.store.appendAuditCheckpoint(stored);
      const line = JSON.stringify({ ...payload, jws: stored.jws });
      await Promise.all(this.copies.map((c) => c.write(payload, line).catch(this.onCopyError)));
      this.last = head.count;
    });
    return this.running;
  }
}

/** A checkpoint of `head` at `at`, signed with the audit key: its payload, and the row the trail keeps. */
export async function signCheckpoint(head: { count: number; head: Buffer }, at: string, key: JWK): Promise<{ payload: CheckpointPayload; stored: { count: number; head: Buffer; at: string; jws: string } }> {
  const payload: CheckpointPayload = { count: head.count, head: head.head.toString('hex'), at };
  const jws = await signAuditStatement(payload, key, 'bastion-audit-checkpoint');
  return { payload, stored: { count: head.count, head: head.head, at, jws } };
}

/** An outside, write-once place checkpoints are copied to. */
export interface CheckpointCopy {
  write(checkpoint: CheckpointPayload, line: string): Promise<void>;
}

/** Appends each checkpoint as a line to a file (a write-once mount, an append-only file). */
export class FileCheckpointCopy implements CheckpointCopy {
  private readonly path: string;

  constructor(path: string) {
    this.path = path;
  }

  write(_checkpoint: CheckpointPayload, line: string): Promise<void> {
    return appendFile(this.path, line + '\n', { mode: 0o600 });
  }
}

/** The payload of a checkpoint whose signature the public key verifies; undefined otherwise. */
export function verifiedCheckpoint(jws: string, publicKey: JWK): Promise<CheckpointPayload | undefined> {
  return verifiedAuditStatement<CheckpointPayload>(jws, publicKey);
}
