import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RequestRates, type PublishedCount, type RateShare, type SharedCount } from '../../src/monitor/request-rates.ts';
import type { RateCounter } from '../../src/access/rate-limits.ts';
import { PgRateShare } from '../../src/store/postgres/rate-share.ts';
import { Database } from '../../src/store/postgres/database.ts';
import { freshSchema, pgSkip, postgresUrl } from '../postgres.ts';

const counter = (limit: number, key = 'user:a'): RateCounter => ({ key, limit, scope: 'user' });
const minute = 60_000;

function clocked(start = 100 * minute, share?: RateShare) {
  const clock = { now: start };
  const rates = new RequestRates({ windowSeconds: 60, now: () => clock.now, syncMs: 3_600_000, ...(share ? { share } : {}) });
  return { clock, rates };
}

function admitted(rates: RequestRates, counters: RateCounter[], tries: number): number {
  let n = 0;
  for (let i = 0; i < tries; i++) if (rates.admit(counters)?.allowed) n++;
  return n;
}

describe('request rates: a sliding window', () => {
  test('admits up to the limit, then refuses with a Retry-After until the window has room', async () => {
    const { clock, rates } = clocked();
    assert.equal(admitted(rates, [counter(10)], 15), 10);
    const refused = rates.admit([counter(10)])!;
    assert.equal(refused.allowed, false);
    assert.equal(refused.remaining, 0);
    // All 10 are in the current window: room comes only as they slide out in the next one.
    assert.ok(refused.retryAfter! > 60 && refused.retryAfter! <= 120, String(refused.retryAfter));
    // Halfway through the next window, half the previous window's requests still count.
    clock.now += 1.5 * minute;
    assert.equal(admitted(rates, [counter(10)], 10), 5);
    clock.now += 2 * minute;
    assert.equal(admitted(rates, [counter(10)], 20), 10);
    await rates.close();
  });

  test('no burst of twice the limit across a window boundary', async () => {
    const { clock, rates } = clocked(100 * minute + 59_000);
    assert.equal(admitted(rates, [counter(10)], 10), 10);
    clock.now += 2_000;
    assert.equal(admitted(rates, [counter(10)], 10), 0, 'just after the boundary the last window still weighs nearly all');
    await rates.close();
  });

  test('a request over one counter counts against none; the nearest counter is reported', async () => {
    const { rates } = clocked();
    const user = counter(100, 'user:a');
    const app = counter(3, 'app:x');
    assert.equal(admitted(rates, [user, app], 5), 3);
    const first = rates.admit([user])!;
    assert.equal(first.remaining, 100 - 3 - 1, 'the refusals of the app counter were not counted for the user');
    const nearest = rates.admit([user, counter(50, 'app:y')])!;
    assert.equal(nearest.counter.key, 'app:y');
    await rates.close();
  });

  test('the first refusal of a key in a window is marked (one alert), the next are not', async () => {
    const { clock, rates } = clocked();
    admitted(rates, [counter(1)], 1);
    assert.equal(rates.admit([counter(1)])!.firstRefusal, true);
    assert.equal(rates.admit([counter(1)])!.firstRefusal, false);
    clock.now += minute;
    assert.equal(rates.admit([counter(1)])!.firstRefusal, true);
    await rates.close();
  });

  test('a batch counts as its entries: admitted while they fit, refused whole when they do not', async () => {
    const { rates } = clocked();
    assert.equal(rates.admit([counter(10)], 6)!.allowed, true);
    const refused = rates.admit([counter(10)], 5)!;
    assert.equal(refused.allowed, false);
    assert.equal(rates.admit([counter(10)], 4)!.allowed, true, 'the refused batch counted nothing');
    assert.equal(rates.admit([counter(10)], 1)!.allowed, false);
    const never = rates.admit([counter(10, 'user:b')], 11)!;
    assert.equal(never.allowed, false, 'a batch larger than the limit never fits');
    assert.equal(never.neverFits, true);
    await rates.close();
  });

  test('a refusal tells the longest wait among the counters over their limits', async () => {
    const { clock, rates } = clocked();
    const user = counter(5, 'user:a');
    const app = counter(5, 'app:x');
    admitted(rates, [app], 5);
    clock.now += minute;
    admitted(rates, [user], 5);
    const refused = rates.admit([app, user])!;
    assert.equal(refused.counter.key, 'user:a', 'the user counter, filled later, frees up later');
    await rates.close();
  });

  test('keys gone quiet for two windows are forgotten', async () => {
    const { clock, rates } = clocked();
    for (let i = 0; i < 100; i++) rates.admit([counter(10, `user:${i}`)]);
    clock.now += 2 * minute;
    await rates.sync();
    assert.equal((rates as unknown as { entries: Map<string, unknown> }).entries.size, 0);
    await rates.close();
  });
});

