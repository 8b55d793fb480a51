import { after } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';

/** A fresh encrypted store in a temporary dir for the enclosing describe, closed and removed after it. */
export function useTempStore(prefix: string): SqliteStore {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const store = new SqliteStore({ path: join(dir, 'b.db'), key: randomBytes(32) });
  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return store;
}
