import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../config/config.ts';
import { auditSigningKey, openKeys, storeFileKey } from '../main.ts';
import type { DataKeys } from '../crypto/data-keys.ts';
import type { KeyProviderSettings } from '../crypto/open-keys.ts';
import { openEncrypted } from '../store/sqlite/open.ts';
import { chainRows, checkpoints, linkAt } from '../store/sqlite/audit-schema.ts';
import { verifiedCheckpoint } from '../audit/checkpoints.ts';
import { auditEventOf } from '../audit/audit-read.ts';
import { verifyChain, type ChainVerdict } from '../audit/audit-chain.ts';
import { parse, UsageError } from './args.ts';
import { assertNotInUse } from './exclusive.ts';
import { anchorOf, purgeAuditTrail, RetentionError } from '../audit/retention.ts';
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
         goes on, and is itself recorded on the trail. The server must be stopped.

verify and export read the audit file only, so they may run while the server does.

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
    await exportAudit(config.dataDir, instantOption('since', values.since as string | undefined), instantOption('until', values.until as string | undefined), (line) => process.stdout.write(line), config.keyProvider);
    return;
  }
  if (sub === 'purge') {
    const before = instantOption('before', values.before as string | undefined);
    if (!before) throw new UsageError('purge needs --before <date>');
    const keys = await openKeys(config.dataDir, config.keyProvider);
    assertNotInUse(config.dataDir, keys);
    const db = openAuditFile(config.dataDir, keys);
    try {
      const who = `console:${userInfo().username}`;
      const result = await purgeAuditTrail(db, { before: new Date(before), years: config.auditRetentionYears, who, key: await auditSigningKey(config.dataDir, 'private', keys), publicKey: await auditSigningKey(config.dataDir, 'public', keys) });
      process.stdout.write(result.removed === 0
        ? `nothing to purge: no record before ${before}\n`
        : `purged ${result.removed.toLocaleString('en-US')} records (1..${result.through}); the purge is signed and recorded on the trail\n`);
    } finally {
      db.close();
    }
    return;
  }
  const verdict = await verifyAuditFile(config.dataDir, config.keyProvider);
  if (verdict.ok) {
    process.stdout.write(`audit chain intact: ${verdict.count.toLocaleString('en-US')} records, head ${verdict.head}\n`);
    return;
  }
  throw new Error(`audit chain broken at record ${verdict.seq} (${verdict.problem}: ${verdict.detail}); the ${verdict.count.toLocaleString('en-US')} records before it are intact`);
}

/** Writes the records recorded in [since, until) as NDJSON AuditEvents through `write`; returns how many. */
export async function exportAudit(dataDir: string, since: string | undefined, until: string | undefined, write: (line: string) => void, keyProvider?: KeyProviderSettings): Promise<number> {
  const db = openAuditFile(dataDir, await openKeys(dataDir, keyProvider));
  try {
    let n = 0;
    const rows = db.prepare<[string, string], { seq: number; recorded: string; event: string }>(
      'SELECT seq, recorded, event FROM audit_log WHERE recorded >= ? AND recorded < ? ORDER BY seq',
    ).iterate(since ?? '', until ?? '\uffff');
    for (const r of rows) {
      write(JSON.stringify(auditEventOf({ seq: r.seq, recorded: r.recorded, json: r.event })) + '\n');
      n++;
    }
    return n;
  } finally {
    db.close();
  }
}

/** A time given on the command line, as the UTC instant the trail's `recorded` column compares with. */
function instantOption(name: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new UsageError(`--${name} takes a date or an instant (2026-11-29 or 2026-11-29T10:00:00Z), not "${value}"`);
  return new Date(ms).toISOString();
}

function openAuditFile(dataDir: string, keys: DataKeys) {
  const path = join(dataDir, 'bastion-audit.db');
  if (!existsSync(path)) throw new Error(`no audit file in ${dataDir}`);
  return openEncrypted(path, storeFileKey(dataDir, keys, 'bastion-audit.db'));
}

/**
 * The verdict on the data dir's audit file: the chain record by record, then every signed
 * checkpoint against it (a chain rewritten from some record on, or cut short, verifies link by
 * link but no longer ends where a checkpoint says it did).
 */
export async function verifyAuditFile(dataDir: string, keyProvider?: KeyProviderSettings): Promise<ChainVerdict> {
  const keys = await openKeys(dataDir, keyProvider);
  const db = openAuditFile(dataDir, keys);
  try {
    const publicKey = await auditSigningKey(dataDir, 'public', keys);
    let anchor;
    try {
      anchor = await anchorOf(db, publicKey);
    } catch (err) {
      if (!(err instanceof RetentionError)) throw err;
      return { ok: false, count: 0, seq: 1, problem: 'forged-checkpoint', detail: err.message };
    }
    const verdict = verifyChain(chainRows(db), anchor);
    if (!verdict.ok) return verdict;
    for (const c of checkpoints(db)) {
      const signed = await verifiedCheckpoint(c.jws, publicKey);
      if (!signed || signed.count !== c.count || signed.head !== c.head.toString('hex')) {
        return { ok: false, count: verdict.count, seq: c.count, problem: 'forged-checkpoint', detail: `the checkpoint of ${c.at} is not signed by the audit key` };
      }
      // Its records were purged after retention: the purge's signature vouches for where the chain went on.
      if (anchor && signed.count <= anchor.seq) continue;
      const link = linkAt(db, signed.count);
      if (!link) return { ok: false, count: verdict.count, seq: verdict.count + 1, problem: 'truncated', detail: `the checkpoint of ${signed.at} counts ${signed.count} records; the trail ends at ${verdict.count}` };
      if (link.toString('hex') !== signed.head) return { ok: false, count: verdict.count, seq: signed.count, problem: 'rewritten', detail: `the chain up to record ${signed.count} is not the one signed at ${signed.at}` };
    }
    return verdict;
  } finally {
    db.close();
  }
}
