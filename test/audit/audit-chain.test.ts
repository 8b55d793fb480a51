import { before, after, describe, test } from 'node:test';
import { storeKey } from '../store-key.ts';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../src/main.ts';
import { openEncrypted, type Db } from '../../src/store/sqlite/open.ts';
import { verifyAuditFile } from '../../src/cli/audit.ts';
import { AuditCheckpoints, FileCheckpointCopy } from '../../src/audit/checkpoints.ts';
import { auditSigningKey } from '../../src/main.ts';
import { chainHash } from '../../src/crypto/hash-chain.ts';

/**
 * The audit trail's hash chain: intact after normal appends; each kind of tampering with the file
 * itself (triggers dropped, rows changed, removed, inserted, swapped) is found at its record.
 */
const bin = new URL('../../bin/bastion.js', import.meta.url).pathname;

describe('audit hash chain', () => {
  let original: string;
  /** Copies of the data dir carry its keyring: one key opens them all. */
  let key: Buffer;
  const dirs: string[] = [];
  before(async () => {
    original = mkdtempSync(join(tmpdir(), 'bastion-chain-'));
    dirs.push(original);
    const store = await openStore(original);
    for (let batch = 0; batch < 4; batch++) {
      await store.appendAudit(Array.from({ length: 5 }, (_, i) => {
        const n = batch * 5 + i + 1;
        return { recorded: `2026-11-29T00:00:${String(n).padStart(2, '0')}.000Z`, json: JSON.stringify({ at: `2026-11-29T00:00:${n}Z`, do: 'read', st: 200, who: `u${n}`, ip: '127.0.0.1', what: [`Patient/${n}`] }) };
      }));
    }
    // A signed checkpoint of the head, as the server makes now and then and at shutdown.
    await new AuditCheckpoints(store, await auditSigningKey(original)).checkpoint();
    await store.close();
    key = await storeKey(original, 'bastion-audit.db');
  });
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  /** A copy of the data dir whose audit file `tamper` changes directly, bypassing Bastion. */
  const tampered = (tamper: (db: Db) => void): string => {
    const dir = mkdtempSync(join(tmpdir(), 'bastion-tamper-'));
    dirs.push(dir);
    cpSync(original, dir, { recursive: true });
    const db = openEncrypted(join(dir, 'bastion-audit.db'), key);
    try {
      db.exec('DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete; DROP TRIGGER audit_chain_no_update; DROP TRIGGER audit_chain_no_delete; DROP TRIGGER audit_checkpoint_no_update; DROP TRIGGER audit_checkpoint_no_delete;');
      db.transaction(() => tamper(db))();
    } finally {
      db.close();
    }
    return dir;
  };

  test('an untouched trail verifies, and the command says so', async () => {
    const verdict = await verifyAuditFile(original);
    assert.equal(verdict.ok, true);
    assert.equal(verdict.count, 20);
    const r = spawnSync(process.execPath, [bin, 'audit', 'verify', '--data-dir', original], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /audit chain intact: 20 records, head [0-9a-f]{64}/);
  });

  test('the file refuses updates and deletes while its triggers are in place', () => {
    const db = openEncrypted(join(original, 'bastion-audit.db'), key);
    try {
      assert.throws(() => db.exec(`UPDATE audit_log SET event = '{}' WHERE seq = 3`), /append-only/);
      assert.throws(() => db.exec('DELETE FROM audit_chain WHERE seq = 3'), /append-only/);
    } finally {
      db.close();
    }
  });

  const cases: [string, (db: Db) => void, number, string][] = [
    ['a record changed', (db) => db.exec(`UPDATE audit_log SET event = replace(event, '"u7"', '"someone-else"') WHERE seq = 7`), 7, 'modified'],
    ['a record deleted', (db) => db.exec('DELETE FROM audit_log WHERE seq = 7; DELETE FROM audit_chain WHERE seq = 7'), 7, 'deleted'],
    ['a record inserted', (db) => {
      for (let seq = 20; seq >= 8; seq--) db.exec(`UPDATE audit_log SET seq = ${seq + 1} WHERE seq = ${seq}; UPDATE audit_chain SET seq = ${seq + 1} WHERE seq = ${seq}`);
      db.prepare('INSERT INTO audit_log (seq, recorded, event) VALUES (8, ?, ?)').run('2026-11-29T00:00:07.500Z', '{"do":"read","who":"forged"}');
      db.prepare('INSERT INTO audit_chain (seq, hash) VALUES (8, ?)').run(Buffer.alloc(32, 7));
    }, 8, 'inserted'],
    ['two records swapped', (db) => {
      const [a, b] = [7, 8].map((seq) => db.prepare('SELECT recorded, event FROM audit_log WHERE seq = ?').get(seq) as { recorded: string; event: string });
      db.prepare('UPDATE audit_log SET recorded = ?, event = ? WHERE seq = 7').run(b.recorded, b.event);
      db.prepare('UPDATE audit_log SET recorded = ?, event = ? WHERE seq = 8').run(a.recorded, a.event);
    }, 7, 'reordered'],
    ['a record appended outside the chain', (db) => db.prepare('INSERT INTO audit_log (recorded, event) VALUES (?, ?)').run('2026-11-29T00:01:00.000Z', '{"do":"read"}'), 21, 'inserted'],
    ['the last records cut off', (db) => db.exec('DELETE FROM audit_log WHERE seq > 17; DELETE FROM audit_chain WHERE seq > 17'), 18, 'truncated'],
    ['a record changed and the chain recomputed after it', (db) => {
      db.exec(`UPDATE audit_log SET event = replace(event, '"u7"', '"someone-else"') WHERE seq = 7`);
      let previous = db.prepare('SELECT hash FROM audit_chain WHERE seq = 6').pluck().get() as Buffer;
      for (const r of db.prepare('SELECT seq, recorded, event FROM audit_log WHERE seq >= 7 ORDER BY seq').all() as { seq: number; recorded: string; event: string }[]) {
        previous = chainHash(previous, r.recorded, r.event);
        db.prepare('UPDATE audit_chain SET hash = ? WHERE seq = ?').run(previous, r.seq);
      }
    }, 20, 'rewritten'],
    ['a checkpoint signed with another key', (db) => {
      const forged = `${Buffer.from('{"alg":"ES256"}').toString('base64url')}.${Buffer.from(JSON.stringify({ count: 20, head: '00', at: 'now' })).toString('base64url')}.AAAA`;
      db.prepare('INSERT INTO audit_checkpoint (count, head, at, jws) VALUES (20, ?, ?, ?)').run(Buffer.alloc(32), 'now', forged);
    }, 20, 'forged-checkpoint'],
  ];
  for (const [what, tamper, seq, problem] of cases) {
    test(`${what}: found at record ${seq}`, async () => {
      const dir = tampered(tamper);
      const verdict = await verifyAuditFile(dir);
      assert.equal(verdict.ok, false);
      assert.ok(!verdict.ok && verdict.seq === seq && verdict.problem === problem, JSON.stringify(verdict));
      const r = spawnSync(process.execPath, [bin, 'audit', 'verify', '--data-dir', dir], { encoding: 'utf8' });
      assert.equal(r.status, 1);
      assert.match(r.stderr, new RegExp(`broken at record ${seq} \\(${problem}`));
    });
  }

  test('records from before the chain are chained when the store is opened, and appends go on from them', async () => {
    const store = await openStore(original);
    await store.appendAudit([{ recorded: '2026-11-29T00:02:00.000Z', json: '{"do":"read","who":"later"}' }]);
    await store.close();
    const verdict = await verifyAuditFile(original);
    assert.ok(verdict.ok && verdict.count === 21, JSON.stringify(verdict));
  });

  test('checkpoints are also appended to an outside file, and only when the chain has grown', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bastion-cp-'));
    dirs.push(dir);
    const store = await openStore(dir);
    const file = join(dir, 'outside.ndjson');
    const cp = new AuditCheckpoints(store, await auditSigningKey(dir), [new FileCheckpointCopy(file)]);
    await store.appendAudit([{ recorded: '2026-11-29T00:00:00.000Z', json: '{"do":"read"}' }]);
    await cp.checkpoint();
    await cp.checkpoint();
    await store.appendAudit([{ recorded: '2026-11-29T00:00:01.000Z', json: '{"do":"read"}' }]);
    await cp.checkpoint();
    await store.close();
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { count: number; head: string; jws: string });
    assert.deepEqual(lines.map((l) => l.count), [1, 2]);
    assert.ok(lines.every((l) => /^[0-9a-f]{64}$/.test(l.head) && l.jws.split('.').length === 3));
    assert.equal((await verifyAuditFile(dir)).ok, true);
  });

  test('audit export writes a time range as NDJSON AuditEvents, in order', () => {
    const r = spawnSync(process.execPath, [bin, 'audit', 'export', '--data-dir', original, '--since', '2026-11-29T00:00:15Z', '--until', '2026-11-29T00:00:18Z'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { resourceType: string; id: string; recorded: string });
    assert.deepEqual(events.map((e) => e.id), ['15', '16', '17']);
    assert.ok(events.every((e) => e.resourceType === 'AuditEvent'));
    const bad = spawnSync(process.execPath, [bin, 'audit', 'export', '--data-dir', original, '--since', 'last tuesday'], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--since takes a date/);
  });
});
