import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { openEncrypted } from '../../src/store/sqlite/open.ts';
import { rebuildSearchIndex } from '../../src/store/sqlite/search-index.ts';
import { parseSearch } from '../../src/fhir/search/parse.ts';
import { searchConformance } from './search-conformance.ts';

const dir = mkdtempSync(join(tmpdir(), 'bastion-search-'));
let n = 0;
after(() => rmSync(dir, { recursive: true, force: true }));

searchConformance(async () => new SqliteStore({ path: join(dir, `store-${n++}.db`), key: crypto.randomBytes(32) }));

test('rebuildSearchIndex restores the index of every current resource', async () => {
  const path = join(dir, 'rebuild.db');
  const key = crypto.randomBytes(32);
  const store = new SqliteStore({ path, key });
  await store.transaction(async (tx) => {
    for (let i = 0; i < 7; i++) await tx.create({ resourceType: 'Patient', id: `p${i}`, gender: i % 2 ? 'male' : 'female' });
    await tx.delete('Patient', 'p0');
  });
  const males = async () => (await store.search(parseSearch('Patient', [['gender', 'male'], ['_total', 'accurate']], { maxCount: 100, defaultCount: 100, lenient: false }).request)).total;
  assert.equal(await males(), 3);
  const db = openEncrypted(path, key);
  try {
    db.exec('DELETE FROM search_token');
    assert.equal(await males(), 0);
    assert.equal(rebuildSearchIndex(db, 2), 6);
  } finally {
    db.close();
  }
  assert.equal(await males(), 3);
  await store.close();
});
