import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { verifyChain, verifyChainAsync, type ChainAnchor, type ChainRow, type ChainVerdict } from '../../src/audit/audit-chain.ts';
import { chainHash, genesis } from '../../src/crypto/hash-chain.ts';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
/** The collector, run on demand (a context made after the flag has it). */
const gc = runInNewContext('gc') as () => void;

/**
 * The chain verifier fed by a cursor (verifyChainAsync, what PostgreSQL's trail is verified with)
 * gives the verdicts of the synchronous one (verifyChain, the embedded file's), record for record:
 * on the tamperings of audit-chain.test.ts made to rows in memory, on many random ones, and against
 * the verifier as it was before both became one row-by-row check (kept below as the reference).
 * It reads no further than the verdict needs, and releases what it reads from.
 */

/** n records chained from `from` (the genesis by default), positions from `first`. */
function chain(n: number, first = 1, from: Buffer = genesis): ChainRow[] {
  const rows: ChainRow[] = [];
  let previous = from;
  for (let i = 0; i < n; i++) {
    const seq = first + i;
    const recorded = new Date(Date.UTC(2026, 10, 29) + seq * 1000).toISOString();
    const event = JSON.stringify({ at: recorded, do: 'read', st: 200, who: `u${seq}`, ip: '127.0.0.1', what: [`Patient/${seq}`] });
    previous = chainHash(previous, recorded, event);
    rows.push({ seq, recorded, event, hash: previous });
  }
  return rows;
}

async function* cursor(rows: ChainRow[]): AsyncGenerator<ChainRow> {
  for (const row of rows) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    yield row;
  }
}

/** All three verdicts, which must be one. */
async function verdicts(rows: ChainRow[], from?: ChainAnchor): Promise<ChainVerdict> {
  const expected = referenceVerifyChain(rows, from);
  assert.deepEqual(verifyChain(rows, from), expected, 'verifyChain');
  assert.deepEqual(await verifyChainAsync(cursor(rows), from), expected, 'verifyChainAsync over a cursor');
  assert.deepEqual(await verifyChainAsync(rows, from), expected, 'verifyChainAsync over an array');
  return expected;
}

const swap = (rows: ChainRow[], a: number, b: number) => {
  const [x, y] = [rows[a], rows[b]];
  rows[a] = { ...x, recorded: y.recorded, event: y.event };
  rows[b] = { ...y, recorded: x.recorded, event: x.event };
};

