import { randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';
import { aesGcmOpen, aesGcmSeal } from '../aead.ts';
import { existsSync, readFileSync } from 'node:fs';
import { createFileDurably, writeFileDurably } from '../durable-file.ts';
import { KeyProviderError, type KekVersion, type KeyProvider, type WrappedKey } from '../key-provider.ts';

/** How the local keyring's master key is given. */
export type MasterKeySource =
  /** 32 bytes, hex or base64 (BASTION_MASTER_KEY). */
  | { kind: 'key'; key: Buffer; origin: string }
  /** A passphrase stretched with scrypt (BASTION_MASTER_PASSPHRASE). */
  | { kind: 'passphrase'; passphrase: string }
  /** A key file (development default: `master.key` in the data dir, made on first start). */
  | { kind: 'file'; path: string };

interface KeyringFile {
  format: 'bastion-local-keyring/1';
  /** How the master key is made from what the operator gives: given as is, or scrypt over a passphrase. */
  master: { kdf: 'none' } | { kdf: 'scrypt'; salt: string; N: number; r: number; p: number };
  /** A known value sealed under the master key: a wrong master key is told apart from a damaged file. */
  check: string;
  versions: { id: string; created: string; key: string }[];
}

const scryptParams = { N: 2 ** 17, r: 8, p: 1 };
const checkText = 'bastion local keyring';

/**
 * The default KeyProvider: KEKs in a file of the data dir (`keyring.json`), each sealed with
 * AES-256-GCM under a master key that is not in that file (an environment variable, a passphrase,
 * or, for development, `master.key`). It exists so that a single machine still has envelope
 * encryption and rotation; production keeps its KEKs in Vault, KMS or an HSM instead.
 */
export class LocalKeyring implements KeyProvider {
  readonly kind = 'local';
  readonly #path: string;
  readonly #source: MasterKeySource;
  #master: Buffer | undefined;
  #file: KeyringFile | undefined;

  constructor(path: string, source: MasterKeySource) {
    this.#path = path;
    this.#source = source;
  }

  /** Reads the keyring, or makes it with a first KEK; throws KeyProviderError when the master key does not open it. */
  async open(): Promise<void> {
    if (this.#file) return;
    if (!existsSync(this.#path)) {
      this.#create();
      return;
    }
    let file: KeyringFile;
    try {
      file = JSON.parse(readFileSync(this.#path, 'utf8')) as KeyringFile;
      if (file.format !== 'bastion-local-keyring/1' || !Array.isArray(file.versions)) throw new Error('unknown format');
    } catch (err) {
      throw new KeyProviderError(`${this.#path} is not a Bastion keyring (${(err as Error).message})`);
    }
    const master = this.#masterKey(file.master);
    let check: Buffer;
    try {
      check = open(master, file.check, 'check');
    } catch {
      throw new KeyProviderError(`The master key does not open ${this.#path}: ${describe(this.#source)} is not the one it was made with`);
    }
    if (!timingSafeEqual(check, Buffer.from(checkText))) throw new KeyProviderError(`${this.#path} is damaged`);
    this.#master = master;
    this.#file = file;
  }

  async wrap(dataKey: Buffer, context: string): Promise<WrappedKey> {
    const current = this.#current();
    return { provider: this.kind, kek: current.id, ciphertext: seal(this.#kek(current.id), dataKey, context) };
  }

  async unwrap(wrapped: WrappedKey, context: string): Promise<Buffer> {
    if (wrapped.provider !== this.kind) throw new KeyProviderError(`A key wrapped by ${wrapped.provider} cannot be unwrapped by the local keyring`);
    try {
      return open(this.#kek(wrapped.kek), wrapped.ciphertext, context);
    } catch (err) {
      if (err instanceof KeyProviderError) throw err;
      throw new KeyProviderError(`The key wrapped under ${wrapped.kek} does not unwrap: it was altered, or wrapped for another purpose`);
    }
  }

  async rotate(): Promise<KekVersion> {
    const file = this.#opened();
    const id = `local:${file.versions.length + 1}`;
    const created = new Date().toISOString();
    file.versions.push({ id, created, key: seal(this.#master!, randomBytes(32), id) });
    this.#save(file);
    return { id, created, current: true };
  }

  async versions(): Promise<KekVersion[]> {
    const file = this.#opened();
    const last = file.versions.at(-1)?.id;
    return file.versions.map((v) => ({ id: v.id, created: v.created, current: v.id === last }));
  }

  /**
   * Seals the keyring under another master key (moving off the development `master.key`, or a
   * master key rotation): every KEK version is opened with the current master key and sealed again.
   */
  changeMaster(next: MasterKeySource): void {
    const file = this.#opened();
    const master = next.kind === 'passphrase'
      ? { kdf: 'scrypt' as const, salt: randomBytes(16).toString('base64'), ...scryptParams }
      : { kdf: 'none' as const };
    const nextRing = new LocalKeyring(this.#path, next);
    const key = nextRing.#masterKey(master);
    const versions = file.versions.map((v) => ({ ...v, key: seal(key, open(this.#master!, v.key, v.id), v.id) }));
    this.#save({ ...file, master, check: seal(key, Buffer.from(checkText), 'check'), versions });
    this.#master = key;
  }

  /** Where the master key comes from, for the compliance checks (a file beside the data is weaker). */
  get masterKeySource(): MasterKeySource['kind'] {
    return this.#source.kind;
  }

  #create(): void {
    const master = this.#source.kind === 'passphrase'
      ? { kdf: 'scrypt' as const, salt: randomBytes(16).toString('base64'), ...scryptParams }
      : { kdf: 'none' as const };
    const key = this.#masterKey(master);
    const id = 'local:1';
    const file: KeyringFile = {
      format: 'bastion-local-keyring/1',
      master,
      check: seal(key, Buffer.from(checkText), 'check'),
      versions: [{ id, created: new Date().toISOString(), key: seal(key, randomBytes(32), id) }],
    };
    this.#master = key;
    this.#save(file);
  }

  #masterKey(master: KeyringFile['master']): Buffer {
    const source = this.#source;
    if (source.kind === 'passphrase') {
      if (master.kdf !== 'scrypt') throw new KeyProviderError(`${this.#path} was made with a master key, not a passphrase: set BASTION_MASTER_KEY`);
      return scryptSync(source.passphrase.normalize('NFKC'), Buffer.from(master.salt, 'base64'), 32, { N: master.N, r: master.r, p: master.p, maxmem: 256 * 1024 * 1024 });
    }
    if (master.kdf !== 'none') throw new KeyProviderError(`${this.#path} was made with a passphrase: set BASTION_MASTER_PASSPHRASE`);
    return source.kind === 'key' ? source.key : masterKeyFile(source.path, !existsSync(this.#path));
  }

  #kek(id: string): Buffer {
    let version = this.#opened().versions.find((v) => v.id === id);
    // A KEK another process added (`bastion keys rotate` beside the running server): read the file again.
    if (!version) version = this.#reread().versions.find((v) => v.id === id);
    if (!version) throw new KeyProviderError(`The local keyring has no key-encryption key ${id}`);
    return open(this.#master!, version.key, id);
  }

  #reread(): KeyringFile {
    const file = JSON.parse(readFileSync(this.#path, 'utf8')) as KeyringFile;
    // Same master key and check value, or it is not this keyring any more.
    if (JSON.stringify(file.master) !== JSON.stringify(this.#opened().master)) throw new KeyProviderError(`${this.#path} was changed to another master key: restart with it`);
    open(this.#master!, file.check, 'check');
    this.#file = file;
    return file;
  }

  #current(): KeyringFile['versions'][number] {
    return this.#opened().versions.at(-1)!;
  }

  #opened(): KeyringFile {
    if (!this.#file) throw new KeyProviderError('The local keyring is not open');
    return this.#file;
  }

  #save(file: KeyringFile): void {
    writeFileDurably(this.#path, JSON.stringify(file, null, 2) + '\n');
    this.#file = file;
  }
}

/** The development master key file: 32 random bytes (hex), owner-only, made with a new keyring only. */
function masterKeyFile(path: string, newKeyring: boolean): Buffer {
  if (!existsSync(path)) {
    if (!newKeyring) throw new KeyProviderError(`No master key for the existing keyring: set BASTION_MASTER_KEY or BASTION_MASTER_PASSPHRASE (or restore ${path})`);
    createFileDurably(path, randomBytes(32).toString('hex') + '\n');
  }
  const hex = readFileSync(path, 'utf8').trim();
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new KeyProviderError(`${path} does not hold a 256-bit hex key`);
  return Buffer.from(hex, 'hex');
}

/** `BASTION_MASTER_KEY`: 32 bytes as 64 hex digits or base64. */
export function parseMasterKey(text: string): Buffer {
  const t = text.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(t) ? Buffer.from(t, 'hex') : /^[A-Za-z0-9+/_-]{43}=?$/.test(t) ? Buffer.from(t, 'base64') : undefined;
  if (key?.length !== 32) throw new KeyProviderError('BASTION_MASTER_KEY must be 32 bytes: 64 hex digits or 44 base64 characters');
  return key;
}

function describe(source: MasterKeySource): string {
  return source.kind === 'key' ? source.origin : source.kind === 'passphrase' ? 'the passphrase (BASTION_MASTER_PASSPHRASE)' : source.path;
}

/** `base64(nonce | ciphertext | tag)`; the context is the AAD. */
function seal(key: Buffer, plaintext: Buffer, context: string): string {
  return aesGcmSeal(key, plaintext, Buffer.from(context)).toString('base64');
}

function open(key: Buffer, sealed: string, context: string): Buffer {
  const bytes = Buffer.from(sealed, 'base64');
  if (bytes.length < 28) throw new KeyProviderError('A sealed key is truncated');
  return aesGcmOpen(key, bytes, Buffer.from(context));
}
