import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { call, patient, useServer } from '../rest/server.ts';
import type { AuditRecord } from '../../src/store/store.ts';

/** While the audit trail cannot be written, no FHIR request is served (fail closed), and service resumes when it can. */
const settle = () => new Promise((r) => setTimeout(r, 80));

describe('audit fail closed', () => {
  const t = useServer();

  test('a failing audit sink stops requests with 503 until it writes again', async () => {
    const created = await call(`${t.base}/Patient`, { method: 'POST', json: patient('Failclosed') });
    assert.equal(created.status, 201);
    await settle();
    const store = t.server.store;
    const append = store.appendAudit.bind(store);
    let broken = true;
    store.appendAudit = (records: AuditRecord[]) => (broken ? Promise.reject(new Error('disk full')) : append(records));
    try {
      assert.equal((await call(`${t.base}/Patient/${created.body.id}`)).status, 200, 'the failure is not known yet');
      await settle();
      const refused = await call(`${t.base}/Patient/${created.body.id}`);
      assert.equal(refused.status, 503);
      assert.equal(refused.body.resourceType, 'OperationOutcome');
      assert.equal(refused.headers.get('retry-after'), '5');
      assert.equal((await call(`${t.base}/metadata`)).status, 200, 'the CapabilityStatement holds no PHI');
      broken = false;
      await call(`${t.base}/Patient/${created.body.id}`);
      await settle();
      assert.equal((await call(`${t.base}/Patient/${created.body.id}`)).status, 200, 'served again once the trail is written');
    } finally {
      store.appendAudit = append;
    }
  });
});

describe('audit fail open (configured)', () => {
  const t = useServer({ BASTION_AUDIT_FAIL_CLOSED: 'false' });

  test('requests go on, as the deployment chose', async () => {
    const store = t.server.store;
    const append = store.appendAudit.bind(store);
    store.appendAudit = () => Promise.reject(new Error('disk full'));
    try {
      await call(`${t.base}/Patient?_count=1`);
      await settle();
      assert.equal((await call(`${t.base}/Patient?_count=1`)).status, 200);
    } finally {
      store.appendAudit = append;
    }
  });
});
