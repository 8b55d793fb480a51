import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { withFileLock, writeFileDurably } from './durable-file.ts';
import { KeyProviderError, type KeyProvider, type WrappedKey } from './key-provider.ts';

/**
 * What each data key is for. Each purpose has its own key (a leak of one does not open the others)
 * and its own versions: rotating one re-encrypts only what it protects.
 */
export const keyPurposes = ['store-file', 'resource-body', 'identifier', 'blind-index', 'pseudonym', 'cookie', 'signing', 'auth-record'] as const;
export type KeyPurpose = (typeof keyPurposes)[number];

/** A data key version: `resource-body.3`. Ciphertexts name it, so any version in use still decrypts. */
export interface DataKey {
  id: string;
  /** The version alone, as ciphertexts carry it. */
  version: number;
  key: Buffer;
}

interface StoredVersion {
  version: number;
  created: string;
  wrapped: WrappedKey;
  /** Set once nothing is encrypted under it any more; it no longer decrypts. */
  retired?: string;
}

interface DataKeysFile {
  format: 'bastion-data-keys/1';
  keys: Partial<Record<KeyPurpose, StoredVersion[]>>;
}

/** Keys a data dir had before the keyring (the `store.key` file and what was derived from it), kept so existing data stays readable. */
export type LegacyKeys = Partial<Record<KeyPurpose, Buffer>>;

export class UnknownDataKeyError extends Error {}

/**
 * The data keys of a data dir (`data-keys.json`): random 256-bit keys, stored only wrapped by the
 * key provider's KEK, unwrapped once at open and held in memory. The file names each key's KEK
 * version, so rotating the KEK means re-wrapping these few keys, never re-encrypting data.
 */
export class DataKeys {
  readonly provider: KeyProvider;
  readonly #path: string;
  #file: DataKeysFile;
  readonly #plain = new Map<string, Buffer>();

  private constructor(path: string, provider: KeyProvider, file: DataKeysFile) {
    this.#path = path;
    this.provider = provider;
    this.#file = file;
  }

