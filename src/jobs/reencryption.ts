import { existsSync, readFileSync, unwatchFile, watchFile } from 'node:fs';
import { writeFileDurably } from '../crypto/durable-file.ts';
import { join } from 'node:path';
import type { DataKeys, KeyPurpose } from '../crypto/data-keys.ts';
import { dataKeysFile } from '../crypto/open-keys.ts';
import type { ReencryptProgress, Store } from '../store/store.ts';
import type { AuthEvent } from '../auth/auth-events.ts';
import { createHash } from 'node:crypto';

/** The purposes whose ciphertexts live in the stored versions, and so are re-encrypted by this job. */
const rewrittenPurposes: KeyPurpose[] = ['resource-body', 'identifier'];

interface Completed {
  /** The key versions and setting the store was last brought up to. */
  state: string;
  at: string;
}

/**
 * Keeps the stored versions under the current keys: after `bastion keys rotate` (the server takes
 * the new keys from data-keys.json within seconds) or a change of `encryptResourceBodies`, a
 * background pass re-encrypts them in small batches between requests, logs its progress, and
 * then retires the key versions nothing uses any more. Every step is recorded in the audit trail.
 */
export class ReencryptionJob {
  private readonly store: Store;
  private readonly keys: DataKeys;
  private readonly dataDir: string;
  private readonly sealed: boolean;
  private readonly identifiers: string;
  private readonly record: (event: AuthEvent) => void;
  private readonly log: (message: string) => void;
  private running: Promise<void> | undefined;
  private current: ReencryptProgress | undefined;
  private stopWatching: (() => void) | undefined;

  constructor(options: { store: Store; keys: DataKeys; dataDir: string; sealed: boolean; sensitiveIdentifiers: readonly string[]; record: (event: AuthEvent) => void; log: (message: string) => void }) {
    this.store = options.store;
    this.keys = options.keys;
    this.dataDir = options.dataDir;
    this.sealed = options.sealed;
    this.identifiers = identifiersDigest(options.sensitiveIdentifiers);
    this.record = options.record;
    this.log = options.log;
  }

  /**
   * Before serving: when the sensitive identifiers' expressions changed since the store was last
   * brought up to date, the search index is rebuilt (values newly selected leave it for their blind
   * index); the pass that `start` then runs encrypts them in the stored versions.
   */
  async prepare(): Promise<void> {
    const completed = this.completedState();
    if (completed && identifiersPart(completed) !== this.identifiers) {
      this.log('the sensitive identifiers changed: re-indexing before serving');
      await this.store.reindex();
    }
  }

  /** Runs a pass now if the store was not yet brought up to the current keys, and again whenever the keys change. */
  start(intervalMs = 2000): void {
    if (this.completedState() !== this.state()) this.run();
    const file = dataKeysFile(this.dataDir);
    const changed = () => void this.keysChanged();
    watchFile(file, { interval: intervalMs, persistent: false }, changed);
    this.stopWatching = () => unwatchFile(file, changed);
  }

  /** The pass under way, if any. */
  progress(): ReencryptProgress | undefined {
    return this.current && { ...this.current };
  }

