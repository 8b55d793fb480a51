import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, loadConfig, type Config } from '../config/config.ts';
import { auditSigningKey, openKeys, storeFileKey } from '../main.ts';
import type { DataKeys } from '../crypto/data-keys.ts';
import type { KeyProviderSettings } from '../crypto/open-keys.ts';
import { openEncrypted } from '../store/sqlite/open.ts';
import { Database } from '../store/postgres/database.ts';
import { PgAuditLog } from '../store/postgres/audit-log.ts';
import { auditEventOf } from '../audit/audit-read.ts';
import { isAsyncIterable, type ChainVerdict } from '../audit/audit-chain.ts';
import type { AuditTrail, TrailRecord } from '../audit/audit-trail.ts';
import { pgAuditTrail, sqliteAuditTrail } from '../audit/trail-stores.ts';
import { verifyAuditTrail } from '../audit/verify-trail.ts';
import { parse, UsageError } from './args.ts';
import { assertNotInUse } from './exclusive.ts';
import { purgeAuditTrail } from '../audit/retention.ts';
import { userInfo } from 'node:os';

export const auditHelp = `Usage: bastion audit verify [options]
       bastion audit export [--since <instant>] [--until <instant>] [options]
       bastion audit purge --before <date> [options]

verify   checks the audit trail's hash chain from its first record to its last, and its signed
         checkpoints, and reports the first record that was modified, deleted, inserted or
         reordered. Exit status 0: intact; 1: broken.
export   writes the trail's records as FHIR AuditEvents, one JSON per line (NDJSON), to
         stdout, in recorded order: for a SIEM, or for a range of time.

purge    removes the records recorded before <date>, which must be older than the retention
         period (auditRetentionYears, 6 by default); refused for a trail whose chain is broken.
         The purge is signed with the audit key, keeps the chain verifiable from where it
         goes on, and is itself recorded on the trail. The server must be stopped (on
         PostgreSQL it need not: the nodes go on appending meanwhile).

verify and export read the audit file only, so they may run while the server does. With a
database configured (BASTION_DATABASE_URL) they work on PostgreSQL's trail, while the nodes run;
the data dir still holds the audit key.

Options:
  --since <instant>    export: records from this time on (FHIR instant or date)
  --until <instant>    export: records before this time
  --before <date>      purge: records recorded before this date or instant
  --data-dir <dir>     data directory (BASTION_DATA_DIR; default ./data)
  --config <file>      JSON config file (BASTION_CONFIG)
  -h, --help           this help
`;

export async function auditCommand(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    process.stdout.write(auditHelp);
    if (sub === undefined) throw new UsageError('name a subcommand: verify');
    return;
  }
  if (sub !== 'verify' && sub !== 'export' && sub !== 'purge') throw new UsageError(`unknown subcommand "${sub}" (verify, export, purge)`);
  const { values } = parse(rest, { 'data-dir': { type: 'string' }, config: { type: 'string' }, since: { type: 'string' }, until: { type: 'string' }, before: { type: 'string' } });
  if (values.help) {
    process.stdout.write(auditHelp);
    return;
  }
  const config = loadConfig({ dataDir: values['data-dir'] as string | undefined }, process.env, values.config as string | undefined);
  if (sub === 'export') {
    const since = instantOption('since', values.since as string | undefined);
    const until = instantOption('until', values.until as string | undefined);
    await withAuditTrail(config, await openKeys(config.dataDir, config.keyProvider), (trail) => exportAuditTrail(trail, since, until, (line) => process.stdout.write(line)));
    return;
  }
  if (sub === 'purge') {
    const before = instantOption('before', values.before as string | undefined);
    if (!before) throw new UsageError('purge needs --before <date>');
    const keys = await openKeys(config.dataDir, config.keyProvider);
    // The embedded store's audit worker holds the head; PostgreSQL's nodes append under a lock the purge takes too.
    if (!config.database) assertNotInUse(config.dataDir, keys);
    const who = `console:${userInfo().username}`;
    const result = await withAuditTrail(config, keys, async (trail) => purgeAuditTrail(trail, {
      before: new Date(before), years: config.auditRetentionYears, who, key: await auditSigningKey(config.dataDir, 'private', keys), publicKey: await auditSigningKey(config.dataDir, 'public', keys),
    }));
    process.stdout.write(result.removed === 0
      ? `nothing to purge: no record before ${before}\n`
      : `purged ${result.removed.toLocaleString('en-US')} records (1..${result.through}); the purge is signed and recorded on the trail\n`);
    return;
  }
  const verdict = await verifyAudit(config);
  if (verdict.ok) {
    process.stdout.write(`audit chain intact: ${verdict.count.toLocaleString('en-US')} records, head ${verdict.head}\n`);
    return;
  }
  throw new Error(`audit chain broken at record ${verdict.seq} (${verdict.problem}: ${verdict.detail}); the ${verdict.count.toLocaleString('en-US')} records before it are intact`);
}