  /** Opens the data keys, making any purpose that has none yet (from `legacy` where given, so old data stays readable). */
  static async open(path: string, provider: KeyProvider, legacy: LegacyKeys = {}): Promise<DataKeys> {
    const keys = new DataKeys(path, provider, { format: 'bastion-data-keys/1', keys: {} });
    await keys.#change(async (file) => {
      for (const purpose of keyPurposes) if (!file.keys[purpose]?.length) await keys.#add(file, purpose, legacy[purpose] ?? randomBytes(32));
    });
    return keys;
  }

  /** The version new encryption uses. */
  current(purpose: KeyPurpose): DataKey {
    const latest = this.#versions(purpose).filter((v) => !v.retired).at(-1)!;
    const id = idOf(purpose, latest.version);
    return { id, version: latest.version, key: this.key(id) };
  }

  /** A version by id, for decrypting what it encrypted. */
  key(id: string): Buffer {
    const key = this.#plain.get(id);
    if (!key) throw new UnknownDataKeyError(`No data key ${id} (unknown, or retired): the data it encrypted cannot be read with these keys`);
    return key;
  }

  /** Every version of a purpose that still decrypts, oldest first. */
  liveIds(purpose: KeyPurpose): string[] {
    return this.#versions(purpose).filter((v) => !v.retired).map((v) => idOf(purpose, v.version));
  }

  /** A new version of a purpose, current from now on; older ones still decrypt. */
  async rotate(purpose: KeyPurpose): Promise<DataKey> {
    await this.#change(async (file) => {
      await this.#add(file, purpose, randomBytes(32));
    });
    return this.current(purpose);
  }

  /** Re-wraps every data key under the provider's current KEK (after the KEK was rotated). Returns how many. */
  async rewrap(): Promise<number> {
    let count = 0;
    await this.#change(async (file) => {
      for (const purpose of keyPurposes) {
        for (const v of file.keys[purpose] ?? []) {
          if (v.retired) continue;
          v.wrapped = await this.provider.wrap(this.key(idOf(purpose, v.version)), contextOf(purpose, v.version));
          count++;
        }
      }
    });
    return count;
  }

  /** Drops a version nothing is encrypted under any more (the caller has checked); the current one cannot be retired. */
  async retire(id: string): Promise<void> {
    const [purpose, version] = parseId(id);
    await this.#change(async (file) => {
      const list = file.keys[purpose] ?? [];
      const live = list.filter((v) => !v.retired);
      if (live.at(-1)?.version === version) throw new KeyProviderError(`${id} is the current ${purpose} key; rotate first`);
      const stored = live.find((v) => v.version === version);
      if (!stored) throw new UnknownDataKeyError(`No live data key ${id}`);
      stored.retired = new Date().toISOString();
      stored.wrapped = { provider: stored.wrapped.provider, kek: stored.wrapped.kek, ciphertext: '' };
    });
  }

  /** Retires every live version of a purpose but the current one (the caller has checked nothing uses them); returns their ids. */
  async retireSuperseded(purpose: KeyPurpose): Promise<string[]> {
    const superseded = this.liveIds(purpose).slice(0, -1);
    for (const id of superseded) await this.retire(id);
    return superseded;
  }

  /** Each purpose's current version and when it was made (the compliance checks flag keys older than a quarter). */
  ages(): { purpose: KeyPurpose; id: string; created: string }[] {
    return keyPurposes.map((purpose) => {
      const v = this.#versions(purpose).filter((s) => !s.retired).at(-1)!;
      return { purpose, id: idOf(purpose, v.version), created: v.created };
    });
  }

  /**
   * Takes what another process changed (a `bastion keys rotate` beside the running server). All or
   * nothing: until every new version unwraps, the keys in use stay as they were.
   */
  async reload(): Promise<string[]> {
    const before = new Set(this.#plain.keys());
    await this.#adopt(readKeysFile(this.#path));
    return [...this.#plain.keys()].filter((id) => !before.has(id));
  }

  /**
   * Every change goes through here: under the file's lock, the file as it is on disk now (another
   * process may have changed it), `change` applied, saved durably, then taken as current.
   */
  async #change(change: (file: DataKeysFile) => Promise<void>): Promise<void> {
    await withFileLock(this.#path, async () => {
      const file = existsSync(this.#path) ? readKeysFile(this.#path) : { format: 'bastion-data-keys/1' as const, keys: {} };
      await this.#adopt(file);
      const before = JSON.stringify(file);
      await change(file);
      if (JSON.stringify(file) !== before) writeFileDurably(this.#path, JSON.stringify(file, null, 2) + '\n');
      await this.#adopt(file);
    });
  }

  async #add(file: DataKeysFile, purpose: KeyPurpose, key: Buffer): Promise<string> {
    const list = (file.keys[purpose] ??= []);
    const version = (list.at(-1)?.version ?? 0) + 1;
    list.push({ version, created: new Date().toISOString(), wrapped: await this.provider.wrap(key, contextOf(purpose, version)) });
    const id = idOf(purpose, version);
    this.#plain.set(id, key);
    return id;
  }

  /** Unwraps what `file` has and this process does not, then makes `file` the one in use. */
  async #adopt(file: DataKeysFile): Promise<void> {
    const unwrapped = new Map<string, Buffer>();
    for (const purpose of keyPurposes) {
      for (const v of file.keys[purpose] ?? []) {
        const id = idOf(purpose, v.version);
        if (!v.retired && !this.#plain.has(id)) unwrapped.set(id, await this.provider.unwrap(v.wrapped, contextOf(purpose, v.version)));
      }
    }
    for (const [id, key] of unwrapped) this.#plain.set(id, key);
    for (const purpose of keyPurposes) {
      for (const v of file.keys[purpose] ?? []) {
        const id = idOf(purpose, v.version);
        if (v.retired && this.#plain.has(id)) {
          this.#plain.get(id)!.fill(0);
          this.#plain.delete(id);
        }
      }
    }
    this.#file = file;
  }

  #versions(purpose: KeyPurpose): StoredVersion[] {
    const list = this.#file.keys[purpose];
    if (!list?.length) throw new UnknownDataKeyError(`No ${purpose} key`);
    return list;
  }
}

function readKeysFile(path: string): DataKeysFile {
  try {
    const file = JSON.parse(readFileSync(path, 'utf8')) as DataKeysFile;
    if (file.format !== 'bastion-data-keys/1' || typeof file.keys !== 'object') throw new Error('unknown format');
    return file;
  } catch (err) {
    throw new KeyProviderError(`${path} is not a Bastion data key file (${(err as Error).message})`);
  }
}

const idOf = (purpose: KeyPurpose, version: number) => `${purpose}.${version}`;
/** Bound to each wrapped key: a wrapped key moved to another purpose or version does not unwrap. */
const contextOf = (purpose: KeyPurpose, version: number) => `bastion:data-key:${idOf(purpose, version)}`;

function parseId(id: string): [KeyPurpose, number] {
  const m = /^([a-z-]+)\.(\d+)$/.exec(id);
  if (!m || !(keyPurposes as readonly string[]).includes(m[1])) throw new UnknownDataKeyError(`Not a data key id: ${id}`);
  return [m[1] as KeyPurpose, Number(m[2])];
}
