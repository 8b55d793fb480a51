import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openEncrypted } from '../../src/store/sqlite/open.ts';
import { WriteQueue } from '../../src/store/sqlite/write-queue.ts';
import { WalSync } from '../../src/store/sqlite/wal-sync.ts';

const dir = mkdtempSync(join(tmpdir(), 'bastion-queue-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function deferred() {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

function openTable(name: string) {
  const db = openEncrypted(join(dir, name), crypto.randomBytes(32), { callerSyncsCommits: true });
  db.exec('CREATE TABLE t (v INTEGER)');
  return db;
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 20));

test('a write is not acknowledged until the WAL sync after its commit has finished', async () => {
  const db = openTable('ack.db');
  const syncs: ReturnType<typeof deferred>[] = [];
  const queue = new WriteQueue(db, () => {
    const d = deferred();
    syncs.push(d);
    return d.promise;
  });
  let settled = false;
  const write = queue.run(async () => db.prepare('INSERT INTO t VALUES (1)').run()).then(() => (settled = true));
  // Under a loaded machine the commit may take longer than one tick: wait for it (2 s at most).
  for (let i = 0; i < 100 && syncs.length === 0; i++) await tick();
  assert.equal(syncs.length, 1, 'a sync was asked for after the commit');
  assert.equal((db.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n, 1, 'the row is committed');
  assert.equal(settled, false, 'but the writer has not been told yet');
  syncs[0].resolve();
  await write;
  assert.equal(settled, true);
  db.close();
});

test('a failed sync fails every write of its batch', async () => {
  const db = openTable('fail.db');
  const queue = new WriteQueue(db, () => Promise.reject(new Error('EIO')));
  const writes = [1, 2, 3].map((v) => queue.run(async () => db.prepare('INSERT INTO t VALUES (?)').run(v)));
  for (const w of writes) await assert.rejects(w, /EIO/);
  db.close();
});

test('writes that arrive together share one transaction, and a failing one rolls back alone', async () => {
  const db = openTable('group.db');
  let syncs = 0;
  const queue = new WriteQueue(db, async () => void syncs++);
  const ok = (v: number) => queue.run(async () => db.prepare('INSERT INTO t VALUES (?)').run(v));
  const bad = queue.run(async () => {
    db.prepare('INSERT INTO t VALUES (99)').run();
    throw new Error('invalid');
  });
  await Promise.all([ok(1), ok(2), assert.rejects(bad, /invalid/), ok(3)]);
  assert.equal(syncs, 1, 'one commit, one sync for the four writes');
  assert.deepEqual(db.prepare('SELECT v FROM t ORDER BY v').all().map((r) => (r as { v: number }).v), [1, 2, 3]);
  db.close();
});

test('WalSync: callers during a sync in flight wait for the next one, which they share', async () => {
  const db = openTable('wal.db');
  db.prepare('INSERT INTO t VALUES (1)').run();
  const sync = new WalSync(join(dir, 'wal.db'));
  const first = sync.sync();
  const second = sync.sync();
  const third = sync.sync();
  assert.notEqual(first, second, 'a caller during a sync may have committed after it began');
  assert.equal(second, third, 'later callers share the queued sync');
  await Promise.all([first, second, third]);
  await sync.close();
  db.close();
});
