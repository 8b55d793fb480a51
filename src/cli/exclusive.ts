import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { DataKeys } from '../crypto/data-keys.ts';
import { storeFileKey } from '../main.ts';
import { openEncrypted } from '../store/sqlite/open.ts';

/**
 * Refuses to work on a store another process has open (a running `bastion serve`): each
 * process numbers versions and stamps lastUpdated on its own, so two writers on one file make
 * each other's writes fail. SQLite says whether anyone else has the file open: an exclusive lock
 * cannot be taken while another connection holds its shared-memory lock.
 */
export function assertNotInUse(dataDir: string, keys: DataKeys): void {
  const dbPath = join(dataDir, 'bastion.db');
  if (!existsSync(dbPath)) return;
  const db = openEncrypted(dbPath, storeFileKey(dataDir, keys, 'bastion.db'));
  try {
    db.pragma('busy_timeout = 0');
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE');
    db.exec('COMMIT');
  } catch (err) {
    if ((err as { code?: string }).code === 'SQLITE_BUSY') {
      throw new Error(`the store in ${dataDir} is in use by another process (a running bastion serve?): stop it first`);
    }
    throw err;
  } finally {
    db.close();
  }
}

/** Whether a server (or another command) has the store open now. */
export function serverRunning(dataDir: string, keys: DataKeys): boolean {
  try {
    assertNotInUse(dataDir, keys);
    return false;
  } catch (err) {
    if (/in use by another process/.test((err as Error).message)) return true;
    throw err;
  }
}
