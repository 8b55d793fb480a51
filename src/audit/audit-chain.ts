import { chainHash, genesis } from '../crypto/hash-chain.ts';

/**
 * Verifies the audit trail's hash chain (crypto/hash-chain.ts; written by the audit worker). The
 * record number (seq) is not hashed: a record moved to another place can then be recognised
 * there, which tells a reordering from a change.
 */

export interface ChainRow {
  seq: number;
  recorded: string;
  event: string;
  /** The hash stored with the record; null when it has none. */
  hash: Buffer | null;
}

export type ChainProblem = 'modified' | 'deleted' | 'inserted' | 'reordered' | 'truncated' | 'rewritten' | 'forged-checkpoint';

export type ChainVerdict =
  | { ok: true; count: number; head: string }
  | { ok: false; count: number; seq: number; problem: ChainProblem; detail: string };

/** Where a chain starts that was purged up to some record (audit/retention.ts): that record's position and link. */
export interface ChainAnchor {
  seq: number;
  head: Buffer;
}

/** How far around a broken record to look for where its content belongs (a reordering). */
const reorderWindow = 64;

/**
 * The verifier, fed one record at a time in seq order: what verifyChain and verifyChainAsync
 * both run, so a trail read from a file or through a database cursor gets the same verdict. It
 * keeps a small window of recent records, and once a record does not chain, the next few, to
 * recognise content moved from one place to another; nothing else is held.
 */
export class ChainCheck {
  private previous: Buffer;
  private expectedSeq: number | undefined;
  private count: number;
  /** The last records that chained (up to the window). */
  private readonly recent: ChainRow[] = [];
  /** The first record that does not chain, once one is met; then the records after it (up to the window). */
  private broken: ChainRow | undefined;
  private readonly ahead: ChainRow[] = [];
  private verdict: ChainVerdict | undefined;

  constructor(from?: ChainAnchor) {
    this.previous = from?.head ?? genesis;
    this.expectedSeq = from ? from.seq + 1 : undefined;
    this.count = from?.seq ?? 0;
  }

  /**
   * Takes the next record. Returns the verdict once it is decided (the first broken record, told
   * after the records needed to say how): the caller reads no further. Undefined meanwhile.
   */
  add(row: ChainRow): ChainVerdict | undefined {
    if (this.verdict) return this.verdict;
    if (this.broken) {
      this.ahead.push(row);
      return this.ahead.length < reorderWindow ? undefined : this.judge(this.broken);
    }
    if (this.expectedSeq !== undefined && row.seq !== this.expectedSeq) {
      return this.decided({ ok: false, count: this.count, seq: this.expectedSeq, problem: 'deleted', detail: `records ${this.expectedSeq}..${row.seq - 1} are missing` });
    }
    if (!row.hash) return this.decided({ ok: false, count: this.count, seq: row.seq, problem: 'inserted', detail: 'a record without a chain hash' });
    if (!chainHash(this.previous, row.recorded, row.event).equals(row.hash)) {
      // Decided once the records after it are read: its content may belong elsewhere.
      this.broken = row;
      return undefined;
    }
    this.previous = row.hash;
    this.expectedSeq = row.seq + 1;
    this.count++;
    this.recent.push(row);
    if (this.recent.length > reorderWindow) this.recent.shift();
    return undefined;
  }

  /** There are no more records: the verdict. */
  end(): ChainVerdict {
    if (this.verdict) return this.verdict;
    if (this.broken) return this.judge(this.broken);
    return { ok: true, count: this.count, head: this.previous.toString('hex') };
  }

  /** A record that does not chain, with the records around it read: moved, never in the chain, or changed. */
  private judge(row: ChainRow): ChainVerdict {
    const { previous, count } = this;
    const hash = row.hash!;
    // Its content elsewhere in the chain, or another record's content here: moved, not changed.
    const around = [...this.recent, ...this.ahead];
    const moved = around.some((other) => other.seq !== row.seq && chainHash(previous, other.recorded, other.event).equals(hash))
      || around.some((other, i) => i > 0 && other.hash !== null && chainHash(around[i - 1].hash ?? genesis, row.recorded, row.event).equals(other.hash));
    if (moved) return this.decided({ ok: false, count, seq: row.seq, problem: 'reordered', detail: 'records are out of their recorded order' });
    // The next record chaining straight from the one before: this one was never in the chain.
    const after = this.ahead[0];
    const skipped = after?.hash && chainHash(previous, after.recorded, after.event).equals(after.hash);
    return this.decided(skipped
      ? { ok: false, count, seq: row.seq, problem: 'inserted', detail: 'a record that the chain does not contain' }
      : { ok: false, count, seq: row.seq, problem: 'modified', detail: 'the record differs from what was recorded' });
  }

  private decided(verdict: ChainVerdict): ChainVerdict {
    this.verdict = verdict;
    return verdict;
  }
}

/**
 * Checks the chain over records in seq order and reports the first that was modified, deleted,
 * inserted or reordered. `rows` is read once, in order, and no further than the verdict needs.
 */
export function verifyChain(rows: Iterable<ChainRow>, from?: ChainAnchor): ChainVerdict {
  const check = new ChainCheck(from);
  // Leaving the loop early returns the iterator: stopping at the first broken record still
  // releases what the rows are read from.
  for (const row of rows) {
    const verdict = check.add(row);
    if (verdict) return verdict;
  }
  return check.end();
}

/**
 * verifyChain over records read asynchronously (a database cursor), with the same verdicts; a
 * synchronous iterable is read as verifyChain reads it. Nothing but the check's window is held.
 */
export async function verifyChainAsync(rows: AsyncIterable<ChainRow> | Iterable<ChainRow>, from?: ChainAnchor): Promise<ChainVerdict> {
  if (!isAsyncIterable(rows)) return verifyChain(rows, from);
  const check = new ChainCheck(from);
  for await (const row of rows) {
    const verdict = check.add(row);
    if (verdict) return verdict;
  }
  return check.end();
}

export function isAsyncIterable<T>(rows: AsyncIterable<T> | Iterable<T>): rows is AsyncIterable<T> {
  return typeof (rows as Partial<AsyncIterable<T>>)[Symbol.asyncIterator] === 'function';
}
