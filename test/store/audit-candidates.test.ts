import { test } from 'node:test';
import { storeKey } from '../store-key.ts';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { openStore } from '../../src/main.ts';
import { openEncrypted } from '../../src/store/sqlite/open.ts';
import { indexedUpto } from '../../src/store/sqlite/audit-schema.ts';
import type { Store } from '../../src/store/store.ts';

/** Search keys are written once appends pause; until then the records not indexed are candidates as they are. */
test('audit candidates: the same answers before and after the search keys are written', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bastion-candidates-'));
  const store = await openStore(dir);
  const key = await storeKey(dir, 'bastion-audit.db');
  const upto = () => {
    const db = openEncrypted(join(dir, 'bastion-audit.db'), key);
    try {
      return indexedUpto(db);
    } finally {
      db.close();
    }
  };
  try {
    const at = (i: number) => new Date(Date.UTC(2026, 10, 1) + i * 60_000).toISOString();
    await store.appendAudit(Array.from({ length: 60 }, (_, i) => ({
      recorded: at(i),
      json: JSON.stringify({ at: at(i), do: 'read', st: 200, who: `u${i % 3}`, ip: '127.0.0.1', what: [`Observation/o${i}`], pt: [`p${i % 4}`] }),
    })));
    const ask = async (s: Store) => ({
      patient: (await s.auditCandidates({ keys: ['p|p1'], descending: true, limit: 100 })).map((r) => r.seq),
      agent: (await s.auditCandidates({ keys: ['a|u2'], descending: false, limit: 100 })).map((r) => r.seq),
      entity: (await s.auditCandidates({ keys: ['e|Observation/o7', 'e|Observation/o8'], descending: true, limit: 100 })).map((r) => r.seq),
      range: (await s.auditCandidates({ from: at(50), to: at(52), descending: false, limit: 100 })).map((r) => r.seq),
    });
    assert.equal(upto(), 0, 'nothing indexed while appends go on');
    const before = await ask(store);
    // The tail is all candidates: the keys narrow only what is indexed, the caller tests the rest.
    assert.ok(before.patient.length >= 15);
    await sleep(600);
    assert.equal(upto(), 60, 'indexed once appends paused');
    const after = await ask(store);
    assert.deepEqual(after.patient, Array.from({ length: 15 }, (_, i) => 58 - i * 4), 'p1: every fourth record, newest first');
    assert.deepEqual(after.agent.slice(0, 5), [3, 6, 9, 12, 15]);
    assert.deepEqual(after.entity, [9, 8]);
    for (const key of ['patient', 'agent', 'entity'] as const) assert.ok(after[key].every((seq) => before[key].includes(seq)), `${key}: the unindexed answer held every match`);
    // Five minutes either side (an append's lag) widen a time range; the caller tests exact times.
    assert.ok(after.range.includes(51) && after.range.includes(52) && after.range.length <= 13);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
