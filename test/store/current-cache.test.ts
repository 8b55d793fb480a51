import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CurrentCache } from '../../src/store/sqlite/current-cache.ts';
import type { Statement } from '../../src/store/sqlite/statements.ts';
import type { StoredResource } from '../../src/store/store.ts';

function fakeDataVersion() {
  const state = { version: 1, checks: 0 };
  const statement = { get: () => (state.checks++, state.version) } as unknown as Statement;
  return { state, statement };
}

const stored = (id: string, versionId = '1'): StoredResource => ({
  resourceType: 'Patient', id, versionId, lastUpdated: '2026-01-01T00:00:00.000Z', deleted: false, json: `{"id":"${id}"}`,
});
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

test('CurrentCache: a hit within a turn; the file is checked once per turn', async () => {
  const { state, statement } = fakeDataVersion();
  const cache = new CurrentCache(statement, 1 << 20);
  assert.equal(cache.get('Patient', 'a'), undefined);
  cache.set(stored('a'));
  assert.equal(cache.get('Patient', 'a')?.versionId, '1');
  assert.equal(state.checks, 1);
  await nextTurn();
  assert.equal(cache.get('Patient', 'a')?.versionId, '1');
  assert.equal(state.checks, 2);
});

test("CurrentCache: another connection's commit (data_version moved) empties it at the next turn", async () => {
  const { state, statement } = fakeDataVersion();
  const cache = new CurrentCache(statement, 1 << 20);
  cache.get('Patient', 'a');
  cache.set(stored('a'));
  state.version++;
  await nextTurn();
  assert.equal(cache.get('Patient', 'a'), undefined);
});

test("CurrentCache: this store's own commit empties it at once, within the turn", () => {
  const { statement } = fakeDataVersion();
  const cache = new CurrentCache(statement, 1 << 20);
  cache.get('Patient', 'a');
  cache.set(stored('a'));
  cache.invalidate(false);
  assert.equal(cache.get('Patient', 'a'), undefined);
});

test('CurrentCache: holds no more than its byte budget, oldest out first', () => {
  const { statement } = fakeDataVersion();
  const size = stored('a').json!.length;
  const cache = new CurrentCache(statement, size * 4);
  cache.get('Patient', 'x');
  for (const id of ['a', 'b', 'c', 'd', 'e']) cache.set(stored(id));
  assert.equal(cache.get('Patient', 'a'), undefined);
  assert.equal(cache.get('Patient', 'e')?.id, 'e');
});