describe('the async chain verifier', () => {
  // The tamperings of audit-chain.test.ts, made to the rows the file would yield.
  const cases: [string, (rows: ChainRow[]) => ChainRow[], Partial<ChainVerdict>][] = [
    ['an untouched trail', (rows) => rows, { ok: true, count: 20 }],
    ['a record changed', (rows) => rows.map((r) => (r.seq === 7 ? { ...r, event: r.event.replace('"u7"', '"someone-else"') } : r)), { ok: false, seq: 7, problem: 'modified', count: 6 }],
    ['a record deleted', (rows) => rows.filter((r) => r.seq !== 7), { ok: false, seq: 7, problem: 'deleted', count: 6 }],
    ['a record inserted', (rows) => [
      ...rows.slice(0, 7),
      { seq: 8, recorded: '2026-11-29T00:00:07.500Z', event: '{"do":"read","who":"forged"}', hash: Buffer.alloc(32, 7) },
      ...rows.slice(7).map((r) => ({ ...r, seq: r.seq + 1 })),
    ], { ok: false, seq: 8, problem: 'inserted', count: 7 }],
    ['two records swapped', (rows) => {
      swap(rows, 6, 7);
      return rows;
    }, { ok: false, seq: 7, problem: 'reordered', count: 6 }],
    ['a record appended outside the chain', (rows) => [...rows, { seq: 21, recorded: '2026-11-29T00:01:00.000Z', event: '{"do":"read"}', hash: null }], { ok: false, seq: 21, problem: 'inserted', count: 20 }],
    // Cut short or rewritten from a record on, the chain holds link by link: the checkpoints tell (verify-trail.ts).
    ['the last records cut off', (rows) => rows.slice(0, 17), { ok: true, count: 17 }],
    ['a record changed and the chain recomputed after it', (rows) => {
      const changed = rows.map((r) => (r.seq === 7 ? { ...r, event: r.event.replace('"u7"', '"someone-else"') } : r));
      let previous = changed[5].hash!;
      for (const r of changed.slice(6)) r.hash = previous = chainHash(previous, r.recorded, r.event);
      return changed;
    }, { ok: true, count: 20 }],
  ];
  for (const [what, tamper, expected] of cases) {
    test(`${what}: the same verdict`, async () => {
      const verdict = await verdicts(tamper(chain(20)));
      for (const [k, v] of Object.entries(expected)) assert.equal((verdict as Record<string, unknown>)[k], v, `${what}: ${JSON.stringify(verdict)}`);
    });
  }

  test('from a purge anchor, and past the reorder window either side', async () => {
    const all = chain(300);
    const anchor = { seq: 100, head: all[99].hash! };
    assert.deepEqual(await verdicts(all.slice(100), anchor), { ok: true, count: 300, head: all[299].hash!.toString('hex') });
    assert.equal((await verdicts(all.slice(100))).ok, false, 'without its anchor');
    assert.equal((await verdicts(all.slice(101), anchor) as { problem: string }).problem, 'deleted');
    assert.deepEqual(await verdicts([], anchor), { ok: true, count: 100, head: anchor.head.toString('hex') });
    assert.deepEqual(await verdicts([]), { ok: true, count: 0, head: genesis.toString('hex') });
    // Content moved within the window is a reordering; moved further, a change.
    for (const distance of [1, 10, 63, 64, 65, 100]) {
      const rows = chain(300);
      swap(rows, 50, 50 + distance);
      await verdicts(rows);
    }
    // A change near the end: fewer records after it than the window.
    const late = chain(300);
    late[297] = { ...late[297], event: '{}' };
    assert.equal((await verdicts(late) as { seq: number }).seq, 298);
  });

  test('random tamperings: always the verdict of the reference', async () => {
    let seed = 0x2f6b1d;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const seen = new Set<string>();
    for (let round = 0; round < 400; round++) {
      const from = random(3) === 0 ? 50 : 0;
      const base = chain(150 + from);
      const anchor = from ? { seq: from, head: base[from - 1].hash! } : undefined;
      let rows = base.slice(from);
      for (let k = 0, edits = 1 + random(3); k < edits; k++) {
        const i = random(rows.length);
        switch (random(7)) {
          case 0: rows[i] = { ...rows[i], event: rows[i].event.replace('read', 'update') }; break;
          case 1: rows = rows.filter((_, j) => j !== i); break;
          case 2: swap(rows, i, Math.min(rows.length - 1, i + 1 + random(80))); break;
          case 3: rows[i] = { ...rows[i], hash: null }; break;
          case 4: rows = [...rows.slice(0, i), { ...rows[i], seq: rows[i].seq, hash: Buffer.alloc(32, k) }, ...rows.slice(i).map((r) => ({ ...r, seq: r.seq + 1 }))]; break;
          case 5: rows = rows.slice(0, i + 1); break;
          default: rows[i] = { ...rows[i], hash: rows[Math.max(0, i - 1)].hash }; break;
        }
      }
      const verdict = await verdicts(rows, anchor);
      seen.add(verdict.ok ? 'ok' : verdict.problem);
    }
    // The tamperings reached every verdict the chain alone gives.
    assert.deepEqual([...seen].sort(), ['deleted', 'inserted', 'modified', 'ok', 'reordered']);
  });

  test('reads no further than the verdict needs, and releases the cursor when it stops', async () => {
    let read = 0;
    let released = false;
    const rows = chain(10_000);
    rows[999] = { ...rows[999], event: '{}' };
    async function* counted(): AsyncGenerator<ChainRow> {
      try {
        for (const row of rows) {
          read++;
          yield row;
        }
      } finally {
        released = true;
      }
    }
    const verdict = await verifyChainAsync(counted());
    assert.deepEqual({ ok: verdict.ok, seq: !verdict.ok && verdict.seq }, { ok: false, seq: 1000 });
    assert.equal(read, 1000 + 64, 'the broken record and the reorder window after it');
    assert.ok(released, 'the cursor was returned');
  });

  test('keeps no more than its window of the records it has read', async () => {
    // Records made as they are read: while a trail far larger than the window is being verified,
    // the records it has passed can be collected.
    const registry = new FinalizationRegistry<number>(() => collected++);
    let collected = 0;
    let collectedWhileReading = 0;
    let previous = genesis;
    async function* made(): AsyncGenerator<ChainRow> {
      for (let seq = 1; seq <= 5000; seq++) {
        const recorded = new Date(seq * 1000).toISOString();
        const event = 'x'.repeat(100) + seq;
        previous = chainHash(previous, recorded, event);
        const row = { seq, recorded, event, hash: previous };
        registry.register(row, seq);
        yield row;
        if (seq % 1000 === 0) {
          gc();
          // Finalizers run as tasks of their own, after the collection.
          await new Promise<void>((resolve) => setTimeout(resolve, 10));
          collectedWhileReading = collected;
        }
      }
    }
    assert.equal((await verifyChainAsync(made())).ok, true);
    assert.ok(collectedWhileReading > 4000, `${collectedWhileReading} of the 5000 records collected while the verifier read on`);
  });
});

/**
 * The verifier as it was before it became one row-by-row check for both (git: src/audit/audit-chain.ts
 * of fe5bced): the verdicts both must still give.
 */
function referenceVerifyChain(rows: Iterable<ChainRow>, from?: ChainAnchor): ChainVerdict {
  const iterator = rows[Symbol.iterator]();
  const reorderWindow = 64;
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
      for (let i = 0; i < reorderWindow; i++) {
        const ahead = iterator.next().value as ChainRow | undefined;
        if (!ahead) break;
        pending.push(ahead);
      }
      const around = [...recent, ...pending];
      const moved = around.some((other) => other.seq !== row!.seq && chainHash(previous, other.recorded, other.event).equals(row!.hash!))
        || around.some((other, i) => i > 0 && other.hash !== null && chainHash(around[i - 1].hash ?? genesis, row!.recorded, row!.event).equals(other.hash));
      if (moved) return { ok: false, count, seq: row.seq, problem: 'reordered', detail: 'records are out of their recorded order' };
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
