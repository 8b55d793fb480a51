import { after, before, describe, test } from 'node:test';
import { storeKey } from '../store-key.ts';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { auditSigningKey, openStore } from '../../src/main.ts';
import { loadConfig } from '../../src/config/config.ts';
import { startServer } from '../../src/main.ts';
import { openEncrypted, type Db } from '../../src/store/sqlite/open.ts';
import { auditCommand, verifyAuditFile } from '../../src/cli/audit.ts';
import { purgeAuditTrail, RetentionError } from '../../src/audit/retention.ts';
import { auditEventsIn } from './audit-file.ts';

/**
 * Retention: nothing younger than the retention period is purged; a purge after it removes the
 * oldest records, is signed and recorded, and leaves a chain that verifies; deletes outside a
 * purge stay refused, and tampering around a purge is still found.
 */
const now = new Date('2026-11-29T12:00:00Z');
const record = (at: string, n: number) => ({ recorded: at, json: JSON.stringify({ at, do: 'read', st: 200, who: `u${n}`, ip: '127.0.0.1', what: [`Patient/${n}`], pt: [String(n)] }) });

describe('audit retention and purge', () => {
  let original: string;
  /** Copies of the data dir carry its keyring: one key opens them all. */
  let key: Buffer;
  const dirs: string[] = [];
  before(async () => {
    original = mkdtempSync(join(tmpdir(), 'bastion-retention-'));
    dirs.push(original);
    const store = await openStore(original);
    // 10 records from 2015, 5 from 2019, 5 from this year.
    await store.appendAudit(Array.from({ length: 10 }, (_, i) => record(`2015-03-0${Math.floor(i / 2) + 1}T00:00:0${i}.000Z`, i + 1)));
    await store.appendAudit(Array.from({ length: 5 }, (_, i) => record(`2019-06-01T00:00:0${i}.000Z`, i + 11)));
    await store.appendAudit(Array.from({ length: 5 }, (_, i) => record(`2026-11-01T00:00:0${i}.000Z`, i + 16)));
    await store.close();
    key = await storeKey(original, 'bastion-audit.db');
  });
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  const copy = (): string => {
    const dir = mkdtempSync(join(tmpdir(), 'bastion-retention-'));
    dirs.push(dir);
    cpSync(original, dir, { recursive: true });
    return dir;
  };
  const withAuditFile = <T>(dir: string, work: (db: Db) => T): T => {
    const db = openEncrypted(join(dir, 'bastion-audit.db'), key);
    try {
      return work(db);
    } finally {
      db.close();
    }
  };
  const purge = async (dir: string, beforeDate: string) => {
    const key = await auditSigningKey(dir);
    const publicKey = await auditSigningKey(dir, 'public');
    const key2 = await storeKey(dir);
    const db = openEncrypted(join(dir, 'bastion-audit.db'), key2);
    try {
      return await purgeAuditTrail(db, { before: new Date(beforeDate), years: 6, who: 'console:test', key, publicKey, now });
    } finally {
      db.close();
    }
  };

  test('a purge after retention removes the oldest records, records itself, and the chain still verifies', async () => {
    const dir = copy();
    const result = await purge(dir, '2016-01-01');
    assert.deepEqual(result, { removed: 10, through: 10 });
    const verdict = await verifyAuditFile(dir);
    assert.equal(verdict.ok, true, JSON.stringify(verdict));
    assert.equal(verdict.count, 21, 'positions go on: 11..20 kept, 21 the purge itself');
    const events = await auditEventsIn(dir);
    assert.deepEqual(events.map((e) => e.id), Array.from({ length: 11 }, (_, i) => String(i + 11)));
    const last = events.at(-1)!;
    assert.equal(last.agent[0].altId, 'console:test');
    assert.ok(last.entity.some((e: any) => e.detail?.some((d: any) => d.valueString === '$audit-purge')));
    // A second purge goes on from the first.
    assert.deepEqual(await purge(dir, '2020-01-01'), { removed: 5, through: 15 });
    assert.equal((await verifyAuditFile(dir)).ok, true);
    assert.deepEqual(await purge(dir, '2020-01-01'), { removed: 0, through: 15 }, 'nothing left to purge');
  });

  test('nothing within the retention period is purged', async () => {
    const dir = copy();
    await assert.rejects(purge(dir, '2021-01-01'), RetentionError);
    assert.equal((await auditEventsIn(dir)).length, 20);
    // The cut is the first record at or after the date: a record younger than it is never removed.
    assert.deepEqual(await purge(dir, '2015-03-03'), { removed: 4, through: 4 });
  });

  test('a trail whose chain is broken is not purged: the evidence stays', async () => {
    const dir = copy();
    withAuditFile(dir, (db) => {
      db.exec('DROP TRIGGER audit_log_no_update');
      db.prepare(`UPDATE audit_log SET event = replace(event, 'u3', 'u9') WHERE seq = 3`).run();
    });
    await assert.rejects(purge(dir, '2016-01-01'), /broken at record 3/);
    assert.equal((await auditEventsIn(dir)).length, 20);
  });

  test('records are deleted only through a purge, and tampering after one is still found', async () => {
    const dir = copy();
    assert.throws(() => withAuditFile(dir, (db) => db.prepare('DELETE FROM audit_log WHERE seq = 1').run()), /append-only/);
    await purge(dir, '2016-01-01');
    assert.throws(() => withAuditFile(dir, (db) => db.prepare('DELETE FROM audit_log WHERE seq = 11').run()), /append-only/, 'a purge opens nothing beyond what it covers');
    assert.throws(() => withAuditFile(dir, (db) => db.prepare('DELETE FROM audit_purge').run()), /append-only/);

    const deleted = copy();
    await purge(deleted, '2016-01-01');
    withAuditFile(deleted, (db) => db.exec('DROP TRIGGER audit_log_no_delete; DROP TRIGGER audit_chain_no_delete; DELETE FROM audit_log WHERE seq = 11; DELETE FROM audit_chain WHERE seq = 11;'));
    const verdict = await verifyAuditFile(deleted);
    assert.equal(verdict.ok, false);
    assert.equal(!verdict.ok && verdict.seq, 11);
    assert.equal(!verdict.ok && verdict.problem, 'deleted');

    // Records removed without a purge (its row gone with them): the chain no longer starts where it should.
    const unpurged = copy();
    withAuditFile(unpurged, (db) => db.exec('DROP TRIGGER audit_log_no_delete; DROP TRIGGER audit_chain_no_delete; DELETE FROM audit_log WHERE seq <= 10; DELETE FROM audit_chain WHERE seq <= 10;'));
    const gone = await verifyAuditFile(unpurged);
    assert.equal(gone.ok, false);

    // A purge row nobody signed, claiming records away.
    const forged = copy();
    withAuditFile(forged, (db) => db.prepare('INSERT INTO audit_purge (through, head, before, at, jws) VALUES (15, ?, ?, ?, ?)').run(Buffer.alloc(32), '2020-01-01T00:00:00.000Z', now.toISOString(), 'eyJhbGciOiJFUzI1NiJ9.e30.AAAA'));
    const claimed = await verifyAuditFile(forged);
    assert.equal(claimed.ok, false);
    assert.match(!claimed.ok ? claimed.detail : '', /not signed by the audit key/);
  });

  test('the purge command refuses while the server runs, and without --before', async () => {
    const dir = copy();
    const server = await startServer(loadConfig({ port: 0, dataDir: dir }, { BASTION_AUTH: 'off', BASTION_TLS: 'off' }));
    try {
      await assert.rejects(auditCommand(['purge', '--before', '2016-01-01', '--data-dir', dir]), /in use by another process/);
    } finally {
      await server.close();
    }
    await assert.rejects(auditCommand(['purge', '--data-dir', dir]), /--before/);
    await assert.rejects(auditCommand(['purge', '--before', '2025-01-01', '--data-dir', dir]), /retention/);
  });
});
