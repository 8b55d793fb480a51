import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { useTempStore } from './temp-store.ts';
import type { SearchRequest } from '../../src/fhir/search/types.ts';
import type { Resource } from '../../src/fhir/types.ts';

/** `_security:not` on known labels is answered from the row's label bits: they must follow every write. */
describe('label bits (SQLite)', () => {
  const store = useTempStore('bastion-mask-');
  const conf = 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality';
  const obs = (id: string, codes: string[]): Resource & { id: string } => ({ resourceType: 'Observation', id, status: 'final', code: { text: 'mask' }, meta: { security: codes.map((code) => ({ system: conf, code })) } } as Resource & { id: string });
  const visible = async (): Promise<string[]> => {
    const request: SearchRequest = {
      resourceTypes: ['Observation'], criteria: [{ kind: 'token', code: '_security', negate: true, values: [{ system: conf, code: 'V' }, { system: conf, code: 'R' }] }],
      sort: [], count: 100, offset: 0, total: 'none', include: [], revinclude: [],
    };
    return (await store.search(request)).matches.map((m) => m.id).sort();
  };

  test('create, relabel, delete and create again', async () => {
    await store.transaction(async (tx) => {
      await tx.create(obs('plain', []));
      await tx.create(obs('v', ['V']));
      await tx.create(obs('n', ['N']));
    });
    assert.deepEqual(await visible(), ['n', 'plain']);
    await store.transaction(async (tx) => { await tx.update(obs('v', ['N'])); await tx.update(obs('plain', ['R'])); });
    assert.deepEqual(await visible(), ['n', 'v']);
    await store.transaction(async (tx) => { await tx.delete('Observation', 'v'); });
    await store.transaction(async (tx) => { await tx.update(obs('v', ['V'])); });
    assert.deepEqual(await visible(), ['n']);
    await store.transaction(async (tx) => { await tx.delete('Observation', 'plain'); });
    await store.transaction(async (tx) => { await tx.update(obs('plain', [])); });
    assert.deepEqual(await visible(), ['n', 'plain'], 'a resource created again over a deleted labelled one is unlabelled');
  });

  test('a rebuilt index sets the bits from content', async () => {
    assert.ok((await store.reindex()) > 0);
    assert.deepEqual(await visible(), ['n', 'plain']);
  });
});