  /** Resolves once the pass under way (if any) has finished. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  async stop(): Promise<void> {
    this.stopWatching?.();
    await this.idle();
  }

  private async keysChanged(): Promise<void> {
    let added: string[];
    try {
      added = await this.keys.reload();
    } catch (err) {
      this.log(`data keys changed but could not be loaded: ${(err as Error).message}`);
      return;
    }
    if (added.length === 0) return;
    this.record({ kind: 'keys-unwrapped', who: 'system', address: 'server', success: true, detail: `new=${added.join(',')}` });
    if (added.some((id) => rewrittenPurposes.some((p) => id.startsWith(`${p}.`)))) this.run();
  }

  private run(): void {
    if (this.running || !this.store.reencrypt) return;
    const started = Date.now();
    this.running = this.pass().then(
      (done) => {
        const seconds = (Date.now() - started) / 1000;
        this.log(`re-encryption finished: ${done.rewritten} of ${done.examined} versions rewritten in ${seconds.toFixed(1)} s`);
        this.record({ kind: 'reencrypted', who: 'system', address: 'server', success: true, detail: `examined=${done.examined} rewritten=${done.rewritten} keys=${this.state()}` });
      },
      (err: unknown) => {
        this.log(`re-encryption stopped: ${(err as Error).message}`);
        this.record({ kind: 'reencrypted', who: 'system', address: 'server', success: false, detail: `error=${(err as Error).name}` });
      },
    ).finally(() => {
      this.running = undefined;
      this.current = undefined;
    });
  }

  private async pass(): Promise<ReencryptProgress> {
    const state = this.state();
    let lastLog = 0;
    const done = await this.store.reencrypt!((p) => {
      this.current = p;
      if (Date.now() - lastLog > 5000) {
        lastLog = Date.now();
        this.log(`re-encryption: ${p.examined} of ${p.total} versions examined, ${p.rewritten} rewritten`);
      }
    });
    if (done.unreadable > 0) {
      // Altered rows still name their keys: retiring those would make the damage permanent.
      this.log(`re-encryption: ${done.unreadable} stored versions do not decrypt (altered?); older keys are kept`);
      this.record({ kind: 'reencrypted', who: 'system', address: 'server', success: false, detail: `unreadable=${done.unreadable}` });
      return done;
    }
    // Keys rotated again meanwhile: the next pass (already triggered) finishes the work.
    if (state === this.state()) {
      await this.retireUnused();
      this.markCompleted(state);
    }
    return done;
  }

  /** Every version examined is under the current keys now: older body and identifier keys decrypt nothing any more. */
  private async retireUnused(): Promise<void> {
    for (const purpose of rewrittenPurposes) {
      for (const id of await this.keys.retireSuperseded(purpose)) {
        this.record({ kind: 'key-retired', who: 'system', address: 'server', success: true, detail: `key=${id} reason=nothing-encrypted-under-it` });
      }
    }
  }

  private state(): string {
    return [...rewrittenPurposes.map((p) => this.keys.current(p).id), this.sealed ? 'sealed' : 'text', `ids:${this.identifiers}`].join(' ');
  }

  private completedState(): string | undefined {
    return completedState(this.dataDir);
  }

  private markCompleted(state: string): void {
    const file = join(this.dataDir, 'reencryption.json');
    const completed: Completed = { state, at: new Date().toISOString() };
    writeFileDurably(file, JSON.stringify(completed) + '\n');
  }
}

function identifiersDigest(expressions: readonly string[]): string {
  return createHash('sha256').update(JSON.stringify(expressions)).digest('hex').slice(0, 16);
}

function identifiersPart(state: string): string | undefined {
  return /(?:^| )ids:([0-9a-f]+)/.exec(state)?.[1];
}

function completedState(dataDir: string): string | undefined {
  const file = join(dataDir, 'reencryption.json');
  if (!existsSync(file)) return undefined;
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as Completed).state;
  } catch {
    return undefined;
  }
}

/**
 * Why a console command must not rewrite the store with these settings: the server last brought
 * it up to date with others (sealing, sensitive identifiers), which the command would undo.
 */
export function atRestMismatch(dataDir: string, settings: { encryptResourceBodies: boolean; sensitiveIdentifiers: readonly string[] }): string | undefined {
  const state = completedState(dataDir);
  if (!state) return undefined;
  const sealed = state.split(' ').includes('sealed');
  if (sealed !== settings.encryptResourceBodies) return `the server keeps resource bodies ${sealed ? 'sealed' : 'as text'}; run with its configuration (encryptResourceBodies=${sealed})`;
  const ids = identifiersPart(state);
  if (ids !== undefined && ids !== identifiersDigest(settings.sensitiveIdentifiers)) return 'the server protects other sensitive identifiers than this configuration names; run with its configuration (sensitiveIdentifiers)';
  return undefined;
}

/** Whether the server last brought the store up to date with bodies as text (sealing deliberately off). */
export function completedAsText(dataDir: string): boolean {
  return completedState(dataDir)?.split(' ').includes('text') ?? false;
}
