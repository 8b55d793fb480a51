import type { Db } from './open.ts';
import type { AuditCandidateQuery, StoredAuditRecord } from '../store.ts';
import { indexedUpto } from './audit-schema.ts';
import { keyHash } from '../../audit/audit-index.ts';

/**
 * Records may be appended a little out of time order (a transaction's entries are recorded when it
 * settles; auth events carry their own time), never by more than this: a time range is widened by
 * it into positions, and the caller tests each record's own time.
 */
const appendLagMs = 5 * 60_000;

interface Row {
  seq: number;
  recorded: string;
  event: string;
}

/** Candidates of an audit trail search, one page in position order (see Store.auditCandidates). */
export function auditCandidates(db: Db, q: AuditCandidateQuery): StoredAuditRecord[] {
  const range = positions(db, q);
  if (!range) return [];
  let [lo, hi] = range;
  if (q.after !== undefined) {
    if (q.descending) hi = Math.min(hi, q.after - 1);
    else lo = Math.max(lo, q.after + 1);
  }
  if (lo > hi) return [];
  const order = q.descending ? 'DESC' : 'ASC';
  const between = (from: number, to: number): Row[] =>
    db.prepare<[number, number, number], Row>(`SELECT seq, recorded, event FROM audit_log WHERE seq BETWEEN ? AND ? ORDER BY seq ${order} LIMIT ?`).all(from, to, q.limit);
  let rows: Row[];
  if (!q.keys) {
    rows = between(lo, hi);
  } else {
    // One ordered range per key, merged: each walks its own stretch of the (key, seq) index. The
    // records not indexed yet (the newest) are all candidates.
    const upto = indexedUpto(db);
    const byKey = db.prepare<[number, number, number, number], Row>(
      `SELECT l.seq AS seq, l.recorded AS recorded, l.event AS event FROM audit_key k JOIN audit_log l ON l.seq = k.seq WHERE k.key = ? AND k.seq BETWEEN ? AND ? ORDER BY k.seq ${order} LIMIT ?`,
    );
    const merged = new Map<number, Row>();
    if (lo <= upto) for (const key of new Set(q.keys.map(keyHash))) for (const r of byKey.all(key, lo, Math.min(hi, upto), q.limit)) merged.set(r.seq, r);
    if (hi > upto) for (const r of between(Math.max(lo, upto + 1), hi)) merged.set(r.seq, r);
    rows = [...merged.values()].sort((a, b) => (q.descending ? b.seq - a.seq : a.seq - b.seq)).slice(0, q.limit);
  }
  return rows.map((r) => ({ seq: r.seq, recorded: r.recorded, json: r.event }));
}

export function auditRecordAt(db: Db, seq: number): StoredAuditRecord | undefined {
  const r = db.prepare<[number], Row>('SELECT seq, recorded, event FROM audit_log WHERE seq = ?').get(seq);
  return r ? { seq: r.seq, recorded: r.recorded, json: r.event } : undefined;
}

/** The positions a time range can hold, or undefined when it holds none. */
function positions(db: Db, q: AuditCandidateQuery): [number, number] | undefined {
  const bounds = db.prepare<[], { lo: number | null; hi: number | null }>('SELECT min(seq) AS lo, max(seq) AS hi FROM audit_log').get();
  if (!bounds || bounds.lo === null || bounds.hi === null) return undefined;
  let lo = bounds.lo;
  let hi = bounds.hi;
  const recordedAt = db.prepare<[number], { recorded: string }>('SELECT recorded FROM audit_log WHERE seq >= ? ORDER BY seq LIMIT 1');
  // The first position recorded at or after `instant`, bisecting positions: records are in time
  // order but for an append's lag, which the caller's widening by appendLagMs covers.
  const firstAtOrAfter = (instant: string): number => {
    let a = bounds.lo!;
    let b = bounds.hi! + 1;
    while (a < b) {
      const mid = Math.floor((a + b) / 2);
      const row = recordedAt.get(mid);
      if (row && row.recorded < instant) a = mid + 1;
      else b = mid;
    }
    return a;
  };
  if (q.from !== undefined) lo = firstAtOrAfter(new Date(Date.parse(q.from) - appendLagMs).toISOString());
  if (q.to !== undefined) hi = firstAtOrAfter(new Date(Date.parse(q.to) + appendLagMs).toISOString()) - 1;
  return lo <= hi ? [lo, hi] : undefined;
}