/** Several nodes' counts in one place, as the database holds them. */
class MemoryShare implements RateShare {
  private readonly rows: Map<string, SharedCount & { node: string }>;
  private readonly node: string;
  constructor(rows: Map<string, SharedCount & { node: string }>, node: string) {
    this.rows = rows;
    this.node = node;
  }
  id(key: string): string {
    return `mac(${key})`;
  }
  async exchange(own: PublishedCount[], ids: string[], since: number): Promise<SharedCount[]> {
    for (const c of own) this.rows.set(`${c.window}|${c.id}|${this.node}`, { ...c, node: this.node });
    const wanted = new Set(ids);
    return [...this.rows.values()].filter((r) => r.node !== this.node && r.window >= since && wanted.has(r.id)).map(({ id, window, count }) => ({ id, window, count }));
  }
  async close(): Promise<void> {}
}

describe('request rates: bounded', () => {
  test('past the most keys it counts, new keys go uncounted (told once) until old ones go quiet', async () => {
    let told = 0;
    const clock = { now: 100 * minute };
    const rates = new RequestRates({ windowSeconds: 60, now: () => clock.now, syncMs: 3_600_000, maxKeys: 3, onFull: () => told++ });
    for (const k of ['a', 'b', 'c']) rates.admit([counter(1, k)]);
    assert.equal(rates.admit([counter(1, 'd')]), undefined);
    assert.equal(rates.admit([counter(1, 'e')]), undefined);
    assert.equal(told, 1);
    assert.equal(rates.admit([counter(1, 'a')])!.allowed, false, 'keys already counted stay counted');
    clock.now += 2 * minute;
    await rates.sync();
    assert.equal(rates.admit([counter(1, 'd')])!.allowed, true);
    await rates.close();
  });

  test('an exchange that never answers is given up: keys are forgotten again, no second call queues behind it, and it does not hold the shutdown', async () => {
    // The rates' own timers do not keep a process alive; this test's awaits need one that does.
    const keepAlive = setInterval(() => undefined, 1000);
    let calls = 0;
    const hung: RateShare = { id: (k) => k, exchange: () => (calls++, new Promise(() => undefined)), close: () => new Promise(() => undefined) };
    const errors: unknown[] = [];
    const clock = { now: 100 * minute };
    const rates = new RequestRates({ windowSeconds: 60, now: () => clock.now, syncMs: 3_600_000, share: hung, exchangeTimeoutMs: 50, onError: (e) => errors.push(e) });
    for (let i = 0; i < 10; i++) rates.admit([counter(5, `user:${i}`)]);
    await rates.sync();
    assert.ok(errors.length >= 1, 'the exchange timed out');
    clock.now += 3 * minute;
    const pending = rates.sync();
    const entries = (rates as unknown as { entries: Map<string, unknown> }).entries;
    assert.equal(entries.size, 0, 'forgotten although the first call still hangs');
    await pending;
    assert.equal(calls, 1, 'while the first call is outstanding, no other is made');
    const started = Date.now();
    await rates.close();
    assert.ok(Date.now() - started < 3000, 'close gave up on the outstanding exchange and on the share closing');
    await rates.sync();
    assert.equal(calls, 1, 'nothing is exchanged after close');
    clearInterval(keepAlive);
  });
});

/** Two nodes' counters over one in-memory table, their clocks at `start`. */
function twoNodes(start: number) {
  const rows = new Map();
  return { a: clocked(start, new MemoryShare(rows, 'a')), b: clocked(start, new MemoryShare(rows, 'b')) };
}

