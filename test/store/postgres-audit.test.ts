import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshSchema, pgSkip, postgresUrl } from '../postgres.ts';
import { Database } from '../../src/store/postgres/database.ts';
import { PgAuditLog, type PgChainRow } from '../../src/store/postgres/audit-log.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { verifyChain } from '../../src/audit/audit-chain.ts';
import { chainHash, genesis } from '../../src/crypto/hash-chain.ts';
import type { AuditCandidateQuery, AuditRecord } from '../../src/store/store.ts';

const database = (schema: string, max = 4) => new Database({ url: postgresUrl!, schema, max });

/** A read record as the audit log makes them (audit/audit-record.ts facts). */
function record(at: string, i: number): AuditRecord {
  return { recorded: at, json: JSON.stringify({ at, do: 'read', st: 200, who: `u${i % 3}`, ip: '127.0.0.1', what: [`Observation/o${i}`], pt: [`p${i % 4}`] }) };
}

const minute = (i: number, start = Date.UTC(2026, 10, 1)) => new Date(start + i * 60_000).toISOString();

/** audit_month holds each month's first and last position exactly (what lookups by position are narrowed by). */
async function assertMonthsExact(db: Database): Promise<void> {
  const held = await db.query('SELECT month, lo, hi FROM audit_month ORDER BY month');
  const actual = await db.query(
    `SELECT coalesce(extract(year FROM at AT TIME ZONE 'UTC') * 100 + extract(month FROM at AT TIME ZONE 'UTC'), 0)::integer AS month, min(seq) AS lo, max(seq) AS hi
     FROM audit_log GROUP BY 1 ORDER BY 1`,
  );
  assert.deepEqual(held, actual);
}

async function chainOf(log: PgAuditLog): Promise<PgChainRow[]> {
  const rows: PgChainRow[] = [];
  for await (const r of log.chainRows()) rows.push(r);
  return rows;
}

test('postgres audit: append, read, head, checkpoints and links round trip', { skip: pgSkip }, async () => {
  const db = database(freshSchema('audit'));
  const log = await PgAuditLog.open(db);
  try {
    assert.deepEqual(await log.head(), { count: 0, head: genesis });
    const records = Array.from({ length: 7 }, (_, i) => record(minute(i), i));
    assert.equal(await log.append(records.slice(0, 3)), 1);
    assert.equal(await log.append(records.slice(3, 4)), 4);
    assert.equal(await log.append([]), 0);
    assert.equal(await log.append(records.slice(4)), 5);

    const page1 = await log.records({ afterSeq: 0, limit: 4 });
    const page2 = await log.records({ afterSeq: 4, limit: 4 });
    assert.deepEqual([...page1, ...page2], records.map((r, i) => ({ seq: i + 1, ...r })));
    assert.deepEqual(await log.recordAt(6), { seq: 6, ...records[5] });
    assert.equal(await log.recordAt(8), undefined);

    let link = genesis;
    for (const r of records) link = chainHash(link, r.recorded, r.json);
    const head = await log.head();
    assert.equal(head.count, 7);
    assert.ok(head.head.equals(link), 'the head is the last link of the embedded rule');
    assert.ok((await log.linkAt(7))!.equals(link));
    assert.equal(await log.linkAt(99), undefined);

    await log.appendCheckpoint({ count: 7, head: link, at: '2026-11-01T01:00:00.000Z', jws: 'a.b.c' });
    await log.appendCheckpoint({ count: 7, head: link, at: '2026-11-01T02:00:00.000Z', jws: 'd.e.f' });
    assert.deepEqual(await log.checkpoints(), [
      { count: 7, head: link, at: '2026-11-01T01:00:00.000Z', jws: 'a.b.c' },
      { count: 7, head: link, at: '2026-11-01T02:00:00.000Z', jws: 'd.e.f' },
    ]);
    assert.deepEqual(verifyChain(await chainOf(log)), { ok: true, count: 7, head: link.toString('hex') });

    // close() waits for appends already made, and refuses later ones; the pool stays open.
    const more = (from: number) => Array.from({ length: 1000 }, (_, i) => record(minute(from + i), from + i));
    const pending = [log.append(more(7)), log.append(more(1007)), log.append(more(2007))];
    await log.close();
    assert.equal((await db.query<{ n: number }>('SELECT count(*) AS n FROM audit_log'))[0].n, 3007);
    assert.deepEqual(await Promise.all(pending), [8, 1008, 2008]);
    await assert.rejects(log.append([record(minute(9), 9)]), /closed/);
  } finally {
    await log.close();
    await db.close();
  }
});

