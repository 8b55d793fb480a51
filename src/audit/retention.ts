import type { JWK } from 'jose';
import { signAuditStatement, verifiedAuditStatement } from './audit-signature.ts';
import type { Db } from '../store/sqlite/open.ts';
import { isAsyncIterable, verifyChainAsync, type ChainAnchor, type ChainRow, type ChainVerdict } from './audit-chain.ts';
import type { AuditTrail, TrailPurge } from './audit-trail.ts';
import { sqliteAuditTrail } from './trail-stores.ts';
import type { AuditRecordFacts } from './audit-record.ts';
import { signCheckpoint } from './checkpoints.ts';

/**
 * Retention of the audit trail: records are kept for `years` (6 by default: HIPAA keeps its
 * documentation six years, §164.316(b)(2)) and nothing younger is ever removed. After that an
 * explicit purge may remove the oldest records. It keeps the chain verifiable: the purge is signed
 * with the audit key and says where the chain goes on from (the link of the last record removed),
 * and the purge itself is appended to the trail as an audit record.
 */
export interface PurgePayload {
  through: number;
  /** The link of record `through`, hex. */
  head: string;
  before: string;
  at: string;
}

export interface PurgeResult {
  removed: number;
  through: number;
}

export class RetentionError extends Error {}

/** HIPAA keeps documentation six years (§164.316(b)(2)): the shortest retention configurable. */
export const minimumRetentionYears = 6;

/** The latest instant records may have been recorded at to be purged now. */
export function retentionCutoff(years: number, now: Date = new Date()): Date {
  const cutoff = new Date(now);
  cutoff.setUTCFullYear(cutoff.getUTCFullYear() - years);
  return cutoff;
}

/**
 * Removes the records recorded before `before` (and only whole leading stretches of the trail:
 * the first record at or after `before` and everything after it stay). Refuses a `before` inside
 * the retention period, and a trail whose chain does not verify (a purge must not erase the
 * evidence of tampering). `trail` is the embedded audit file (opened by a process that has it to
 * itself) or PostgreSQL's trail, which the nodes go on appending to meanwhile: what is removed is
 * decided on the view of the trail that was verified, and stops short of its last record.
 */
export async function purgeAuditTrail(trail: AuditTrail | Db, options: { before: Date; years: number; who: string; key: JWK; publicKey: JWK; now?: Date }): Promise<PurgeResult> {
  if (!isTrail(trail)) trail = sqliteAuditTrail(trail);
  const now = options.now ?? new Date();
  const cutoff = retentionCutoff(options.years, now);
  if (options.before > cutoff) {
    throw new RetentionError(`records recorded after ${cutoff.toISOString()} are within the ${options.years}-year retention period: nothing before ${options.before.toISOString()} may be purged yet`);
  }
  const before = options.before.toISOString();
  // The first record stored, and the first recorded at or after `before`, as the chain is read.
  let current: number | undefined;
  let firstKept: number | undefined;
  const { verdict } = await verifiedChain(trail, options.publicKey, () => {
    current = firstKept = undefined;
    return (row) => {
      current ??= row.seq;
      if (firstKept === undefined && row.recorded >= before) firstKept = row.seq;
    };
  });
  if (!verdict.ok) throw new RetentionError(`the audit chain is broken at record ${verdict.seq} (${verdict.problem}); it is not purged, so the evidence stays`);
  const last = verdict.count;
  // The newest record always stays: the chain goes on from it (and positions never restart).
  const through = Math.min(firstKept === undefined ? last : firstKept - 1, last - 1);
  if (current === undefined || through < current) return { removed: 0, through: current === undefined ? last : current - 1 };
  const head = await trail.linkAt(through);
  if (!head) throw new RetentionError(`record ${through} is no longer stored: another purge ran meanwhile`);
  const at = now.toISOString();
  const payload: PurgePayload = { through, head: head.toString('hex'), before, at };
  const jws = await signAuditStatement(payload, options.key, 'bastion-audit-purge');
  await trail.removeThrough({ through, head, before, at, jws });
  // The purge is an administrative action like any other: on the trail, chained after what it kept.
  const facts: AuditRecordFacts = { at, do: 'operation', op: 'audit-purge', st: 200, who: options.who, ip: 'local', q: `before=${before}&through=${through}` };
  await trail.appendChained(at, JSON.stringify(facts));
  await trail.appendCheckpoint((await signCheckpoint(await trail.head(), at, options.key)).stored);
  return { removed: through - current + 1, through };
}

