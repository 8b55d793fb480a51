import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Store } from '../../src/store/store.ts';
import { FhirError } from '../../src/fhir/outcome.ts';

/**
 * The behaviour every Store must have, written against the interface only. The SQLite store runs
 * it now; the PostgreSQL store must pass it unchanged.
 */
export function storeConformance(makeStore: () => Promise<Store>): void {
  const withStore = (name: string, fn: (store: Store) => Promise<void>) =>
    test(name, async () => {
      const store = await makeStore();
      try {
        await fn(store);
      } finally {
        await store.close();
      }
    });

  const patient = (id: string, family = 'Doe') => ({ resourceType: 'Patient', id, name: [{ family }] });
  const status = async (p: Promise<unknown>) => {
    try {
      await p;
    } catch (err) {
      if (err instanceof FhirError) return err.status;
      throw err;
    }
    return 0;
  };

  describe('store conformance: versions', () => {
    withStore('create stores version 1 with server-owned meta, and read returns it', async (store) => {
      const stored = await store.transaction((tx) => tx.create({ ...patient('a'), meta: { versionId: '99', lastUpdated: '2000-01-01T00:00:00Z', tag: [{ code: 't' }] } }));
      assert.equal(stored.versionId, '1');
      assert.equal(stored.deleted, false);
      const read = await store.read('Patient', 'a');
      assert.ok(read);
      const body = JSON.parse(read.json!);
      assert.equal(body.meta.versionId, '1');
      assert.equal(body.meta.lastUpdated, stored.lastUpdated);
      assert.deepEqual(body.meta.tag, [{ code: 't' }]);
      assert.deepEqual(body.name, [{ family: 'Doe' }]);
      assert.match(stored.lastUpdated, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    });

    withStore('read of an unknown id or type is undefined', async (store) => {
      assert.equal(await store.read('Patient', 'nope'), undefined);
      assert.equal(await store.vread('Patient', 'nope', '1'), undefined);
    });

    withStore('create of an existing id is a 409 conflict and changes nothing', async (store) => {
      await store.transaction((tx) => tx.create(patient('a')));
      assert.equal(await status(store.transaction((tx) => tx.create(patient('a', 'Other')))), 409);
      assert.equal(JSON.parse((await store.read('Patient', 'a'))!.json!).name[0].family, 'Doe');
    });

    withStore('the same id in two types is two resources', async (store) => {
      await store.transaction((tx) => tx.create(patient('same')));
      await store.transaction((tx) => tx.create({ resourceType: 'Practitioner', id: 'same' }));
      assert.equal((await store.read('Practitioner', 'same'))!.resourceType, 'Practitioner');
      assert.equal((await store.read('Patient', 'same'))!.resourceType, 'Patient');
    });

    withStore('every update keeps the old versions, readable with vread', async (store) => {
      await store.transaction((tx) => tx.create(patient('a', 'V1')));
      const u2 = await store.transaction((tx) => tx.update(patient('a', 'V2')));
      const u3 = await store.transaction((tx) => tx.update(patient('a', 'V3')));
      assert.equal(u2.created, false);
      assert.equal(u2.stored.versionId, '2');
      assert.equal(u3.stored.versionId, '3');
      assert.ok(u3.stored.lastUpdated >= u2.stored.lastUpdated, 'lastUpdated never goes backwards');
      for (const [v, family] of [['1', 'V1'], ['2', 'V2'], ['3', 'V3']]) {
        assert.equal(JSON.parse((await store.vread('Patient', 'a', v))!.json!).name[0].family, family);
      }
      assert.equal(await store.vread('Patient', 'a', '4'), undefined);
      assert.equal(await store.vread('Patient', 'a', 'x'), undefined);
    });

    withStore('update of a new id creates it (update-as-create)', async (store) => {
      const r = await store.transaction((tx) => tx.update(patient('new')));
      assert.equal(r.created, true);
      assert.equal(r.stored.versionId, '1');
    });

    withStore('ifMatch: a stale or absent version is 412 and writes nothing', async (store) => {
      await store.transaction((tx) => tx.create(patient('a')));
      await store.transaction((tx) => tx.update(patient('a', 'B')));
      assert.equal(await status(store.transaction((tx) => tx.update(patient('a', 'C'), { ifMatch: '1' }))), 412);
      assert.equal(await status(store.transaction((tx) => tx.update(patient('zz'), { ifMatch: '1' }))), 412);
      assert.equal(await status(store.transaction((tx) => tx.delete('Patient', 'a', { ifMatch: '1' }))), 412);
      assert.equal((await store.read('Patient', 'a'))!.versionId, '2');
      assert.equal(await store.read('Patient', 'zz'), undefined);
      const ok = await store.transaction((tx) => tx.update(patient('a', 'C'), { ifMatch: '2' }));
      assert.equal(ok.stored.versionId, '3');
    });

    withStore('delete records a marker version; history stays; re-create continues the versions', async (store) => {
      await store.transaction((tx) => tx.create(patient('a')));
      const d = await store.transaction((tx) => tx.delete('Patient', 'a'));
      assert.ok(d);
      assert.equal(d.versionId, '2');
      assert.equal(d.deleted, true);
      const read = await store.read('Patient', 'a');
      assert.equal(read!.deleted, true);
      assert.equal(read!.json, undefined);
      assert.ok((await store.vread('Patient', 'a', '1'))!.json);
      assert.equal(await store.transaction((tx) => tx.delete('Patient', 'a')), undefined, 'deleting again does nothing');
      assert.equal(await store.transaction((tx) => tx.delete('Patient', 'never')), undefined);
      const again = await store.transaction((tx) => tx.update(patient('a', 'Back')));
      assert.equal(again.created, true);
      assert.equal(again.stored.versionId, '3');
    });
  });

  describe('store conformance: transactions', () => {
    withStore('a transaction that throws leaves nothing behind', async (store) => {
      await store.transaction((tx) => tx.create(patient('keep')));
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.create(patient('gone'));
          await tx.update(patient('keep', 'Changed'));
          throw new Error('abort');
        }),
        /abort/,
      );
      assert.equal(await store.read('Patient', 'gone'), undefined);
      assert.equal((await store.read('Patient', 'keep'))!.versionId, '1');
      const h = await store.history({ count: 10, offset: 0 });
      assert.equal(h.total, 1);
    });

    withStore('writes inside a transaction are visible to it and invisible outside until commit', async (store) => {
      let outside: unknown = 'not checked';
      await store.transaction(async (tx) => {
        await tx.create(patient('a'));
        assert.ok(await tx.read('Patient', 'a'));
        outside = await store.read('Patient', 'a');
      });
      assert.equal(outside, undefined);
      assert.ok(await store.read('Patient', 'a'));
    });

    withStore('concurrent transactions all commit, and one failing does not undo the others', async (store) => {
      const jobs = Array.from({ length: 50 }, (_, i) =>
        store.transaction(async (tx) => {
          await tx.create(patient(`c${i}`));
          if (i === 17) throw new Error('only this one fails');
          return i;
        }));
      const results = await Promise.allSettled(jobs);
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 49);
      assert.equal(await store.read('Patient', 'c17'), undefined);
      assert.ok(await store.read('Patient', 'c18'));
      assert.equal((await store.history({ resourceType: 'Patient', count: 0, offset: 0 })).total, 49);
    });

    withStore('concurrent updates of one resource get distinct consecutive versions', async (store) => {
      await store.transaction((tx) => tx.create(patient('a')));
      await Promise.all(Array.from({ length: 20 }, (_, i) => store.transaction((tx) => tx.update(patient('a', `F${i}`)))));
      assert.equal((await store.read('Patient', 'a'))!.versionId, '21');
    });
  });

  describe('store conformance: history', () => {
    const seed = async (store: Store) => {
      await store.transaction((tx) => tx.create(patient('p1', 'A')));
      await store.transaction((tx) => tx.create({ resourceType: 'Observation', id: 'o1', status: 'final', code: { text: 'x' } }));
      await store.transaction((tx) => tx.update(patient('p1', 'B'), { method: 'PUT' }));
      await store.transaction((tx) => tx.create(patient('p2', 'C')));
      await store.transaction((tx) => tx.delete('Patient', 'p2'));
    };

    withStore('instance, type and system history, newest first, with methods', async (store) => {
      await seed(store);
      const inst = await store.history({ resourceType: 'Patient', id: 'p1', count: 10, offset: 0 });
      assert.deepEqual(inst.entries.map((e) => [e.versionId, e.method]), [['2', 'PUT'], ['1', 'POST']]);
      const type = await store.history({ resourceType: 'Patient', count: 10, offset: 0 });
      assert.equal(type.total, 4);
      assert.deepEqual(type.entries.map((e) => `${e.id}/${e.versionId}${e.deleted ? '-deleted' : ''}`), ['p2/2-deleted', 'p2/1', 'p1/2', 'p1/1']);
      const sys = await store.history({ count: 10, offset: 0 });
      assert.equal(sys.total, 5);
      assert.equal(sys.entries[3].resourceType, 'Observation');
    });

    withStore('history pages with count and offset, total unchanged', async (store) => {
      await seed(store);
      const p1 = await store.history({ count: 2, offset: 0 });
      const p2 = await store.history({ count: 2, offset: 2 });
      const p3 = await store.history({ count: 2, offset: 4 });
      assert.equal(p1.total, 5);
      assert.equal(p1.entries.length + p2.entries.length + p3.entries.length, 5);
      const keys = [...p1.entries, ...p2.entries, ...p3.entries].map((e) => `${e.resourceType}/${e.id}/${e.versionId}`);
      assert.equal(new Set(keys).size, 5);
    });

    withStore('_since, until and _at select by time', async (store) => {
      await store.transaction((tx) => tx.create(patient('p1', 'A')));
      const mid = (await store.read('Patient', 'p1'))!.lastUpdated;
      await new Promise((r) => setTimeout(r, 5));
      const u = await store.transaction((tx) => tx.update(patient('p1', 'B')));
      const since = await store.history({ resourceType: 'Patient', since: u.stored.lastUpdated, count: 10, offset: 0 });
      assert.deepEqual(since.entries.map((e) => e.versionId), ['2']);
      const until = await store.history({ resourceType: 'Patient', until: mid, count: 10, offset: 0 });
      assert.deepEqual(until.entries.map((e) => e.versionId), ['1']);
      const at = await store.history({ resourceType: 'Patient', at: mid, count: 10, offset: 0 });
      assert.deepEqual(at.entries.map((e) => e.versionId), ['1'], 'version 1 was current at its own lastUpdated');
      const atLater = await store.history({ resourceType: 'Patient', at: u.stored.lastUpdated, count: 10, offset: 0 });
      assert.deepEqual(atLater.entries.map((e) => e.versionId), ['2']);
    });
  });

  describe('store conformance: audit', () => {
    withStore('audit records read back in the order they were appended, a page at a time', async (store) => {
      const start = (await store.auditRecords({ afterSeq: 0, limit: 1_000_000 })).at(-1)?.seq ?? 0;
      const json = (n: number) => JSON.stringify({ resourceType: 'AuditEvent', id: `e${n}` });
      await store.appendAudit([0, 1, 2].map((n) => ({ recorded: new Date().toISOString(), json: json(n) })));
      await store.appendAudit([{ recorded: new Date().toISOString(), json: json(3) }]);
      const first = await store.auditRecords({ afterSeq: start, limit: 3 });
      assert.deepEqual(first.map((r) => r.json), [json(0), json(1), json(2)]);
      const rest = await store.auditRecords({ afterSeq: first[2].seq, limit: 3 });
      assert.deepEqual(rest.map((r) => r.json), [json(3)]);
      assert.ok(first[0].seq < first[1].seq && first[2].seq < rest[0].seq);
    });
  });
}
