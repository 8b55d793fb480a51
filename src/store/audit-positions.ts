import type { AuditCandidateQuery } from './store.ts';

/**
 * Records may be appended a little out of time order (a transaction's entries are recorded when it
 * settles; auth events carry their own time; several nodes' clocks), never by more than this: a
 * time range is widened by it into positions, and the caller tests each record's own time.
 */
export const appendLagMs = 5 * 60_000;

/**
 * The positions one page of an audit candidate search may come from, or undefined when none: the
 * trail's positions `first..last`, narrowed to the query's time range by bisecting positions
 * (records are in time order but for an append's lag), then to the side of `after` the page runs.
 * `recordedFrom(seq)`: the time of the first record at or after position `seq` (up to `last`).
 */
export async function candidatePositions(
  first: number | undefined, last: number, q: AuditCandidateQuery, recordedFrom: (seq: number) => string | undefined | Promise<string | undefined>,
): Promise<[number, number] | undefined> {
  if (first === undefined) return undefined;
  const firstAtOrAfter = async (instant: string): Promise<number> => {
    let a = first;
    let b = last + 1;
    while (a < b) {
      const mid = Math.floor((a + b) / 2);
      const recorded = await recordedFrom(mid);
      if (recorded !== undefined && recorded < instant) a = mid + 1;
      else b = mid;
    }
    return a;
  };
  let lo = first;
  let hi = last;
  if (q.from !== undefined) lo = await firstAtOrAfter(new Date(Date.parse(q.from) - appendLagMs).toISOString());
  if (q.to !== undefined) hi = (await firstAtOrAfter(new Date(Date.parse(q.to) + appendLagMs).toISOString())) - 1;
  if (q.after !== undefined) {
    if (q.descending) hi = Math.min(hi, q.after - 1);
    else lo = Math.max(lo, q.after + 1);
  }
  return lo <= hi ? [lo, hi] : undefined;
}