describe('request rates shared by several nodes', () => {
  test("a node counts the others' requests once they have exchanged", async () => {
    const { a, b } = twoNodes(100 * minute);
    assert.equal(admitted(a.rates, [counter(10)], 6), 6);
    await a.rates.sync();
    // B learns the others' counts of a key at its first exchange after counting the key itself.
    assert.equal(admitted(b.rates, [counter(10)], 1), 1);
    await b.rates.sync();
    assert.equal(admitted(b.rates, [counter(10)], 10), 3);
    await b.rates.sync();
    await a.rates.sync();
    assert.equal(admitted(a.rates, [counter(10)], 10), 0);
    await a.rates.close();
    await b.rates.close();
  });

  test('a key new to a node is looked up at once, before the next exchange', async () => {
    const { a, b } = twoNodes(100 * minute);
    assert.equal(admitted(a.rates, [counter(10)], 7), 7);
    await a.rates.sync();
    assert.equal(admitted(b.rates, [counter(10)], 1), 1, 'counted here before anything is known of it');
    await new Promise((r) => setTimeout(r, 120));
    assert.equal(admitted(b.rates, [counter(10)], 10), 2, "the lookup brought A's 7");
    await a.rates.close();
    await b.rates.close();
  });

  test('counts made before a window turned are published as that window after it', async () => {
    const { a, b } = twoNodes(100 * minute + 59_900);
    admitted(a.rates, [counter(10)], 8);
    a.clock.now += 200;
    b.clock.now += 200;
    await a.rates.sync();
    admitted(b.rates, [counter(10)], 1);
    await b.rates.sync();
    assert.ok(admitted(b.rates, [counter(10)], 10) <= 2, 'the 8 of the window just ended weigh almost fully');
    await a.rates.close();
    await b.rates.close();
  });

  test('a failed exchange publishes again at the next', async () => {
    const rows = new Map();
    let fail = true;
    const flaky = new MemoryShare(rows, 'a');
    const original = flaky.exchange.bind(flaky);
    flaky.exchange = async (own, ids, since) => {
      if (fail) throw new Error('connection lost');
      return original(own, ids, since);
    };
    const errors: unknown[] = [];
    const clock = { now: 100 * minute };
    const a = new RequestRates({ windowSeconds: 60, now: () => clock.now, syncMs: 3_600_000, share: flaky, onError: (e) => errors.push(e) });
    admitted(a, [counter(10)], 5);
    await a.sync();
    assert.ok(errors.length >= 1);
    fail = false;
    await a.sync();
    assert.equal([...rows.values()].find((r) => r.window === 100)?.count, 5);
    await a.close();
  });
});

describe('request rates shared through PostgreSQL', { skip: pgSkip }, () => {
  const schema = freshSchema('rates');
  const key = Buffer.alloc(32, 7);
  const shares: PgRateShare[] = [];
  after(async () => {
    for (const s of shares) await s.close().catch(() => undefined);
  });

  test('two nodes on one database hold one limit between them; the table holds MACs, not keys', async () => {
    const open = async (node: string) => {
      const share = await PgRateShare.open({ url: postgresUrl!, schema, node, lookupKey: key });
      shares.push(share);
      return share;
    };
    const a = clocked(100 * minute, await open('a'));
    const b = clocked(100 * minute, await open('b'));
    const c = counter(10, 'user:https://as|patient-7');
    assert.equal(admitted(a.rates, [c], 7), 7);
    await a.rates.sync();
    assert.equal(admitted(b.rates, [c], 1), 1);
    await b.rates.sync();
    assert.equal(admitted(b.rates, [c], 10), 2);
    await b.rates.sync();
    await a.rates.sync();
    assert.equal(admitted(a.rates, [c], 5), 0);

    const db = new Database({ url: postgresUrl!, schema, max: 1 });
    try {
      const rows = await db.query<{ id: string; node: string; count: number }>('SELECT id, node, count FROM rate_counts ORDER BY node');
      assert.deepEqual(rows.map((r) => [r.node.split('/')[0], r.count]), [['a', 7], ['b', 3]]);
      for (const r of rows) assert.doesNotMatch(r.id, /patient|user/);
      assert.equal(rows[0].id, rows[1].id, 'both nodes name the key alike');
    } finally {
      await db.close();
    }
  });

  test('a table held locked by someone else: the exchange gives up in its time, publishes at the next, and close does not wait', async () => {
    const share = await PgRateShare.open({ url: postgresUrl!, schema, node: 'c', lookupKey: key, timeoutMs: 300 });
    const errors: unknown[] = [];
    const rates = new RequestRates({ windowSeconds: 60, now: () => 100 * minute, syncMs: 3_600_000, share, exchangeTimeoutMs: 300, onError: (e) => errors.push(e) });
    const holder = new Database({ url: postgresUrl!, schema, max: 1 });
    try {
      await holder.withClient(async (client) => {
        await client.query('BEGIN');
        await client.query('LOCK TABLE rate_counts IN ACCESS EXCLUSIVE MODE');
        rates.admit([counter(10, 'user:locked-out')]);
        const started = Date.now();
        await rates.sync();
        assert.ok(errors.length >= 1 && Date.now() - started < 2000, 'given up in its time');
        await client.query('ROLLBACK');
      });
      // The statement the database cancelled (statement_timeout) frees the connection.
      for (let i = 0; i < 20 && errors.length > 0; i++) {
        errors.length = 0;
        await new Promise((r) => setTimeout(r, 100));
        await rates.sync();
      }
      assert.equal(errors.length, 0, 'exchanging again once the table is free');
      const rows = await holder.query<{ count: number }>("SELECT count FROM rate_counts WHERE node LIKE 'c/%'");
      assert.deepEqual(rows.map((r) => r.count), [1], 'the count made while locked out was published');
    } finally {
      await holder.close();
      await rates.close();
    }
  });
});
