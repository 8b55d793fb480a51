import { closeSync, existsSync, openSync, readdirSync, readSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { openEncrypted } from './open.ts';

const plaintextHeader = Buffer.from('SQLite format 3\0', 'latin1');

/**
 * A consistent copy of an encrypted store file, taken while the server goes on reading and
 * writing it: `VACUUM INTO` on a read-only connection of our own.
 *
 * - Consistent: VACUUM INTO runs in one read transaction. In WAL mode that is a snapshot of the
 *   last commit before it began; writers are not blocked (they append to the WAL meanwhile) and
 *   nothing they commit later is in the copy.
 * - Encrypted: VACUUM INTO ATTACHes its target without a KEY clause, and SQLite3 Multiple Ciphers
 *   gives an attached database without a key the main database's cipher and key: the copy is
 *   written page by page under the same store-file key (SQLCipher scheme) as the original, never
 *   as plaintext. SQLite's online backup API (better-sqlite3's `db.backup()`) is no alternative:
 *   it opens its target without a key, and SQLite3 Multiple Ciphers refuses it ("backup is not
 *   supported with incompatible source and target databases").
 * - No plaintext temporary files: VACUUM INTO copies tables and indexes in key order (the
 *   transfer optimisation), so it needs no sorter, and openEncrypted sets temp_store = MEMORY for
 *   anything temporary. The target's rollback journal holds only its header (the target starts
 *   empty) and is encrypted by the same codec.
 * - Compact: free pages are left behind, so the copy is no larger than the live data.
 *
 * The copy is checked before it is used: it must not begin with SQLite's plaintext header (a
 * library that changed the behaviour above would be caught here, the file removed) and must open
 * with the key. It is made at `target` (which must not exist), in a directory the caller keeps
 * owner-only.
 *
 * Costs: the read transaction keeps the WAL from being restarted until the copy is done (it grows
 * meanwhile), and a RESTART checkpoint the server attempts meanwhile waits for it (up to its busy
 * timeout) before giving up for that round.
 */
export function snapshotFile(source: string, key: Buffer, target: string): void {
  const db = openEncrypted(source, key, { readonly: true });
  try {
    db.prepare('VACUUM INTO ?').run(target);
  } catch (err) {
    rmSync(target, { force: true });
    throw err;
  } finally {
    db.close();
  }
  rmSync(`${target}-journal`, { force: true });
  if (startsWithPlaintextHeader(target)) {
    rmSync(target, { force: true });
    throw new Error(`the snapshot of ${source} was not encrypted (SQLite3 Multiple Ciphers did not key VACUUM INTO's target); removed, no backup taken`);
  }
  openEncrypted(target, key, { readonly: true }).close();
}

function startsWithPlaintextHeader(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(plaintextHeader.length);
    const n = readSync(fd, head, 0, head.length, 0);
    return n === head.length && head.equals(plaintextHeader);
  } finally {
    closeSync(fd);
  }
}

/** Where a backup's snapshots wait in the data dir until they are in the archive. */
export const snapshotFolderPrefix = '.backup-';

/**
 * Snapshot folders a killed backup left in the data dir (encrypted, but copies of the PHI all the
 * same): removed once they are a day old, so a backup running now is never touched.
 */
export function removeAbandonedSnapshots(dataDir: string, now = Date.now()): string[] {
  const removed: string[] = [];
  for (const name of existsSync(dataDir) ? readdirSync(dataDir) : []) {
    if (!name.startsWith(snapshotFolderPrefix)) continue;
    const path = join(dataDir, name);
    if (now - statSync(path).mtimeMs < 86_400_000) continue;
    rmSync(path, { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}
