import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshSchema, pgSkip, postgresUrl } from '../postgres.ts';
import { loadConfig, type Config } from '../../src/config/config.ts';
import { auditSigningKey, openKeys, openStore } from '../../src/main.ts';
import type { Store } from '../../src/store/store.ts';
import type { PgStore } from '../../src/store/postgres/pg-store.ts';
import { Database } from '../../src/store/postgres/database.ts';
import { AuditCheckpoints } from '../../src/audit/checkpoints.ts';
import { exportAuditTrail, verifyAudit, withAuditTrail } from '../../src/cli/audit.ts';
import { pgAuditTrail } from '../../src/audit/trail-stores.ts';
import { verifyAuditTrail } from '../../src/audit/verify-trail.ts';
import { purgeAuditTrail } from '../../src/audit/retention.ts';
import type { AuditTrail } from '../../src/audit/audit-trail.ts';
import { chainHash } from '../../src/crypto/hash-chain.ts';
import { cliAsync } from './run-bastion.ts';

/**
 * `bastion audit verify`, `export` and `purge` on a PostgreSQL deployment (a config with a
 * database): the trail several nodes append to, verified, exported and purged after retention
 * with the output and exit codes of the embedded store, while the nodes go on appending.
 */

const record = (at: string, n: number) => ({ recorded: at, json: JSON.stringify({ at, do: 'read', st: 200, who: `u${n}`, ip: '127.0.0.1', what: [`Patient/${n}`], pt: [String(n)] }) });
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe('audit commands on PostgreSQL', { skip: pgSkip }, () => {
  /** One data dir for every deployment here: its keys (the audit key among them) are the nodes'. */
  let dir: string;
  const open: Store[] = [];
  const pools: Database[] = [];
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bastion-audit-pg-'));
    await openKeys(dir);
  });
  after(async () => {
    for (const s of open) await s.close();
    for (const p of pools) await p.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A deployment on a schema of its own: its config, the command's environment, and `nodes` nodes on it. */
  async function deployment(nodes = 1): Promise<{ config: Config; env: Record<string, string>; schema: string; nodes: Store[]; db: Database }> {
    const schema = freshSchema('auditcli');
    const env = { BASTION_DATABASE_URL: postgresUrl!, BASTION_DATABASE_SCHEMA: schema };
    const config = loadConfig({ dataDir: dir }, env);
    const keys = await openKeys(dir);
    const stores: Store[] = [];
    for (let i = 0; i < nodes; i++) stores.push(await openStore(dir, keys, { ...config, nodeName: `node-${i}` }));
    open.push(...stores);
    const db = new Database({ url: postgresUrl!, schema, max: 2 });
    pools.push(db);
    return { config, env, schema, nodes: stores, db };
  }

  /** Changes the trail behind the database's back, as the tables' owner can: triggers off on the record's partition, the change, triggers on. */
  async function tamper(db: Database, seq: number, change: (table: string) => string[]): Promise<void> {
    const [{ part }] = await db.query<{ part: string }>('SELECT tableoid::regclass::text AS part FROM audit_log WHERE seq = ?', [seq]);
    await db.exec(`ALTER TABLE ${part} DISABLE TRIGGER ALL`);
    try {
      for (const sql of change(part)) await db.exec(sql);
    } finally {
      await db.exec(`ALTER TABLE ${part} ENABLE TRIGGER ALL`);
    }
  }

  /** 20 records (seconds 1..20 of a day this month) appended by one node and a signed checkpoint of the head. */
  async function twentyRecords(): Promise<Awaited<ReturnType<typeof deployment>>> {
    const d = await deployment();
    const day = new Date();
    day.setUTCDate(1);
    const at = (n: number) => `${day.toISOString().slice(0, 10)}T00:00:${String(n).padStart(2, '0')}.000Z`;
    for (let batch = 0; batch < 4; batch++) await d.nodes[0].appendAudit(Array.from({ length: 5 }, (_, i) => record(at(batch * 5 + i + 1), batch * 5 + i + 1)));
    await new AuditCheckpoints(d.nodes[0], await auditSigningKey(dir)).checkpoint();
    return d;
  }

  test('verify: intact after two nodes appended, and while they go on appending', async () => {
    const d = await deployment(2);
    await Promise.all(d.nodes.map(async (node, n) => {
      for (let batch = 0; batch < 10; batch++) {
        await node.appendAudit(Array.from({ length: 30 }, (_, i) => record(new Date().toISOString(), n * 1000 + batch * 30 + i)));
      }
    }));
    await new AuditCheckpoints(d.nodes[1], await auditSigningKey(dir)).checkpoint();
    const verdict = await verifyAudit(d.config);
    assert.deepEqual(verdict, { ok: true, count: 600, head: (await d.nodes[0].auditHead()).head.toString('hex') });

    // The nodes do not stop for it: each keeps appending (and checkpointing) while the command reads.
    let appending = true;
    let appended = 0;
    const keep = d.nodes.map(async (node, n) => {
      const checkpoints = new AuditCheckpoints(node, await auditSigningKey(dir));
      for (let i = 0; appending; i++) {
        await node.appendAudit([record(new Date().toISOString(), 5000 + n * 1000 + i)]);
        appended++;
        if (i % 10 === 0) await checkpoints.checkpoint();
        await sleep(5);
      }
    });
    const r = await cliAsync(['audit', 'verify', '--data-dir', dir], d.env);
    appending = false;
    await Promise.all(keep);
    assert.equal(r.status, 0, r.stderr);
    const m = /^audit chain intact: ([\d,]+) records, head ([0-9a-f]{64})\n$/.exec(r.stdout);
    assert.ok(m, r.stdout);
    const verified = Number(m[1].replace(/,/g, ''));
    assert.ok(verified >= 600 && verified <= 600 + appended, r.stdout);
    assert.ok(appended > 0);
    const after = await verifyAudit(d.config);
    assert.deepEqual(after, { ok: true, count: 600 + appended, head: (await d.nodes[1].auditHead()).head.toString('hex') });
  });

  // The tamperings of audit-chain.test.ts, made to PostgreSQL's rows.
  const cases: [string, (db: Database) => Promise<void>, number, string][] = [
    ['a record changed', (db) => tamper(db, 7, (t) => [`UPDATE ${t} SET event = replace(event, '"u7"', '"someone-else"') WHERE seq = 7`]), 7, 'modified'],
    ['a record deleted', (db) => tamper(db, 7, (t) => [`DELETE FROM ${t} WHERE seq = 7`]), 7, 'deleted'],
    ['two records swapped', async (db) => {
      const [a, b] = await db.query<{ recorded: string; event: string }>('SELECT recorded, event FROM audit_log WHERE seq IN (7, 8) ORDER BY seq');
      const quote = (s: string) => `'${s.replace(/'/g, "''")}'`;
      await tamper(db, 7, (t) => [
        `UPDATE ${t} SET recorded = ${quote(b.recorded)}, event = ${quote(b.event)} WHERE seq = 7`,
        `UPDATE ${t} SET recorded = ${quote(a.recorded)}, event = ${quote(a.event)} WHERE seq = 8`,
      ]);
    }, 7, 'reordered'],
    ['a record with a forged link', (db) => tamper(db, 12, (t) => [`UPDATE ${t} SET hash = '\\x${'07'.repeat(32)}' WHERE seq = 12`]), 12, 'modified'],
    // Checkpoints: what the chain alone cannot tell.
    ['the last records cut off', (db) => tamper(db, 18, (t) => [`DELETE FROM ${t} WHERE seq > 17`]), 18, 'truncated'],
    ['a record changed and the chain recomputed after it', async (db) => {
      const rows = await db.query<{ seq: number; recorded: string; event: string }>('SELECT seq, recorded, event FROM audit_log WHERE seq >= 7 ORDER BY seq');
      let previous = (await db.query<{ hash: Buffer }>('SELECT hash FROM audit_log WHERE seq = 6'))[0].hash;
      const updates: string[] = [];
      for (const r of rows) {
        const event = r.seq === 7 ? r.event.replace('"u7"', '"someone-else"') : r.event;
        previous = chainHash(previous, r.recorded, event);
        updates.push(`UPDATE audit_log SET event = '${event.replace(/'/g, "''")}', hash = '\\x${previous.toString('hex')}' WHERE seq = ${r.seq}`);
      }
      await tamper(db, 7, () => updates);
    }, 20, 'rewritten'],
    ['a checkpoint signed with another key', async (db) => {
      const forged = `${Buffer.from('{"alg":"ES256"}').toString('base64url')}.${Buffer.from(JSON.stringify({ count: 20, head: '00', at: 'now' })).toString('base64url')}.AAAA`;
      await db.query('INSERT INTO audit_checkpoint (count, head, at, jws) VALUES (20, ?, ?, ?)', [Buffer.alloc(32), 'now', forged]);
    }, 20, 'forged-checkpoint'],
    ['a purge nobody signed', async (db) => {
      await db.query('INSERT INTO audit_purge (through, head, before, at, jws) VALUES (5, ?, ?, ?, ?)', [Buffer.alloc(32), '2015-01-01T00:00:00.000Z', new Date().toISOString(), 'eyJhbGciOiJFUzI1NiJ9.e30.AAAA']);
    }, 1, 'forged-checkpoint'],
  ];
  for (const [what, change, seq, problem] of cases) {
    test(`verify: ${what}, found at record ${seq}, exit 1`, async () => {
      const d = await twentyRecords();
      assert.equal((await verifyAudit(d.config)).ok, true);
      await change(d.db);
      const verdict = await verifyAudit(d.config);
      assert.ok(!verdict.ok && verdict.seq === seq && verdict.problem === problem, JSON.stringify(verdict));
      const r = await cliAsync(['audit', 'verify', '--data-dir', dir], d.env);
      assert.equal(r.status, 1, r.stdout);
      assert.match(r.stderr, new RegExp(`^bastion audit: audit chain broken at record ${seq} \\(${problem}`));
    });
  }

  test('purge after retention while the nodes append; verify goes on from the purge', async () => {
    const d = await deployment(2);
    const now = new Date();
    // 1..10 from 2015, 11..15 from 2017, 16..20 now.
    await d.nodes[0].appendAudit(Array.from({ length: 10 }, (_, i) => record(`2015-03-0${Math.floor(i / 2) + 1}T00:00:0${i}.000Z`, i + 1)));
    await d.nodes[1].appendAudit(Array.from({ length: 5 }, (_, i) => record(`2017-06-01T00:00:0${i}.000Z`, i + 11)));
    await d.nodes[0].appendAudit(Array.from({ length: 5 }, (_, i) => record(new Date(now.getTime() - 60_000 + i).toISOString(), i + 16)));
    await new AuditCheckpoints(d.nodes[0], await auditSigningKey(dir)).checkpoint();

    // Within the retention period: refused, nothing removed.
    const young = await cliAsync(['audit', 'purge', '--before', new Date(now.getTime() - 86_400_000).toISOString(), '--data-dir', dir], d.env);
    assert.equal(young.status, 1);
    assert.match(young.stderr, /within the 6-year retention period/);

    let appending = true;
    let appended = 0;
    const keep = d.nodes.map(async (node, n) => {
      for (let i = 0; appending; i++) {
        await node.appendAudit([record(new Date().toISOString(), 100 + n * 1000 + i)]);
        appended++;
        await sleep(5);
      }
    });
    const r = await cliAsync(['audit', 'purge', '--before', '2016-01-01', '--data-dir', dir], d.env);
    const second = await cliAsync(['audit', 'purge', '--before', '2018-01-01', '--data-dir', dir], d.env);
    appending = false;
    await Promise.all(keep);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'purged 10 records (1..10); the purge is signed and recorded on the trail\n');
    assert.equal(second.status, 0, second.stderr);
    assert.equal(second.stdout, 'purged 5 records (1..15); the purge is signed and recorded on the trail\n');
    assert.ok(appended > 0);

    // Every append the nodes made meanwhile is on the chain, which verifies from the last purge.
    const head = await d.nodes[1].auditHead();
    assert.equal(head.count, 20 + appended + 2, 'the records, the appends meanwhile, and the two purges');
    const verdict = await verifyAudit(d.config);
    assert.deepEqual(verdict, { ok: true, count: head.count, head: head.head.toString('hex') });
    const v = await cliAsync(['audit', 'verify', '--data-dir', dir], d.env);
    assert.equal(v.status, 0, v.stderr);
    assert.equal(v.stdout, `audit chain intact: ${head.count.toLocaleString('en-US')} records, head ${head.head.toString('hex')}\n`);
    assert.deepEqual((await d.nodes[0].auditRecords({ afterSeq: 0, limit: 1 })).map((x) => x.seq), [16]);

    // Each purge is on the trail, by whom and of what.
    const exported = await cliAsync(['audit', 'export', '--data-dir', dir], d.env);
    assert.equal(exported.status, 0, exported.stderr);
    const purges = exported.stdout.trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.entity?.some((x: any) => x.detail?.some((dd: any) => dd.valueString === '$audit-purge')));
    assert.equal(purges.length, 2);
    assert.match(purges[0].agent[0].altId, /^console:/);

    const nothing = await cliAsync(['audit', 'purge', '--before', '2018-01-01', '--data-dir', dir], d.env);
    assert.equal(nothing.status, 0, nothing.stderr);
    assert.equal(nothing.stdout, 'nothing to purge: no record before 2018-01-01T00:00:00.000Z\n');

    // Records the purges did not cover are still refused a delete.
    await assert.rejects(d.db.exec('DELETE FROM audit_log WHERE seq = 16'), /only a purge/);
  });

  test('purge: a trail whose chain is broken is not purged, the evidence stays', async () => {
    const d = await deployment();
    await d.nodes[0].appendAudit(Array.from({ length: 10 }, (_, i) => record(`2015-03-01T00:00:0${i}.000Z`, i + 1)));
    await d.nodes[0].appendAudit([record(new Date().toISOString(), 11)]);
    await tamper(d.db, 3, (t) => [`UPDATE ${t} SET event = replace(event, '"u3"', '"u9"') WHERE seq = 3`]);
    const r = await cliAsync(['audit', 'purge', '--before', '2016-01-01', '--data-dir', dir], d.env);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /the audit chain is broken at record 3 \(modified\); it is not purged/);
    assert.equal((await d.db.query<{ n: number }>('SELECT count(*) AS n FROM audit_log'))[0].n, 11);
    assert.deepEqual(await d.db.query('SELECT * FROM audit_purge'), []);
  });

  test('verify reads the trail again when a purge commits while it reads', async () => {
    const d = await deployment();
    await d.nodes[0].appendAudit(Array.from({ length: 10 }, (_, i) => record(`2015-03-01T00:00:0${i}.000Z`, i + 1)));
    await d.nodes[0].appendAudit(Array.from({ length: 5 }, (_, i) => record(new Date().toISOString(), i + 11)));
    const key = await auditSigningKey(dir);
    const publicKey = await auditSigningKey(dir, 'public');
    const log = (d.nodes[0] as PgStore).auditLog;
    const trail = pgAuditTrail(log);
    // The purges are read, then another process's purge commits, then the records are read.
    let raced = false;
    const racing: AuditTrail = {
      ...trail,
      chainRows: () => {
        if (raced) return trail.chainRows();
        raced = true;
        return (async function* () {
          await purgeAuditTrail(trail, { before: new Date('2016-01-01'), years: 6, who: 'console:other', key, publicKey });
          yield* trail.chainRows();
        })();
      },
    };
    const verdict = await verifyAuditTrail(racing, publicKey);
    assert.ok(raced);
    assert.deepEqual(verdict, { ok: true, count: 16, head: (await log.head()).head.toString('hex') });
  });

  test('export: the same NDJSON as the embedded store gives for the same records, whatever the database collation', async () => {
    const d = await deployment();
    // Compared as bytes on both stores: a lower-case "t" sorts after every upper-case letter,
    // which a linguistic collation (made the column's here) would not do.
    await d.db.exec('ALTER TABLE audit_log ALTER COLUMN recorded TYPE text COLLATE "en-US-x-icu"');
    const times = ['2026-11-29T00:00:14.999Z', '2026-11-29T00:00:15.000Z', '2026-11-29T00:00:15Z', '2026-11-29t00:00:16Z', 'not a time', '2026-11-29T00:00:17.5Z', '2026-11-29T00:00:18.000Z', 'Z', '2026-11-29 00:00:16'];
    const records = times.map((t, i) => record(t, i + 1));
    await d.nodes[0].appendAudit(records);
    const embedded = mkdtempSync(join(tmpdir(), 'bastion-audit-embedded-'));
    try {
      const store = await openStore(embedded);
      await store.appendAudit(records);
      await store.close();
      for (const range of [['2026-11-29T00:00:15Z', '2026-11-29T00:00:18Z'], ['2026-11-29', undefined], [undefined, '2026-11-29T00:00:16Z'], [undefined, undefined]] as const) {
        const args = [...(range[0] ? ['--since', range[0]] : []), ...(range[1] ? ['--until', range[1]] : [])];
        const pg = await cliAsync(['audit', 'export', '--data-dir', dir, ...args], d.env);
        const local = await cliAsync(['audit', 'export', '--data-dir', embedded, ...args], {});
        assert.equal(pg.status, 0, pg.stderr);
        assert.equal(local.status, 0, local.stderr);
        assert.ok(local.stdout.length > 0);
        assert.equal(pg.stdout, local.stdout, args.join(' '));
      }
      // "2026-11-29t00:00:16Z" (4) is past the range as bytes; the column's collation would take it in.
      const ids = async (trail: AuditTrail) => {
        const seen: string[] = [];
        await exportAuditTrail(trail, '2026-11-29T00:00:15.000Z', '2026-11-29T00:00:18.000Z', (line) => seen.push(JSON.parse(line).id));
        return seen;
      };
      assert.deepEqual(await withAuditTrail(d.config, await openKeys(dir), ids), ['2', '3', '6']);
      assert.deepEqual(await withAuditTrail({ dataDir: embedded }, await openKeys(embedded), ids), ['2', '3', '6']);
    } finally {
      rmSync(embedded, { recursive: true, force: true });
    }
  });

  test('a database that cannot be reached is a configuration error (exit 2), without the URL', async () => {
    const r = await cliAsync(['audit', 'verify', '--data-dir', dir], { BASTION_DATABASE_URL: 'postgres://bastion:secret@127.0.0.1:1/nowhere', BASTION_DATABASE_SCHEMA: 'public' });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /PostgreSQL: /);
    assert.doesNotMatch(r.stderr, /secret/);
  });
});
