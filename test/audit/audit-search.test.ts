import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { useIssuerServer } from '../auth/external-issuer.ts';
import { call } from '../rest/server.ts';

/** Audit records are appended in batches (~20 ms) by a worker: wait until what was done is searchable. */
const settle = () => sleep(150);

describe('the audit trail through the FHIR API', () => {
  const t = useIssuerServer();
  const ids = { a: '', b: '', obs: '' };
  let admin: Record<string, string>;
  let auditor: Record<string, string>;
  let system: Record<string, string>;
  let startedAt = '';
  /** After the seeded interactions: what the tests themselves do comes later. */
  let seededAt = '';

  before(async () => {
    system = await t.auth('system');
    admin = await t.auth('admin', 'user/*.cruds', { fhirUser: 'Practitioner/adm' });
    auditor = await t.auth('auditor', 'user/AuditEvent.rs');
    startedAt = new Date().toISOString();
    const post = async (body: Record<string, unknown>) => (await call(`${t.base}/${body.resourceType}`, { method: 'POST', headers: system, json: body })).body.id as string;
    ids.a = await post({ resourceType: 'Patient', name: [{ family: 'Trailone' }] });
    ids.b = await post({ resourceType: 'Patient', name: [{ family: 'Trailtwo' }] });
    ids.obs = await post({ resourceType: 'Observation', status: 'final', code: { text: 'weight' }, subject: { reference: `Patient/${ids.a}` } });
    assert.equal((await call(`${t.base}/Patient/${ids.a}`, { headers: admin })).status, 200);
    assert.equal((await call(`${t.base}/Observation/${ids.obs}`, { headers: system })).status, 200);
    assert.equal((await call(`${t.base}/Observation?code:text=weight`, { headers: system })).status, 200);
    assert.equal((await call(`${t.base}/Patient/${ids.b}`, { headers: system })).status, 200);
    assert.equal((await call(`${t.base}/Patient/not-there`, { headers: admin })).status, 404);
    await settle();
    seededAt = new Date().toISOString();
  });

  for (const role of ['patient', 'physician', 'nurse', 'lab-technician', 'billing', 'researcher', 'system']) {
    test(`the ${role} role cannot search or read the trail`, async () => {
      const claims = role === 'patient' ? { patient: ids.a, fhirUser: `Patient/${ids.a}` } : {};
      const scope = role === 'patient' ? 'patient/*.rs' : role === 'system' ? 'system/*.cruds' : 'user/*.rs';
      const headers = await t.auth(role, scope, claims);
      for (const url of ['AuditEvent', `AuditEvent?patient=Patient/${ids.a}`, 'AuditEvent/1', 'AuditEvent/1/_history/1', `Patient/${ids.a}/AuditEvent`]) {
        const r = await call(`${t.base}/${url}`, { headers });
        assert.equal(r.status, 403, `${role} GET ${url}: ${r.text}`);
        assert.doesNotMatch(r.text, /"resourceType":"AuditEvent"/);
      }
      const posted = await call(`${t.base}/AuditEvent/_search`, { method: 'POST', headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' }, body: 'outcome=0' });
      assert.equal(posted.status, 403);
    });
  }

  test('nobody writes the trail through the API, admins included', async () => {
    const event = { resourceType: 'AuditEvent', type: { code: 'rest' }, recorded: new Date().toISOString(), agent: [{ requestor: true }], source: { observer: { display: 'x' } } };
    assert.equal((await call(`${t.base}/AuditEvent`, { method: 'POST', headers: admin, json: event })).status, 405);
    assert.equal((await call(`${t.base}/AuditEvent/1`, { method: 'PUT', headers: admin, json: { ...event, id: '1' } })).status, 405);
    assert.equal((await call(`${t.base}/AuditEvent/1`, { method: 'DELETE', headers: admin })).status, 405);
    assert.equal((await call(`${t.base}/AuditEvent/1`, { method: 'PATCH', headers: { ...admin, 'content-type': 'application/json-patch+json' }, body: '[]' })).status, 405);
    const batch = await call(t.base, { method: 'POST', headers: admin, json: { resourceType: 'Bundle', type: 'batch', entry: [{ resource: event, request: { method: 'POST', url: 'AuditEvent' } }] } });
    assert.match(batch.body.entry[0].response.status, /^405/);
  });

  test('admins and auditors find the events concerning a patient, and only those', async () => {
    for (const headers of [admin, auditor]) {
      const r = await call(`${t.base}/AuditEvent?patient=Patient/${ids.a}&date=ge${startedAt}&date=lt${seededAt}`, { headers });
      assert.equal(r.status, 200, r.text);
      const events = r.body.entry.map((e: { resource: any }) => e.resource);
      const refs = events.map((e: any) => JSON.stringify(e.entity ?? []));
      // Created, the Observation about them created, read by the admin, the Observation read and found.
      assert.equal(events.length, 5, JSON.stringify(events.map((e: any) => e.subtype)));
      assert.ok(refs.every((x: string) => x.includes(`Patient/${ids.a}`)));
      assert.ok(!refs.some((x: string) => x.includes(`Patient/${ids.b}`)));
      const times = events.map((e: any) => e.recorded);
      assert.deepEqual(times, [...times].sort().reverse(), 'newest first');
    }
  });

  test('each search parameter narrows the trail', async () => {
    const found = async (query: string) => {
      const r = await call(`${t.base}/AuditEvent?date=ge${startedAt}&date=lt${seededAt}&${query}`, { headers: auditor });
      assert.equal(r.status, 200, `${query}: ${r.text}`);
      return (r.body.entry ?? []).map((e: { resource: any }) => e.resource);
    };
    const byAdmin = await found('agent=Practitioner/adm');
    assert.equal(byAdmin.length, 2);
    assert.ok(byAdmin.every((e: any) => e.agent[0].who.reference === 'Practitioner/adm' && e.agent[0].altId === 'admin-1'));
    assert.equal((await found('altid=admin-1')).length, 2);
    assert.equal((await found('agent-role=admin')).length, 2);
    assert.equal((await found('agent=app&agent-role=system')).length, 6);
    const failures = await found('outcome=4');
    assert.equal(failures.length, 1);
    assert.equal(failures[0].entity[0].what.reference, 'Patient/not-there');
    assert.equal((await found('outcome=http://hl7.org/fhir/audit-event-outcome|0&agent-role=admin')).length, 1);
    assert.equal((await found('action=C')).length, 3);
    assert.equal((await found('subtype=create')).length, 3);
    const searched = await found('subtype=http://hl7.org/fhir/restful-interaction|search-type&agent-role=system');
    assert.equal(searched.length, 1);
    const query = searched[0].entity.find((e: any) => e.role?.code === '24');
    assert.equal(Buffer.from(query.query, 'base64').toString(), 'code:text=weight');
    assert.deepEqual(query.detail, [{ type: 'result-count', valueString: '1' }]);
    assert.equal((await found('type=rest&action=C,R&agent-role=system')).length, 6);
    assert.equal((await found(`entity=Observation/${ids.obs}`)).length, 3, 'created, read and found by the search');
    assert.equal((await found(`entity=Patient/${ids.b}`)).length, 2);
    assert.equal((await found('address=127.0.0&agent-role=system')).length, 6);
    assert.equal((await found('address=10.&agent-role=system')).length, 0);
    assert.equal((await found('source=Bastion&agent-role=admin')).length, 2);
    const earlier = (await call(`${t.base}/AuditEvent?date=lt${startedAt}`, { headers: auditor })).body.entry ?? [];
    assert.ok(earlier.every((e: { resource: { recorded: string } }) => e.resource.recorded < startedAt), 'only what happened before (the server starting)');
    assert.equal((await found('date=ge2999-01-01')).length, 0);
  });

  test('pages through the trail with next links, in either order', async () => {
    const all = await call(`${t.base}/AuditEvent?agent-role=system&_count=100`, { headers: auditor });
    const expected = all.body.entry.map((e: { resource: { id: string } }) => e.resource.id);
    assert.ok(expected.length >= 6);
    const seen: string[] = [];
    let url: string | undefined = `${t.base}/AuditEvent?agent-role=system&_count=2`;
    while (url) {
      const page = await call(url, { headers: auditor });
      assert.equal(page.status, 200, page.text);
      seen.push(...(page.body.entry ?? []).map((e: { resource: { id: string } }) => e.resource.id));
      url = page.body.link.find((l: { relation: string }) => l.relation === 'next')?.url;
    }
    assert.deepEqual(seen.slice(0, expected.length), expected);
    const ascending = await call(`${t.base}/AuditEvent?agent-role=system&_sort=date&_count=100`, { headers: auditor });
    assert.deepEqual(ascending.body.entry.map((e: { resource: { id: string } }) => e.resource.id), [...expected].reverse());
  });

  test('reads one event by id; it has one version', async () => {
    const listed = (await call(`${t.base}/AuditEvent?agent-role=admin&_count=1`, { headers: auditor })).body.entry[0].resource;
    const read = await call(`${t.base}/AuditEvent/${listed.id}`, { headers: auditor });
    assert.equal(read.status, 200);
    assert.equal(read.body.recorded, listed.recorded);
    assert.deepEqual(read.body.agent, listed.agent);
    assert.equal((await call(`${t.base}/AuditEvent/${listed.id}/_history/1`, { headers: auditor })).status, 200);
    assert.equal((await call(`${t.base}/AuditEvent/${listed.id}/_history/2`, { headers: auditor })).status, 404);
    assert.equal((await call(`${t.base}/AuditEvent/99999999`, { headers: auditor })).status, 404);
    assert.equal((await call(`${t.base}/AuditEvent/abc`, { headers: auditor })).status, 404);
  });

  test('refuses what it cannot answer with 400', async () => {
    for (const q of ['entity-name=x', 'date=yesterday', '_sort=address', 'patient=Observation/1', '_count=-1', 'agent:missing=true']) {
      const r = await call(`${t.base}/AuditEvent?${q}`, { headers: auditor });
      assert.equal(r.status, 400, `${q}: ${r.text}`);
      assert.equal(r.body.resourceType, 'OperationOutcome');
    }
  });

  test('requests refused before the pipeline are on the trail too: a bad token, a body that is not JSON', async () => {
    const forged = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.forgedsignature';
    assert.equal((await call(`${t.base}/Patient/${ids.a}`, { headers: { authorization: `Bearer ${forged}` } })).status, 401);
    assert.equal((await call(`${t.base}/Patient`, { method: 'POST', headers: { ...system, 'content-type': 'application/fhir+json' }, body: '{not json' })).status, 400);
    await settle();
    const rejected = (await call(`${t.base}/AuditEvent?subtype=urn:bastion:auth-event|token-rejected`, { headers: auditor })).body.entry ?? [];
    assert.equal(rejected.length, 1);
    assert.equal(rejected[0].resource.outcome, '4');
    assert.ok(!JSON.stringify(rejected).includes('forgedsignature'), 'never the token itself');
    const refused = (await call(`${t.base}/AuditEvent?subtype=operation&outcome=4&altid=unauthenticated`, { headers: auditor })).body.entry ?? [];
    assert.ok(refused.length >= 1, 'the malformed body');
  });

  test('the auditor reads the trail and nothing clinical', async () => {
    assert.equal((await call(`${t.base}/Patient/${ids.a}`, { headers: auditor })).status, 403);
    assert.equal((await call(`${t.base}/Observation?subject=Patient/${ids.a}`, { headers: auditor })).status, 403);
  });

  describe('accounting of disclosures', () => {
    test('the patient gets who else reached their record, as a document', async () => {
      const self = await t.auth('patient', 'patient/*.rs', { patient: ids.a, fhirUser: `Patient/${ids.a}` });
      assert.equal((await call(`${t.base}/Observation/${ids.obs}`, { headers: self })).status, 200);
      await settle();
      const r = await call(`${t.base}/Patient/${ids.a}/$accounting-of-disclosures`, { headers: self });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.resourceType, 'Bundle');
      assert.equal(r.body.type, 'document');
      const [composition, ...events] = r.body.entry.map((e: { resource: any }) => e.resource);
      assert.equal(composition.resourceType, 'Composition');
      assert.equal(composition.subject.reference, `Patient/${ids.a}`);
      assert.equal(composition.section[0].entry.length, events.length);
      // By the system client: Patient created, Observation created, read and found; by the admin: the read.
      assert.equal(events.length, 5, JSON.stringify(events.map((e: any) => [e.subtype[0].code, e.agent[0].altId])));
      assert.ok(events.every((e: any) => e.agent[0].altId !== 'patient-1'), 'their own accesses are not disclosures');
      assert.ok(events.every((e: any) => e.outcome === '0'));
      const div: string = composition.section[0].text.div;
      assert.match(div, /Practitioner\/adm \(admin\)/);
      assert.match(div, /HOPERAT/);
      assert.match(div, /127\.0\.0\.1/);
      assert.doesNotMatch(div, /Trailone|weight/, 'the accounting names what was reached, not its content');
    });

    test('nobody else gets a patient\'s accounting, except admins and auditors', async () => {
      const other = await t.auth('patient', 'patient/*.rs', { patient: ids.b, fhirUser: `Patient/${ids.b}` });
      assert.equal((await call(`${t.base}/Patient/${ids.a}/$accounting-of-disclosures`, { headers: other })).status, 403);
      for (const role of ['physician', 'nurse', 'researcher', 'billing', 'system']) {
        const headers = await t.auth(role, role === 'system' ? 'system/*.cruds' : 'user/*.rs');
        assert.equal((await call(`${t.base}/Patient/${ids.a}/$accounting-of-disclosures`, { headers })).status, 403, role);
      }
      for (const headers of [admin, auditor]) {
        const r = await call(`${t.base}/Patient/${ids.b}/$accounting-of-disclosures`, { headers });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.body.entry.length - 1, 2, 'Patient B: created and read by the system client');
      }
    });

    test('a period narrows it; a bad one is refused', async () => {
      const past = await call(`${t.base}/Patient/${ids.a}/$accounting-of-disclosures?start=2001-01-01&end=2001-12-31`, { headers: admin });
      assert.equal(past.status, 200);
      assert.equal(past.body.entry.length, 1, 'the Composition alone');
      assert.equal(past.body.entry[0].resource.section[0].emptyReason.text, 'No disclosures in this period');
      assert.equal((await call(`${t.base}/Patient/${ids.a}/$accounting-of-disclosures?start=last-week`, { headers: admin })).status, 400);
      assert.equal((await call(`${t.base}/Patient/${ids.a}/$accounting-of-disclosures?who=me`, { headers: admin })).status, 400);
    });
  });
});
