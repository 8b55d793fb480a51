import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { call, patient, useServer } from './server.ts';

const t = useServer();

describe('search over HTTP', () => {
  test('GET and POST _search give the same matches; paging links walk all pages', async () => {
    for (let i = 0; i < 5; i++) await call(`${t.base}/Patient`, { method: 'POST', json: patient('Pager', { identifier: [{ system: 'urn:page', value: String(i) }] }) });
    const get = await call(`${t.base}/Patient?family=pager&_count=2&_total=accurate`);
    assert.equal(get.status, 200);
    assert.equal(get.body.type, 'searchset');
    assert.equal(get.body.total, 5);
    assert.equal(get.body.entry.length, 2);
    assert.equal(get.body.entry[0].search.mode, 'match');
    const post = await call(`${t.base}/Patient/_search`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'family=pager&_count=2&_total=accurate',
    });
    assert.deepEqual(post.body.entry.map((e: { fullUrl: string }) => e.fullUrl), get.body.entry.map((e: { fullUrl: string }) => e.fullUrl));
    const seen = new Set<string>();
    let page = get;
    for (let n = 0; n < 5 && page; n++) {
      for (const e of page.body.entry ?? []) seen.add(e.fullUrl);
      const next = page.body.link.find((l: { relation: string }) => l.relation === 'next');
      if (!next) break;
      page = await call(next.url);
    }
    assert.equal(seen.size, 5);
  });

  test('next links survive writes between pages; a forged _cursor is a 400', async () => {
    for (let i = 0; i < 4; i++) await call(`${t.base}/Patient`, { method: 'POST', json: patient(`Cursorfam${i}`) });
    const first = await call(`${t.base}/Patient?family=cursorfam&_sort=family&_count=2`);
    const next = first.body.link.find((l: { relation: string }) => l.relation === 'next').url as string;
    assert.match(next, /_cursor=/);
    assert.doesNotMatch(next, /_offset=/);
    // Delete one already seen: an offset link would now skip a resource.
    const seenId = first.body.entry[0].resource.id;
    await call(`${t.base}/Patient/${seenId}`, { method: 'DELETE' });
    const second = await call(next);
    assert.deepEqual(second.body.entry.map((e: { resource: { name: { family: string }[] } }) => e.resource.name[0].family), ['Cursorfam2', 'Cursorfam3']);
    const prev = second.body.link.find((l: { relation: string }) => l.relation === 'previous');
    assert.ok(prev, 'a previous link');
    const bad = await call(`${t.base}/Patient?family=cursorfam&_cursor=bm9wZQ`);
    assert.equal(bad.status, 400);
    assert.equal(bad.body.resourceType, 'OperationOutcome');
  });

  test('_include adds the referenced resource with search mode include', async () => {
    const p = await call(`${t.base}/Patient`, { method: 'POST', json: patient('Inc') });
    await call(`${t.base}/Observation`, { method: 'POST', json: { resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] }, subject: { reference: `Patient/${p.body.id}` } } });
    const r = await call(`${t.base}/Observation?subject=Patient/${p.body.id}&_include=Observation:subject`);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.entry.map((e: { search: { mode: string } }) => e.search.mode), ['match', 'include']);
    assert.equal(r.body.entry[1].resource.id, p.body.id);
  });

  test('system search with _type, and _summary=count', async () => {
    const r = await call(`${t.base}?_type=Patient&_summary=count`);
    assert.equal(r.status, 200);
    assert.ok(r.body.total >= 6);
    assert.equal(r.body.entry, undefined);
  });

  test('deleted resources drop out of search results', async () => {
    const p = await call(`${t.base}/Patient`, { method: 'POST', json: patient('Vanishing') });
    assert.equal((await call(`${t.base}/Patient?family=vanishing&_total=accurate`)).body.total, 1);
    await call(`${t.base}/Patient/${p.body.id}`, { method: 'DELETE' });
    assert.equal((await call(`${t.base}/Patient?family=vanishing&_total=accurate`)).body.total, 0);
  });
});
