import { join } from 'node:path';
import { storeKeyOf } from '../main.ts';
import { SqliteAuthStore } from '../store/sqlite/auth-db.ts';
import type { AuthStore } from '../store/auth-store.ts';
import { UsageError } from './args.ts';

/**
 * `bastion users|clients add ...`: the arguments after `add`, or undefined when only help was
 * asked for (printed here). Only `add` exists so far.
 */
export function addArguments(group: string, args: string[], help: string): string[] | undefined {
  const [sub, ...rest] = args;
  if (sub === '--help' || sub === '-h' || sub === undefined) {
    process.stdout.write(help);
    if (sub === undefined) throw new UsageError(`which ${group} command? (add)`);
    return undefined;
  }
  if (sub !== 'add') throw new UsageError(`unknown ${group} command "${sub}" (add)`);
  return rest;
}

/** Runs `work` on the data dir's auth file (safe while the server runs: SQLite serialises the writes). */
export async function withAuthStore<T>(dataDir: string, work: (store: AuthStore) => Promise<T>): Promise<T> {
  const store = new SqliteAuthStore(join(dataDir, 'bastion-auth.db'), storeKeyOf(dataDir));
  try {
    return await work(store);
  } finally {
    await store.close();
  }
}
