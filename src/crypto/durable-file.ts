import { closeSync, fsyncSync, openSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Replaces a file so that after a crash it holds either the old or the new content, and the new
 * one is on disk before this returns: written to a temporary file, synced, renamed, and the
 * directory synced. Key files need it: a key lost to a crash is data lost for good.
 */
export function writeFileDurably(path: string, content: string): void {
  const temporary = `${path}.${process.pid}.tmp`;
  const fd = openSync(temporary, 'w', 0o600);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, path);
  syncDirectory(dirname(path));
}

/** Creates a file that must not exist yet, durably. */
export function createFileDurably(path: string, content: string): void {
  writeFileSync(path, content, { mode: 0o600, flag: 'wx' });
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  syncDirectory(dirname(path));
}

/** Removes a file and makes the removal durable. */
export function removeFileDurably(path: string): void {
  rmSync(path, { force: true });
  syncDirectory(dirname(path));
}

/** Makes a directory's entries (files created, renamed, removed in it) durable. */
export function syncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Runs `work` holding `<path>.lock` (created exclusively; a lock older than `staleMs` is taken to
 * be a crashed holder's). Serialises the server and the console when both change a key file.
 */
export async function withFileLock<T>(path: string, work: () => Promise<T>, staleMs = 30_000): Promise<T> {
  const lock = `${path}.lock`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      writeFileSync(lock, String(process.pid), { flag: 'wx', mode: 0o600 });
      break;
    } catch (err) {
      if ((err as { code?: string }).code !== 'EEXIST') throw err;
      if (lockAge(lock) > staleMs) rmSync(lock, { force: true });
      else if (Date.now() > deadline) throw new Error(`${path} is locked by another process (${lock})`);
      else await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  try {
    return await work();
  } finally {
    rmSync(lock, { force: true });
  }
}

function lockAge(lock: string): number {
  try {
    return Date.now() - statSync(lock).mtimeMs;
  } catch {
    return 0;
  }
}
