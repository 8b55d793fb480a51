import { openAuthStore, openKeys, openStore } from '../main.ts';
import type { DataKeys } from '../crypto/data-keys.ts';
import type { Config } from '../config/config.ts';
import type { AuthStore } from '../store/auth-store.ts';
import type { AuditRecordFacts } from '../audit/audit-record.ts';
import { AuditLog } from '../audit/audit-log.ts';
import { authEventFacts, consoleActor, handOver, type AuthEvent } from '../auth/auth-events.ts';
import { serverRunning } from './exclusive.ts';
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

/** What a console command did, for the audit trail (who: the console). */
export type ConsoleEvent = Pick<AuthEvent, 'kind' | 'detail'>;

/**
 * Runs `work` on the data dir's auth file (safe while the server runs: SQLite serialises the
 * writes), then records what it did in the audit trail as the console (see recordConsoleEvents).
 */
export async function withAuthStore<T>(config: Pick<Config, 'dataDir' | 'keyProvider' | 'database'>, work: (store: AuthStore, record: (event: ConsoleEvent) => void, keys: DataKeys) => Promise<T>): Promise<T> {
  const dataDir = config.dataDir;
  const keys = await openKeys(dataDir, config.keyProvider);
  const store = await openAuthStore(config, keys);
  const events: AuditRecordFacts[] = [];
  try {
    const result = await work(store, (event) => events.push(authEventFacts({ ...consoleActor, success: true, ...event })), keys);
    if (events.length > 0) await recordConsoleEvents(config, keys, store, events);
    return result;
  } finally {
    await store.close();
  }
}

/**
 * The embedded audit trail has one writer at a time. With the server stopped the console appends
 * its records itself (as `bastion import` does); while the server runs they are handed over through
 * the auth file and the server appends them within seconds. Should the trail not take them, they
 * wait there for the server's next start. On PostgreSQL every node and the console append to the
 * one chain themselves (postgres/audit-log.ts).
 */
async function recordConsoleEvents(config: Pick<Config, 'dataDir' | 'database'>, keys: DataKeys, store: AuthStore, events: AuditRecordFacts[]): Promise<void> {
  const { dataDir } = config;
  if (config.database || !serverRunning(dataDir, keys)) {
    const failures: unknown[] = [];
    try {
      const trail = await openStore(dataDir, keys, config);
      try {
        const audit = new AuditLog(trail, (err) => failures.push(err));
        for (const facts of events) audit.record(facts);
        await audit.close();
      } finally {
        await trail.close();
      }
      if (failures.length === 0) return;
    } catch (err) {
      failures.push(err);
    }
    process.stderr.write('the audit trail could not be written now: the record is kept in the auth file until the server next starts\n');
  }
  for (const facts of events) await handOver(store, facts);
}