function isTrail(target: AuditTrail | Db): target is AuditTrail {
  return typeof (target as Partial<AuditTrail>).chainRows === 'function';
}

/**
 * The trail's chain verified from where it starts (anchorOf), reading its records once. `watch`
 * makes what sees each record as it is read (made again when the trail is read again). A purge
 * that commits between reading the purges and reading the records (PostgreSQL: one running
 * beside this) makes the records start past the anchor: then the trail is read again, with the
 * purges as they are now. A purge that is not signed by the key throws a RetentionError.
 */
export async function verifiedChain(trail: AuditTrail, publicKey: JWK, watch?: () => (row: ChainRow) => void): Promise<{ verdict: ChainVerdict; anchor: ChainAnchor | undefined }> {
  for (let attempt = 1; ; attempt++) {
    const purged = await trail.purges();
    const anchor = await anchorOfPurges(purged, publicKey);
    const see = watch?.();
    const rows = trail.chainRows();
    const verdict = await verifyChainAsync(see ? seen(rows, see) : rows, anchor);
    if (verdict.ok || attempt === 3 || (await trail.purges()).length === purged.length) return { verdict, anchor };
  }
}

/** The rows, each shown to `see` as it is read (synchronous rows stay synchronous). */
function seen(rows: AsyncIterable<ChainRow> | Iterable<ChainRow>, see: (row: ChainRow) => void): AsyncIterable<ChainRow> | Iterable<ChainRow> {
  if (isAsyncIterable(rows)) {
    return (async function* () {
      for await (const row of rows) {
        see(row);
        yield row;
      }
    })();
  }
  return (function* () {
    for (const row of rows) {
      see(row);
      yield row;
    }
  })();
}

/**
 * Where verification starts: after the latest purge whose signature the audit key verifies and
 * which says what is stored; from the first record when there was none. A purge that is not
 * signed by the key, or does not match its row, is reported as a RetentionError.
 */
export async function anchorOf(trail: AuditTrail | Db, publicKey: JWK): Promise<ChainAnchor | undefined> {
  return anchorOfPurges(await (isTrail(trail) ? trail : sqliteAuditTrail(trail)).purges(), publicKey);
}

async function anchorOfPurges(purges: readonly TrailPurge[], publicKey: JWK): Promise<ChainAnchor | undefined> {
  let anchor: ChainAnchor | undefined;
  for (const p of purges) {
    const signed = await verifiedPurge(p, publicKey);
    if (!signed) throw new RetentionError(`the purge of ${p.at} is not signed by the audit key`);
    // No retention is shorter than six years: a purge of younger records is not one this server made.
    if (Date.parse(signed.before) > retentionCutoff(minimumRetentionYears, new Date(signed.at)).getTime()) {
      throw new RetentionError(`the purge of ${p.at} removed records younger than ${minimumRetentionYears} years`);
    }
    if (anchor && p.through < anchor.seq) throw new RetentionError(`the purge of ${p.at} goes back before an earlier purge`);
    anchor = { seq: p.through, head: p.head };
  }
  return anchor;
}

async function verifiedPurge(p: TrailPurge, publicKey: JWK): Promise<PurgePayload | undefined> {
  const signed = await verifiedAuditStatement<PurgePayload>(p.jws, publicKey);
  const matches = signed && signed.through === p.through && signed.head === p.head.toString('hex') && signed.before === p.before && signed.at === p.at;
  return matches ? signed : undefined;
}
