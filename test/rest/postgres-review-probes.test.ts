import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { call, patient, useServer } from './server.ts';
import { freshSchema, pgSkip, postgresUrl } from '../postgres.ts';

/**
 * End-to-end probes of the review of the PostgreSQL change (one node on PostgreSQL, requests at
 * the same time on its pool's connections): see test/store/postgres-review-probes.test.ts.
 */
describe('PostgreSQL review probes, end to end', { skip: pgSkip }, () => {
  // The master key is read from the process's environment (never the configuration).
  process.env.BASTION_MASTER_KEY ??= randomBytes(32).toString('hex');
  const t = useServer(pgSkip ? {} : { BASTION_DATABASE_URL: postgresUrl!, BASTION_DATABASE_SCHEMA: freshSchema('rest'), BASTION_DATABASE_POOL_SIZE: '12' });

  test('concurrent PATCHes without If-Match all apply, one after the other (no 412 the client never asked for)', async () => {
    const created = await call(`${t.base}/Patient`, { method: 'POST', json: patient('Patched', { telecom: [{ system: 'email', value: 'first@example.org' }] }) });
    assert.equal(created.status, 201);
    const id = created.body.id as string;
    const replies = await Promise.all(Array.from({ length: 10 }, (_, i) => call(`${t.base}/Patient/${id}`, {
      method: 'PATCH', headers: { 'content-type': 'application/json-patch+json' },
      body: JSON.stringify([{ op: 'add', path: '/telecom/-', value: { system: 'phone', value: `555-000${i}` } }]),
    })));
    assert.deepEqual(replies.map((r) => r.status), Array(10).fill(200), replies.map((r) => r.body?.issue?.[0]?.diagnostics ?? '').join(' | '));
    const read = await call(`${t.base}/Patient/${id}`);
    assert.equal(read.body.telecom.length, 11, 'every patch is in the resource');
    assert.equal(read.body.meta.versionId, '11');
  });

  test('a PATCH with If-Match that another write overtook is still a 412', async () => {
    const created = await call(`${t.base}/Patient`, { method: 'POST', json: patient('IfMatch') });
    const id = created.body.id as string;
    const replies = await Promise.all(Array.from({ length: 6 }, (_, i) => call(`${t.base}/Patient/${id}`, {
      method: 'PATCH', headers: { 'content-type': 'application/json-patch+json', 'if-match': 'W/"1"' },
      body: JSON.stringify([{ op: 'replace', path: '/gender', value: i % 2 ? 'male' : 'other' }]),
    })));
    assert.deepEqual(replies.map((r) => r.status).sort(), [200, 412, 412, 412, 412, 412]);
  });

  test('client input PostgreSQL cannot take is a 4xx OperationOutcome, never a 500', async () => {
    const bad = [
      `${t.base}/Patient?name=a%00b`,
      `${t.base}/Patient?_id=a%00b`,
      `${t.base}/Patient?birthdate=ap1980-05-15`,
      `${t.base}/Patient?_sort=birthdate&_cursor=${Buffer.from(JSON.stringify({ d: 'n', k: ['x'], r: 1 })).toString('base64url')}`,
    ];
    for (const url of bad) {
      const reply = await call(url);
      assert.ok(reply.status < 500, `${url}: ${reply.status} ${reply.text.slice(0, 200)}`);
      if (reply.status >= 400) assert.equal(reply.body.resourceType, 'OperationOutcome');
    }
    const nul = await call(`${t.base}/Patient`, { method: 'POST', json: patient('Nul\u0000Byte') });
    assert.ok(nul.status < 500, `${nul.status} ${nul.text.slice(0, 200)}`);
    const long = Array.from({ length: 900 }, (_, i) => String.fromCharCode(0x4e00 + ((i * 7919) % 20000))).join('');
    const created = await call(`${t.base}/Observation`, { method: 'POST', json: { resourceType: 'Observation', status: 'final', code: { text: long }, valueString: long } });
    assert.equal(created.status, 201, created.text.slice(0, 200));
  });
});
