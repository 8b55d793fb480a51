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
 * Checks the chain over records in seq order and reports the first that was modified, deleted,
 * inserted or reordered. `rows` is read once, in order; a small window of recent rows is kept to
 * recognise content moved from one place to another.
 */
export function verifyChain(rows: Iterable<ChainRow>, from?: ChainAnchor): ChainVerdict {
  const iterator = rows[Symbol.iterator]();
  try {
    return walk(iterator, from);
  } finally {
    // Stopping at the first broken record must still release what the rows are read from.
    iterator.return?.();
  }
}

function walk(iterator: Iterator<ChainRow>, from: ChainAnchor | undefined): ChainVerdict {
  let previous: Buffer = from?.head ?? genesis;
  let expectedSeq: number | undefined = from ? from.seq + 1 : undefined;
  let count = from?.seq ?? 0;
  const recent: ChainRow[] = [];
  const pending: ChainRow[] = [];
  const next = (): ChainRow | undefined => pending.shift() ?? iterator.next().value ?? undefined;
  for (let row = next(); row; row = next()) {
    if (expectedSeq !== undefined && row.seq !== expectedSeq) {
      return { ok: false, count, seq: expectedSeq, problem: 'deleted', detail: `records ${expectedSeq}..${row.seq - 1} are missing` };
    }
    if (!row.hash) return { ok: false, count, seq: row.seq, problem: 'inserted', detail: 'a record without a chain hash' };
    const expected = chainHash(previous, row.recorded, row.event);
    if (!expected.equals(row.hash)) {
      // Its content elsewhere in the chain, or another record's content here: moved, not changed.
      for (let i = 0; i < reorderWindow; i++) {
        const ahead = iterator.next().value as ChainRow | undefined;
        if (!ahead) break;
        pending.push(ahead);
      }
      const around = [...recent, ...pending];
      const moved = around.some((other) => other.seq !== row!.seq && chainHash(previous, other.recorded, other.event).equals(row!.hash!))
        || around.some((other, i) => i > 0 && other.hash !== null && chainHash(around[i - 1].hash ?? genesis, row!.recorded, row!.event).equals(other.hash));
      if (moved) return { ok: false, count, seq: row.seq, problem: 'reordered', detail: 'records are out of their recorded order' };
      // The next record chaining straight from the one before: this one was never in the chain.
      const after = pending[0];
      const skipped = after?.hash && chainHash(previous, after.recorded, after.event).equals(after.hash);
      return skipped
        ? { ok: false, count, seq: row.seq, problem: 'inserted', detail: 'a record that the chain does not contain' }
        : { ok: false, count, seq: row.seq, problem: 'modified', detail: 'the record differs from what was recorded' };
    }
    previous = row.hash;
    expectedSeq = row.seq + 1;
    count++;
    recent.push(row);
    if (recent.length > reorderWindow) recent.shift();
  }
  return { ok: true, count, head: previous.toString('hex') };
}
