import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { openEncrypted } from '../../src/store/sqlite/open.ts';
import { rebuildSearchIndex } from '../../src/store/sqlite/search-index.ts';
import { ResourceCodec } from '../../src/store/resource-codec.ts';
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
    assert.equal(rebuildSearchIndex(db, new ResourceCodec(undefined), 2), 6);
  } finally {
    db.close();
  }
  assert.equal(await males(), 3);
  await store.close();
});

test('criteria too common to list are tested row by row, with the same results', async () => {
  const store = new SqliteStore({ path: join(dir, 'common.db'), key: crypto.randomBytes(32) });
  // 2,600 women (past the 2,000 at which a criterion counts as common), 5 of them "Rare"; 10 men.
  await store.transaction(async (tx) => {
    for (let i = 0; i < 2600; i++) {
      await tx.create({ resourceType: 'Patient', id: `w${String(i).padStart(4, '0')}`, gender: 'female', birthDate: `19${50 + (i % 50)}-01-01`, name: [{ family: i % 500 === 7 ? 'Rare' : 'Common' }] });
    }
    for (let i = 0; i < 10; i++) await tx.create({ resourceType: 'Patient', id: `m${i}`, gender: 'male', birthDate: '1960-01-01', name: [{ family: 'Rare' }] });
  });
  const options = { maxCount: 1000, defaultCount: 20, lenient: false };
  const search = (q: string, cursor?: string) => store.search({ ...parseSearch('Patient', [...new URLSearchParams(q)], options).request, ...(cursor ? { cursor } : {}) });
  const ids = async (q: string) => (await search(q)).matches.map((m) => m.id);

  assert.deepEqual(await ids('gender=female&_count=3'), ['w0000', 'w0001', 'w0002']);
  assert.deepEqual(await ids('gender=female&name=rare'), ['w0007', 'w0507', 'w1007', 'w1507', 'w2007', 'w2507'], 'the selective criterion drives, the common one is tested');
  assert.deepEqual(await ids('gender=female&birthdate=ge1999&_count=2'), ['w0049', 'w0099'], 'both common');
  assert.equal((await search('gender=female&_count=1&_total=accurate')).total, 2600);
  assert.deepEqual(await ids('gender=female&_sort=-birthdate,_id&_count=2'), ['w0049', 'w0099']);
  // Paging through all of them by next tokens: every one once.
  const seen = new Set<string>();
  let result = await search('gender=female&_count=1000');
  for (;;) {
    for (const m of result.matches) seen.add(m.id);
    if (!result.next) break;
    result = await search('gender=female&_count=1000', result.next);
  }
  assert.equal(seen.size, 2600);
  await store.close();
});

test('updates change only the index rows that differ, and leave exactly what a rebuild would', async () => {
  const path = join(dir, 'diff.db');
  const key = crypto.randomBytes(32);
  const store = new SqliteStore({ path, key });
  const loinc = (code: string) => ({ coding: [{ system: 'http://loinc.org', code }] });
  const bp = (sys: number, dia: number, extra: Record<string, unknown> = {}) => ({
    resourceType: 'Observation', id: 'bp', status: 'final', code: loinc('85354-9'), subject: { reference: 'Patient/a' },
    component: [{ code: loinc('8480-6'), valueQuantity: { value: sys, unit: 'mmHg' } }, { code: loinc('8462-4'), valueQuantity: { value: dia, unit: 'mmHg' } }],
    text: { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml">BP ${sys}/${dia}</div>` }, ...extra,
  });
  await store.transaction((tx) => tx.create({ resourceType: 'Patient', id: 'a', name: [{ family: 'Before', given: ['Same'] }], gender: 'male' }));
  await store.transaction((tx) => tx.create(bp(120, 80)));
  await store.transaction((tx) => tx.update({ resourceType: 'Patient', id: 'a', name: [{ family: 'After', given: ['Same'] }], gender: 'male', active: true }));
  await store.transaction((tx) => tx.update(bp(80, 120, { subject: { reference: 'Patient/b' } })));
  await store.transaction((tx) => tx.update(bp(80, 120, { subject: { reference: 'Patient/b' }, note: [{ text: 'rechecked' }] })));
  await store.transaction((tx) => tx.delete('Patient', 'a'));
  await store.transaction((tx) => tx.update({ resourceType: 'Patient', id: 'a', name: [{ family: 'Again' }] }));
  await store.close();

  const db = openEncrypted(path, key);
  const dump = () => {
    const rows: string[] = [];
    for (const table of ['search_string', 'search_token', 'search_reference', 'search_date', 'search_number', 'search_quantity', 'search_uri']) {
      for (const r of db.prepare(`SELECT * FROM ${table}`).all()) rows.push(`${table} ${JSON.stringify(r)}`);
    }
    const match = db.prepare('SELECT rowid FROM search_text WHERE search_text MATCH ? ORDER BY rowid');
    const text = ['rechecked', 'again', 'before', 'after', 'same'].map((w) => `${w}: ${JSON.stringify(match.all(`"${w}"`))}`);
    return [...rows.sort(), ...text];
  };
  try {
    const incremental = dump();
    rebuildSearchIndex(db, new ResourceCodec(undefined));
    assert.deepEqual(incremental, dump());
  } finally {
    db.close();
  }
});