/** Writes the data dir's audit file's records recorded in [since, until) as NDJSON AuditEvents through `write`; returns how many. */
export async function exportAudit(dataDir: string, since: string | undefined, until: string | undefined, write: (line: string) => void, keyProvider?: KeyProviderSettings): Promise<number> {
  return withAuditTrail({ dataDir }, await openKeys(dataDir, keyProvider), (trail) => exportAuditTrail(trail, since, until, write));
}

/** Writes a trail's records recorded in [since, until) as NDJSON AuditEvents through `write`, in recorded order; returns how many. */
export async function exportAuditTrail(trail: AuditTrail, since: string | undefined, until: string | undefined, write: (line: string) => void): Promise<number> {
  let n = 0;
  const each = (r: TrailRecord) => {
    write(JSON.stringify(auditEventOf({ seq: r.seq, recorded: r.recorded, json: r.event })) + '\n');
    n++;
  };
  const rows = trail.recordsBetween(since ?? '', until ?? '\uffff');
  if (isAsyncIterable(rows)) for await (const r of rows) each(r);
  else for (const r of rows) each(r);
  return n;
}

/** A time given on the command line, as the UTC instant the trail's `recorded` column compares with. */
function instantOption(name: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new UsageError(`--${name} takes a date or an instant (2026-11-29 or 2026-11-29T10:00:00Z), not "${value}"`);
  return new Date(ms).toISOString();
}

/** Where a deployment keeps its audit trail: the data dir's audit file, or PostgreSQL when a database is configured. */
export type AuditSettings = Pick<Config, 'dataDir'> & Partial<Pick<Config, 'database' | 'keyProvider'>>;

/**
 * Runs `work` on the deployment's audit trail and closes it after: the data dir's audit file, or
 * (with a database) PostgreSQL's audit tables through a small pool of this command's own, beside
 * the nodes.
 */
export async function withAuditTrail<T>(settings: AuditSettings, keys: DataKeys, work: (trail: AuditTrail) => Promise<T>): Promise<T> {
  const { database } = settings;
  if (!database) {
    const db = openAuditFile(settings.dataDir, keys);
    try {
      return await work(sqliteAuditTrail(db));
    } finally {
      db.close();
    }
  }
  // The records' cursor holds one connection while the purges and checkpoints are read on another.
  const db = new Database({ url: database.url, schema: database.schema, max: 3 });
  try {
    let log: PgAuditLog;
    try {
      log = await PgAuditLog.open(db);
    } catch (err) {
      // Unreachable, refused, wrong password: a configuration problem, said without the URL (it may hold the password).
      throw new ConfigError(`PostgreSQL: ${(err as Error).message}`);
    }
    try {
      return await work(pgAuditTrail(log));
    } finally {
      await log.close();
    }
  } finally {
    await db.close();
  }
}

function openAuditFile(dataDir: string, keys: DataKeys) {
  const path = join(dataDir, 'bastion-audit.db');
  if (!existsSync(path)) throw new Error(`no audit file in ${dataDir}`);
  return openEncrypted(path, storeFileKey(dataDir, keys, 'bastion-audit.db'));
}

/** The verdict on the data dir's audit file (see verifyAudit). */
export function verifyAuditFile(dataDir: string, keyProvider?: KeyProviderSettings): Promise<ChainVerdict> {
  return verifyAudit({ dataDir, ...(keyProvider ? { keyProvider } : {}) });
}

/**
 * The verdict on a deployment's audit trail, embedded or on PostgreSQL: the chain record by
 * record, then every signed checkpoint against it (audit/verify-trail.ts).
 */
export async function verifyAudit(settings: AuditSettings): Promise<ChainVerdict> {
  const keys = await openKeys(settings.dataDir, settings.keyProvider);
  return withAuditTrail(settings, keys, async (trail) => verifyAuditTrail(trail, await auditSigningKey(settings.dataDir, 'public', keys)));
}
