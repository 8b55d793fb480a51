import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { SqliteAuthStore } from '../../src/store/sqlite/auth-db.ts';
import { addUser, checkPassword, lockoutThreshold } from '../../src/auth/users.ts';

test('parallel wrong passwords each count: a burst of guesses locks the account as a series would', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bastion-users-'));
  const store = new SqliteAuthStore(join(dir, 'auth.db'), randomBytes(32));
  try {
    await addUser(store, { username: 'target', role: 'nurse', password: 'the right password' });
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => checkPassword(store, 'target', `guess number ${i}`)));
    assert.ok(results.every((r) => !r.ok));
    const user = await store.userByName('target');
    // Run at once, they still count one by one: the threshold is reached and the rest meet a locked account.
    assert.equal(user?.failedLogins, lockoutThreshold);
    assert.ok(user?.lockedUntil && user.lockedUntil > Date.now());
    assert.equal(results.filter((r) => !r.ok && r.reason === 'locked').length, 8 - lockoutThreshold + 1);
    const right = await checkPassword(store, 'target', 'the right password');
    assert.equal(right.ok, false, 'locked: even the right password is refused');
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
