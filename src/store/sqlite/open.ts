import Database from 'better-sqlite3-multiple-ciphers';

export type Db = Database.Database;

/**
 * Opens the store file with SQLCipher-compatible AES-256 encryption. `key` is 32 raw bytes; it
 * is passed as a hex blob so no key derivation runs on each open.
 */
export interface OpenOptions {
  readonly?: boolean;
  /**
   * The caller syncs the WAL itself after each commit (see WalSync): SQLite runs with
   * synchronous = NORMAL. Otherwise FULL, where SQLite syncs each commit on the calling thread.
   */
  callerSyncsCommits?: boolean;
}

export function openEncrypted(path: string, key: Buffer, options: OpenOptions = {}): Db {
  if (key.length !== 32) throw new Error('The store key must be 32 bytes');
  const db = new Database(path, { readonly: options.readonly ?? false, fileMustExist: options.readonly ?? false });
  try {
    db.pragma(`cipher='sqlcipher'`);
    db.pragma('legacy=4');
    db.pragma(`key="x'${key.toString('hex')}'"`);
    // The first real read is where a wrong key shows: the header does not decrypt.
    db.prepare('SELECT count(*) FROM sqlite_master').get();
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code === 'SQLITE_NOTADB') {
      throw new Error(`The store file ${path} cannot be decrypted with the configured key (wrong key, or not a Bastion store)`);
    }
    throw err;
  }
  if (!options.readonly) db.pragma('journal_mode = WAL');
  // Either way a commit is on disk before the client hears success.
  db.pragma(options.callerSyncsCommits ? 'synchronous = NORMAL' : 'synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  db.pragma('cache_size = -65536');
  db.pragma('temp_store = MEMORY');
  return db;
}
