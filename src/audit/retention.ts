import type { JWK } from 'jose';
import { signAuditStatement, verifiedAuditStatement } from './audit-signature.ts';
import type { Db } from '../store/sqlite/open.ts';
import { appendChained, appendCheckpoint, auditHead, chainRows, linkAt, purges, removeThrough, type StoredPurge } from '../store/sqlite/audit-schema.ts';
import { verifyChain, type ChainAnchor } from './audit-chain.ts';
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
 * evidence of tampering). `db` is the audit file, opened by a process that has it to itself.
 */
export async function purgeAuditTrail(db: Db, options: { before: Date; years: number; who: string; key: JWK; publicKey: JWK; now?: Date }): Promise<PurgeResult> {
  const now = options.now ?? new Date();
  const cutoff = retentionCutoff(options.years, now);
  if (options.before > cutoff) {
    throw new RetentionError(`records recorded after ${cutoff.toISOString()} are within the ${options.years}-year retention period: nothing before ${options.before.toISOString()} may be purged yet`);
  }
  const verdict = verifyChain(chainRows(db), await anchorOf(db, options.publicKey));
  if (!verdict.ok) throw new RetentionError(`the audit chain is broken at record ${verdict.seq} (${verdict.problem}); it is not purged, so the evidence stays`);
  const before = options.before.toISOString();
  const firstKept = db.prepare('SELECT min(seq) FROM audit_log WHERE recorded >= ?').pluck().get(before) as number | null;
  const last = auditHead(db).count;
  // The newest record always stays: the chain goes on from it (and positions never restart).
  const through = Math.min(firstKept === null ? last : firstKept - 1, last - 1);
  const current = db.prepare('SELECT min(seq) FROM audit_log').pluck().get() as number | null;
  if (current === null || through < current) return { removed: 0, through: current === null ? last : current - 1 };
  const head = linkAt(db, through)!;
  const at = now.toISOString();
  const payload: PurgePayload = { through, head: head.toString('hex'), before, at };
  const jws = await signAuditStatement(payload, options.key, 'bastion-audit-purge');
  removeThrough(db, { through, head, before, at, jws });
  // The purge is an administrative action like any other: on the trail, chained after what it kept.
  const facts: AuditRecordFacts = { at, do: 'operation', op: 'audit-purge', st: 200, who: options.who, ip: 'local', q: `before=${before}&through=${through}` };
  appendChained(db, at, JSON.stringify(facts));
  appendCheckpoint(db, (await signCheckpoint(auditHead(db), at, options.key)).stored);
  return { removed: through - current + 1, through };
}

/**
 * Where verification starts: after the latest purge whose signature the audit key verifies and
 * which says what is stored; from the first record when there was none. A purge that is not
 * signed by the key, or does not match its row, is reported as a RetentionError.
 */
export async function anchorOf(db: Db, publicKey: JWK): Promise<ChainAnchor | undefined> {
  let anchor: ChainAnchor | undefined;
  for (const p of purges(db)) {
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

async function verifiedPurge(p: StoredPurge, publicKey: JWK): Promise<PurgePayload | undefined> {
  const signed = await verifiedAuditStatement<PurgePayload>(p.jws, publicKey);
  const matches = signed && signed.through === p.through && signed.head === p.head.toString('hex') && signed.before === p.before && signed.at === p.at;
  return matches ? signed : undefined;
}