test('postgres audit: a record the database refuses fails its own append only, not the others committed with it', { skip: pgSkip }, async () => {
  const db = database(freshSchema('audit'));
  const log = await PgAuditLog.open(db);
  try {
    // The first goes at once; the next two wait for it and go together: PostgreSQL text holds no NUL.
    const first = log.append([record(minute(0), 0)]);
    const bad = log.append([{ recorded: minute(1), json: 'a NUL: \u0000' }]);
    const third = log.append([record(minute(2), 2)]);
    await assert.rejects(bad);
    assert.deepEqual(await Promise.all([first, third]), [1, 2]);
    assert.deepEqual(verifyChain(await chainOf(log)), { ok: true, count: 2, head: (await log.head()).head.toString('hex') });
  } finally {
    await log.close();
    await db.close();
  }
});

test('postgres audit: candidates by key and by time, both directions, with paging', { skip: pgSkip }, async () => {
  const db = database(freshSchema('audit'));
  const log = await PgAuditLog.open(db);
  try {
    await log.append(Array.from({ length: 60 }, (_, i) => record(minute(i), i)));
    const seqs = async (q: AuditCandidateQuery) => (await log.candidates(q)).map((r) => r.seq);
    // Keys are written with their records: nothing waits to be indexed.
    assert.deepEqual(await seqs({ keys: ['p|p1'], descending: true, limit: 100 }), Array.from({ length: 15 }, (_, i) => 58 - i * 4));
    assert.deepEqual((await seqs({ keys: ['a|u2'], descending: false, limit: 100 })).slice(0, 5), [3, 6, 9, 12, 15]);
    assert.deepEqual(await seqs({ keys: ['e|Observation/o7', 'e|Observation/o8'], descending: true, limit: 100 }), [9, 8]);
    assert.deepEqual(await seqs({ keys: ['p|nobody'], descending: true, limit: 100 }), []);
    assert.deepEqual(await seqs({ keys: [], descending: true, limit: 100 }), []);
    // Several keys merged in order, paged with `after`, both ways.
    const keys = ['p|p1', 'a|u0'];
    const all = await seqs({ keys, descending: true, limit: 100 });
    assert.deepEqual(all, [...new Set([...Array.from({ length: 15 }, (_, i) => 58 - i * 4), ...Array.from({ length: 20 }, (_, i) => 58 - i * 3)])].sort((a, b) => b - a));
    const paged: number[] = [];
    for (let after: number | undefined; ;) {
      const page = await seqs({ keys, descending: true, limit: 7, after });
      if (page.length === 0) break;
      assert.ok(page.length <= 7);
      paged.push(...page);
      after = page[page.length - 1];
    }
    assert.deepEqual(paged, all);
    const up: number[] = [];
    for (let after: number | undefined; ;) {
      const page = await seqs({ keys, descending: false, limit: 6, after });
      if (page.length === 0) break;
      up.push(...page);
      after = page[page.length - 1];
    }
    assert.deepEqual(up, [...all].reverse());
    // A time range becomes positions, widened by five minutes either side (the caller tests exact times).
    // Minutes 45..56 (the record of minute i is at position i + 1).
    assert.deepEqual(await seqs({ from: minute(50), to: minute(52), descending: false, limit: 100 }), Array.from({ length: 12 }, (_, i) => 46 + i));
    assert.deepEqual(await seqs({ from: minute(50), to: minute(52), descending: true, limit: 4 }), [57, 56, 55, 54]);
    assert.deepEqual(await seqs({ from: minute(50), to: minute(52), descending: true, limit: 4, after: 54 }), [53, 52, 51, 50]);
    assert.deepEqual(await seqs({ from: minute(30), descending: false, limit: 3 }), [26, 27, 28]);
    assert.deepEqual(await seqs({ to: minute(2), descending: true, limit: 100 }), [7, 6, 5, 4, 3, 2, 1]);
    assert.deepEqual(await seqs({ from: minute(200), descending: true, limit: 100 }), []);
    assert.deepEqual(await seqs({ keys: ['p|p1'], from: minute(20), to: minute(30), descending: false, limit: 100 }), [18, 22, 26, 30, 34]);
    const [r] = await log.candidates({ keys: ['e|Observation/o7'], descending: true, limit: 1 });
    assert.deepEqual(r, { seq: 8, ...record(minute(7), 7) });
  } finally {
    await log.close();
    await db.close();
  }
});

