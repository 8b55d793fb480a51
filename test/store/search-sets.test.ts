import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { useTempStore } from './temp-store.ts';
import type { SearchRequest } from '../../src/fhir/search/types.ts';

/** In-set criteria (a clinician's patients, a consent's patients) held as temporary tables. */
describe('in-set criteria (SQLite)', () => {
  const store = useTempStore('bastion-sets-');
  const request = (sets: ReadonlySet<string>[]): SearchRequest => ({
    resourceTypes: ['Patient'], criteria: [], sort: [], count: 100, offset: 0, total: 'accurate', include: [], revinclude: [],
    constraints: sets.map((ids) => ({ anyOf: [{ kind: 'in-set', code: '_id', ids }] })),
  });

  test('match by id, and keep working when a request needs more sets than a connection keeps', async () => {
    await store.transaction(async (tx) => {
      for (let i = 0; i < 5; i++) await tx.create({ resourceType: 'Patient', id: `s${i}` });
    });
    const first = new Set(['s1', 's2', 's3']);
    assert.equal((await store.search(request([first]))).total, 3);
    // 40 more sets in one request, all containing s2: every table must still be there when the query runs.
    const many = Array.from({ length: 40 }, (_, i) => new Set(['s2', `other-${i}`]));
    assert.equal((await store.search(request([first, ...many]))).total, 1);
    assert.equal((await store.search(request([first]))).total, 3, 'an older set asked for again is filled again');
  });

  test('a set made inside a transaction that rolled back is made again', async () => {
    const ids = new Set(['s4']);
    await assert.rejects(store.transaction(async (tx) => {
      assert.equal((await tx.search(request([ids]))).total, 1);
      throw new Error('roll back');
    }));
    await store.transaction(async (tx) => {
      assert.equal((await tx.search(request([ids]))).total, 1);
    });
  });
});
