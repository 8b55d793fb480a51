import { existsSync } from 'node:fs';
import type { DataKey } from '../../crypto/data-keys.ts';

/** A version of the store-file key: all a file needs. */
type StoreFileKey = Pick<DataKey, 'id' | 'key'>;
import { openEncrypted } from './open.ts';

/** The store's files, all encrypted with the store-file data key. */
export const storeFiles = ['bastion.db', 'bastion-audit.db', 'bastion-auth.db'] as const;

/**
 * Which live version of the store-file key opens `path` (newest first): after a rotation the files
 * stay under the old version until they are re-keyed. A file that does not exist yet takes the current one.
 */
export function fileKeyOf(path: string, versions: StoreFileKey[]): StoreFileKey {
  const newestFirst = [...versions].reverse();
  if (!existsSync(path)) return newestFirst[0];
  for (const version of newestFirst) {
    try {
      openEncrypted(path, version.key, { readonly: true }).close();
      return version;
    } catch (err) {
      if (!/cannot be decrypted/.test((err as Error).message)) throw err;
    }
  }
  throw new Error(`The store file ${path} cannot be decrypted with any of the data dir's store-file keys (${versions.map((v) => v.id).join(', ')})`);
}

/**
 * Re-keys a store file to `to` in place (SQLite3 Multiple Ciphers rewrites every page in one
 * transaction). Only with nothing else holding the file open: the server's start, an offline command.
 * Returns whether it had to.
 */
export function rekeyFile(path: string, versions: StoreFileKey[], to: StoreFileKey): boolean {
  const from = fileKeyOf(path, versions);
  if (from.id === to.id || !existsSync(path)) return false;
  const db = openEncrypted(path, from.key);
  try {
    db.pragma(`rekey="x'${to.key.toString('hex')}'"`);
  } finally {
    db.close();
  }
  return true;
}
