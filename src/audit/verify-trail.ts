import type { JWK } from 'jose';
import type { ChainVerdict } from './audit-chain.ts';
import type { AuditTrail } from './audit-trail.ts';
import { verifiedCheckpoint } from './checkpoints.ts';
import { RetentionError, verifiedChain } from './retention.ts';

/**
 * The verdict on an audit trail (bastion audit verify, on either store): the chain record by
 * record from where it starts (the latest signed purge, or the first record), then every signed
 * checkpoint against it (a chain rewritten from some record on, or cut short, verifies link by
 * link but no longer ends where a checkpoint says it did).
 *
 * The checkpoints are read before the records: each signs a head whose records were committed
 * before it, so the view the records are read in holds them all, and each is checked against the
 * link read in that view (none is looked up one by one). Checkpoints made meanwhile are checked by
 * the next verification.
 */
export async function verifyAuditTrail(trail: AuditTrail, publicKey: JWK): Promise<ChainVerdict> {
  const stored = await trail.checkpoints();
  const counts = new Set(stored.map((c) => c.count));
  let links = new Map<number, Buffer>();
  let reading: Awaited<ReturnType<typeof verifiedChain>>;
  try {
    reading = await verifiedChain(trail, publicKey, () => {
      links = new Map();
      return (row) => {
        if (row.hash && counts.has(row.seq)) links.set(row.seq, row.hash);
      };
    });
  } catch (err) {
    if (!(err instanceof RetentionError)) throw err;
    return { ok: false, count: 0, seq: 1, problem: 'forged-checkpoint', detail: err.message };
  }
  const { verdict, anchor } = reading;
  if (!verdict.ok) return verdict;
  for (const c of stored) {
    const signed = await verifiedCheckpoint(c.jws, publicKey);
    if (!signed || signed.count !== c.count || signed.head !== c.head.toString('hex')) {
      return { ok: false, count: verdict.count, seq: c.count, problem: 'forged-checkpoint', detail: `the checkpoint of ${c.at} is not signed by the audit key` };
    }
    // Its records were purged after retention: the purge's signature vouches for where the chain went on.
    if (anchor && signed.count <= anchor.seq) continue;
    // A verified chain holds each position from its start to verdict.count once: each was seen.
    const link = signed.count <= verdict.count ? links.get(signed.count) : undefined;
    if (!link) return { ok: false, count: verdict.count, seq: verdict.count + 1, problem: 'truncated', detail: `the checkpoint of ${signed.at} counts ${signed.count} records; the trail ends at ${verdict.count}` };
    if (link.toString('hex') !== signed.head) return { ok: false, count: verdict.count, seq: signed.count, problem: 'rewritten', detail: `the chain up to record ${signed.count} is not the one signed at ${signed.at}` };
  }
  return verdict;
}