test('postgres audit: the same candidates as the embedded store for the same records', { skip: pgSkip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bastion-pg-audit-'));
  const key = randomBytes(32);
  const db = database(freshSchema('audit'));
  const log = await PgAuditLog.open(db);
  let sqlite = new SqliteStore({ path: join(dir, 'bastion.db'), key });
  try {
    // Out of time order by up to a couple of minutes, in batches, over two months; some agents and patients shared.
    let n = 0;
    for (let batch = 0; batch < 20; batch++) {
      const records = Array.from({ length: 25 }, (_, i) => {
        const k = n++;
        const at = new Date(Date.UTC(2026, 9, 31, 20) + k * 90_000 - (k % 5) * 45_000).toISOString();
        return { recorded: at, json: JSON.stringify({ at, do: 'search', st: 200, who: `u${k % 7}`, fu: `Practitioner/${k % 5}`, ip: '10.0.0.1', what: [`Patient/p${k % 11}`, `Encounter/e${k % 13}`], pt: [`p${k % 11}`] }) };
      });
      assert.equal(await log.append(records), await sqlite.appendAudit(records));
    }
    // Reopened, the embedded store indexes every record: its candidates are exact, not a superset.
    await sqlite.close();
    sqlite = new SqliteStore({ path: join(dir, 'bastion.db'), key });
    const t = (k: number) => new Date(Date.UTC(2026, 9, 31, 20) + k * 90_000).toISOString();
    const queries: AuditCandidateQuery[] = [];
    for (const descending of [true, false]) {
      for (const limit of [5, 50, 1000]) {
        queries.push(
          { descending, limit },
          { keys: ['p|p3'], descending, limit },
          { keys: ['a|u2', 'a|Practitioner/4', 'e|Encounter/e5'], descending, limit },
          { keys: ['p|p1'], from: t(100), to: t(300), descending, limit },
          { from: t(240), to: t(260), descending, limit },
          { from: t(480), descending, limit },
          { to: t(3), descending, limit },
          { keys: ['a|u1'], after: 250, descending, limit },
          { from: t(100), after: 200, descending, limit },
        );
      }
    }
    for (const q of queries) {
      const [pg, embedded] = await Promise.all([log.candidates(q), sqlite.auditCandidates(q)]);
      assert.deepEqual(pg, embedded, JSON.stringify(q));
    }
    assert.deepEqual(await log.head(), await sqlite.auditHead());
  } finally {
    await log.close();
    await db.close();
    await sqlite.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('postgres audit: two nodes append to one chain concurrently, without forks or gaps', { skip: pgSkip }, async () => {
  const schema = freshSchema('audit');
  const dbs = [database(schema, 6), database(schema, 6)];
  // Two nodes starting together on an empty schema.
  const logs = await Promise.all(dbs.map((db) => PgAuditLog.open(db)));
  try {
    const perNode = 2000;
    const appended: { first: number; length: number }[] = [];
    await Promise.all(logs.map(async (log, node) => {
      // Many callers at once, each appending small batches (1..5 records) as requests finish.
      let made = 0;
      const callers = Array.from({ length: 25 }, async (_, c) => {
        while (made < perNode) {
          const length = Math.min(1 + ((made + c) % 5), perNode - made);
          const records = Array.from({ length }, (_, i) => record(new Date().toISOString(), node * 100_000 + made + i));
          made += length;
          appended.push({ first: await log.append(records), length });
        }
      });
      await Promise.all(callers);
    }));
    const total = 2 * perNode;
    // Every append got its own positions; together they tile 1..total.
    const taken = new Uint8Array(total + 1);
    for (const a of appended) for (let s = a.first; s < a.first + a.length; s++) taken[s]++;
    assert.ok(taken.slice(1).every((t) => t === 1), 'positions 1..N, each once');
    const [stats] = await dbs[0].query<{ n: number; distinct: number; lo: number; hi: number }>('SELECT count(*) AS n, count(DISTINCT seq) AS distinct, min(seq) AS lo, max(seq) AS hi FROM audit_log');
    assert.deepEqual(stats, { n: total, distinct: total, lo: 1, hi: total });
    // Group commit: far fewer transactions (each row's xmin) than appends.
    const [{ tx }] = await dbs[0].query<{ tx: number }>('SELECT count(DISTINCT xmin::text) AS tx FROM audit_log');
    assert.ok(tx < appended.length / 2, `${tx} transactions for ${appended.length} appends`);
    const head = await logs[1].head();
    assert.equal(head.count, total);
    const verdict = verifyChain(await chainOf(logs[0]));
    assert.deepEqual(verdict, { ok: true, count: total, head: head.head.toString('hex') });
    // Each node's records are found by their keys, whichever node searches.
    assert.equal((await logs[0].candidates({ keys: ['e|Observation/o100007'], descending: true, limit: 10 })).length, 1);
  } finally {
    await Promise.all(logs.map((l) => l.close()));
    await Promise.all(dbs.map((d) => d.close()));
  }
});

test('postgres audit: the database refuses changes to the trail; a change made behind its back is detected', { skip: pgSkip }, async () => {
  const db = database(freshSchema('audit'));
  const log = await PgAuditLog.open(db);
  try {
    await log.append(Array.from({ length: 10 }, (_, i) => record(minute(i), i)));
    const head = await log.head();
    await log.appendCheckpoint({ count: 10, head: head.head, at: minute(11), jws: 'x.y.z' });
    const refused = async (sql: string) => assert.rejects(db.exec(sql), /append-only|only moves forward/, sql);
    await refused(`UPDATE audit_log SET event = '{}' WHERE seq = 5`);
    await refused(`UPDATE audit_log SET hash = '\\x00' WHERE seq = 5`);
    await refused('DELETE FROM audit_log WHERE seq = 10');
    await refused('DELETE FROM audit_log_p202611 WHERE seq = 10');
    await refused('TRUNCATE audit_log');
    await refused('TRUNCATE audit_log_p202611');
    await refused('TRUNCATE audit_log_default');
    await refused(`UPDATE audit_checkpoint SET jws = 'forged'`);
    await refused('DELETE FROM audit_checkpoint');
    await refused('TRUNCATE audit_checkpoint');
    await db.exec(`INSERT INTO audit_purge (through, head, before, at, jws) VALUES (0, '\\x00', 'b', 'a', 'j')`);
    await refused(`UPDATE audit_purge SET through = 10`);
    await refused('DELETE FROM audit_purge');
    await refused('UPDATE audit_head SET count = 3');
    await refused('DELETE FROM audit_head');
    const [n] = await db.query<{ n: number; c: number }>('SELECT (SELECT count(*) FROM audit_log) AS n, (SELECT count(*) FROM audit_checkpoint) AS c');
    assert.deepEqual(n, { n: 10, c: 1 });
    assert.equal(verifyChain(await chainOf(log)).ok, true);

    // The owner can switch the trigger off: the chain shows what was changed, and where.
    await db.exec('ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update');
    await db.exec(`UPDATE audit_log SET event = replace(event, '"st":200', '"st":403') WHERE seq = 5`);
    await db.exec('ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update');
    const verdict = verifyChain(await chainOf(log));
    assert.equal(verdict.ok, false);
    assert.deepEqual(verdict.ok ? undefined : { seq: verdict.seq, problem: verdict.problem, count: verdict.count }, { seq: 5, problem: 'modified', count: 4 });
  } finally {
    await log.close();
    await db.close();
  }
});

test('postgres audit: a time search reads past a gap left by a deletion behind the database\'s back', { skip: pgSkip }, async () => {
  const db = database(freshSchema('audit'));
  const log = await PgAuditLog.open(db);
  try {
    // Position 6 was recorded just before midnight and appended late (an append's lag), in February.
    const times = ['00:00', '00:01', '00:02', '00:03', '00:04'].map((t) => `2026-03-01T${t}:00.000Z`);
    await log.append([...times, '2026-02-28T23:59:00.000Z', '2026-03-01T00:10:00.000Z', '2026-03-01T00:11:00.000Z'].map((at, i) => record(at, i)));
    await db.exec('ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_delete');
    await db.exec('DELETE FROM audit_log WHERE seq = 5');
    await db.exec('ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_delete');
    // As the embedded store bisects: the record at or after a missing position is the next one there is, in whichever month.
    assert.deepEqual((await log.candidates({ to: '2026-03-01T00:00:00Z', descending: false, limit: 100 })).map((r) => r.seq), [1, 2, 3, 4, 6]);
  } finally {
    await log.close();
    await db.close();
  }
});

test('postgres audit: records land in a partition per month, made on demand by several nodes', { skip: pgSkip }, async () => {
  const schema = freshSchema('audit');
  const dbs = [database(schema), database(schema)];
  const logs = await Promise.all(dbs.map((db) => PgAuditLog.open(db)));
  try {
    const partitionsNow = async () => (await dbs[0].query<{ name: string }>(
      `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'audit_log'::regclass ORDER BY 1`,
    )).map((r) => r.name);
    // This month's and next month's are made at open, ahead of the records.
    const now = new Date();
    const month = (d: Date) => `audit_log_p${d.getUTCFullYear()}${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
    const next = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1));
    assert.deepEqual(await partitionsNow(), [month(now), month(next), 'audit_log_default'].sort());

    // Both nodes append records of two past months at once; `recorded` is kept as it was hashed.
    const march = ['2026-03-31T23:59:59.999Z', '2026-03-05T10:00:00.123+02:00', '2026-04-01T01:30:00+02:00'];
    const april = ['2026-04-01T00:00:00.000Z', '2026-04-30T12:00:00Z'];
    const odd = ['not a time', '2999-01-01T00:00:00Z'];
    await Promise.all([
      logs[0].append([...march, ...april].map((at, i) => record(at, i))),
      logs[1].append([...april, ...march].map((at, i) => record(at, i))),
      logs[1].append(odd.map((at, i) => record(at, i))),
    ]);
    assert.deepEqual(await partitionsNow(), ['audit_log_p202603', 'audit_log_p202604', month(now), month(next), 'audit_log_default'].sort());
    const placed = await dbs[0].query<{ part: string; recorded: string }>('SELECT tableoid::regclass::text AS part, recorded FROM audit_log ORDER BY 1, 2');
    const by = (part: string) => placed.filter((p) => p.part === part).map((p) => p.recorded).sort();
    // 2026-04-01T01:30+02:00 is 2026-03-31T23:30Z: March, in UTC.
    assert.deepEqual(by('audit_log_p202603'), [...march, ...march].sort());
    assert.deepEqual(by('audit_log_p202604'), [...april, ...april].sort());
    // Unparsable and far-future times: the DEFAULT partition takes them; nothing fails.
    assert.deepEqual(by('audit_log_default'), [...odd].sort());
    await assertMonthsExact(dbs[0]);
    assert.equal(verifyChain(await chainOf(logs[0])).ok, true);
  } finally {
    await Promise.all(logs.map((l) => l.close()));
    await Promise.all(dbs.map((d) => d.close()));
  }
});

test('postgres audit: a purge after retention removes what it covers, and the chain verifies from its anchor', { skip: pgSkip }, async () => {
  const db = database(freshSchema('audit'));
  const log = await PgAuditLog.open(db);
  try {
    const december = record('2018-12-31T12:00:00.000Z', 100);
    const january = Array.from({ length: 10 }, (_, i) => record(i === 2 ? 'not a time' : minute(i, Date.UTC(2019, 0, 20)), i));
    const february = Array.from({ length: 10 }, (_, i) => record(minute(i, Date.UTC(2019, 1, 20)), 10 + i));
    const recent = Array.from({ length: 4 }, (_, i) => record(minute(i, Date.UTC(2026, 10, 1)), 20 + i));
    // 1: December; 2..11: January (4 has no time: DEFAULT); 12..21: February; 22..25: now; 26: December again, late.
    await log.append([december, ...january, ...february]);
    await log.append([...recent, record('2018-12-31T13:00:00.000Z', 101)]);
    await assert.rejects(db.exec('DELETE FROM audit_log WHERE seq <= 16'), /only a purge/);

    const through = 16;
    const link = (await log.linkAt(through))!;
    await log.removeThrough({ through, head: link, before: '2019-02-20T00:05:00.000Z', at: '2026-11-29T00:00:00.000Z', jws: 'signed' });
    assert.deepEqual((await log.purges()).map((p) => ({ ...p, head: p.head.toString('hex') })), [
      { through, head: link.toString('hex'), before: '2019-02-20T00:05:00.000Z', at: '2026-11-29T00:00:00.000Z', jws: 'signed' },
    ]);
    const rows = await chainOf(log);
    assert.deepEqual(rows.map((r) => r.seq), Array.from({ length: 10 }, (_, i) => 17 + i));
    // January was wholly covered: its partition went. December (a record came late) and February keep what the purge did not cover.
    const placed = await db.query<{ part: string; n: number }>('SELECT tableoid::regclass::text AS part, count(*) AS n FROM audit_log GROUP BY 1 ORDER BY 1');
    assert.deepEqual(placed, [{ part: 'audit_log_p201812', n: 1 }, { part: 'audit_log_p201902', n: 5 }, { part: 'audit_log_p202611', n: 4 }]);
    const parts = (await db.query<{ name: string }>(`SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'audit_log'::regclass`)).map((r) => r.name);
    assert.ok(!parts.includes('audit_log_p201901') && parts.includes('audit_log_p201812') && parts.includes('audit_log_default'), parts.join());
    assert.equal((await db.query<{ n: number }>('SELECT count(*) AS n FROM audit_key WHERE seq <= ?', [through]))[0].n, 0);
    await assertMonthsExact(db);
    assert.deepEqual((await log.candidates({ keys: ['p|p1'], descending: false, limit: 100 })).map((r) => r.seq), [19, 23, 26]);
    assert.deepEqual((await log.candidates({ from: '2019-02-20T00:07:00Z', descending: false, limit: 3 })).map((r) => r.seq), [17, 18, 19]);
    assert.deepEqual(await log.records({ afterSeq: 0, limit: 2 }), [{ seq: 17, ...february[5] }, { seq: 18, ...february[6] }]);
    assert.deepEqual(await log.recordAt(26), { seq: 26, ...record('2018-12-31T13:00:00.000Z', 101) });
    assert.equal(await log.recordAt(16), undefined);

    assert.equal(verifyChain(rows, { seq: through, head: link }).ok, true);
    assert.equal(verifyChain(rows).ok, false, 'without the anchor the first record does not chain from genesis');
    // Positions go on after the purge; what it did not cover is still refused.
    assert.equal(await log.append([record(minute(9, Date.UTC(2026, 10, 1)), 9)]), 27);
    await assert.rejects(db.exec('DELETE FROM audit_log WHERE seq = 17'), /only a purge/);
    const verdict = verifyChain(await chainOf(log), { seq: through, head: link });
    assert.deepEqual(verdict, { ok: true, count: 27, head: (await log.head()).head.toString('hex') });
  } finally {
    await log.close();
    await db.close();
  }
});
