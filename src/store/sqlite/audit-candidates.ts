import type { Db } from './open.ts';
import type { AuditCandidateQuery, StoredAuditRecord } from '../store.ts';
import { indexedUpto } from './audit-schema.ts';
import { keyHash } from '../../audit/audit-index.ts';
import { candidatePositions } from '../audit-positions.ts';

interface Row {
  seq: number;
  recorded: string;
  event: string;
}

/** Candidates of an audit trail search, one page in position order (see Store.auditCandidates). */
export async function auditCandidates(db: Db, q: AuditCandidateQuery): Promise<StoredAuditRecord[]> {
  const bounds = db.prepare<[], { lo: number | null; hi: number | null }>('SELECT min(seq) AS lo, max(seq) AS hi FROM audit_log').get();
  const recordedAt = db.prepare<[number], { recorded: string }>('SELECT recorded FROM audit_log WHERE seq >= ? ORDER BY seq LIMIT 1');
  const range = await candidatePositions(bounds?.lo ?? undefined, bounds?.hi ?? 0, q, (seq) => recordedAt.get(seq)?.recorded);
  if (!range) return [];
  const [lo, hi] = range;
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
