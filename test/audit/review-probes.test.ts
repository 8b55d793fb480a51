import { after, before, describe, test } from 'node:test';
import { storeKey } from '../store-key.ts';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { useIssuerServer } from '../auth/external-issuer.ts';
import { call } from '../rest/server.ts';
import { auditSigningKey, openStore } from '../../src/main.ts';
import { openEncrypted } from '../../src/store/sqlite/open.ts';
import { verifyAuditFile } from '../../src/cli/audit.ts';
import { purgeAuditTrail } from '../../src/audit/retention.ts';

/**
 * Review probes for the audit trail API, the accounting of disclosures, Provenance and retention.
 * Those numbered F1..F13 each demonstrated a problem found in review (and failed) until it was
 * fixed; the others pin deny paths and behaviour that were checked and found sound.
 */

/** Audit records are appended in ~20 ms batches by a worker: wait until they are searchable. */
const settle = () => sleep(200);
type Headers = Record<string, string>;
const entries = (r: { body: any }) => (r.body?.entry ?? []).map((e: { resource: any }) => e.resource);
const form = (h: Headers) => ({ ...h, 'content-type': 'application/x-www-form-urlencoded' });

describe('review probes: the trail, the accounting and Provenance through the API', () => {
  const t = useIssuerServer();
  let system: Headers;
  let admin: Headers;
  let auditor: Headers;
  const post = async (body: Record<string, unknown>, headers = system) => {
    const r = await call(`${t.base}/${body.resourceType}`, { method: 'POST', headers, json: body });
    assert.equal(r.status, 201, r.text);
    return r.body.id as string;
  };
  const newPatient = (family: string) => post({ resourceType: 'Patient', name: [{ family }] });
  const observation = (patient: string, text: string, extra: Record<string, unknown> = {}) =>
    post({ resourceType: 'Observation', status: 'final', code: { text }, subject: { reference: `Patient/${patient}` }, ...extra });
  const patientToken = (id: string, claims: Record<string, unknown> = {}, scope = 'patient/*.rs') =>
    t.auth('patient', scope, { patient: id, fhirUser: `Patient/${id}`, ...claims });
  const accounting = (id: string, headers: Headers) => call(`${t.base}/Patient/${id}/$accounting-of-disclosures`, { headers });

  before(async () => {
    system = await t.auth('system');
    admin = await t.auth('admin', 'user/*.cruds', { fhirUser: 'Practitioner/adm' });
    auditor = await t.auth('auditor', 'user/AuditEvent.rs user/Provenance.rs');
  });

  // ---- deny paths and behaviour found sound ----

  test('sound: non-readers are refused before any lookup (same 403 for an existing and a missing event), also inside a batch', async () => {
    const a = await newPatient('Probedeny');
    await settle();
    const existing = entries(await call(`${t.base}/AuditEvent?patient=Patient/${a}`, { headers: auditor }))[0].id;
    for (const [role, scope, claims] of [
      ['physician', 'user/*.rs', { fhirUser: 'Practitioner/p1' }], ['nurse', 'user/*.rs', {}], ['researcher', 'user/*.rs', {}],
      ['billing', 'user/*.rs', {}], ['system', 'system/*.cruds', {}], ['patient', 'patient/*.rs', { patient: a, fhirUser: `Patient/${a}` }],
    ] as const) {
      const headers = await t.auth(role, scope, claims);
      const hit = await call(`${t.base}/AuditEvent/${existing}`, { headers });
      const miss = await call(`${t.base}/AuditEvent/999999999`, { headers });
      assert.equal(hit.status, 403, `${role}: ${hit.text}`);
      assert.equal(miss.status, 403, role);
      assert.equal(hit.text, miss.text, `${role}: the refusal tells nothing about the event`);
      const batch = await call(t.base, { method: 'POST', headers, json: { resourceType: 'Bundle', type: 'batch', entry: [
        { request: { method: 'GET', url: `AuditEvent?patient=Patient/${a}` } },
        { request: { method: 'GET', url: `AuditEvent/${existing}` } },
        { request: { method: 'GET', url: `Patient/${a}/AuditEvent` } },
      ] } });
      // Researchers get no batch at all (de-identified view); everyone else gets a 403 per entry.
      assert.equal(batch.status, role === 'researcher' ? 403 : 200, batch.text);
      for (const e of batch.body.entry ?? []) assert.match(e.response.status, /^403/, `${role}: ${JSON.stringify(e)}`);
      assert.doesNotMatch(batch.text, /"resourceType":"AuditEvent"/);
    }
  });

  test('sound: a patient gets no other patient\'s accounting (mismatched fhirUser, case, encoding, batch, no launch patient)', async () => {
    const a = await newPatient('Probeowna');
    const b = await newPatient('Probeownb');
    const tries: [string, Headers, string][] = [
      ['the other patient', await patientToken(a), `Patient/${b}/$accounting-of-disclosures`],
      ['fhirUser naming the other patient', await patientToken(a, { fhirUser: `Patient/${b}` }), `Patient/${b}/$accounting-of-disclosures`],
      ['no launch patient, fhirUser naming the other', await t.auth('patient', 'patient/*.rs', { fhirUser: `Patient/${b}` }), `Patient/${b}/$accounting-of-disclosures`],
      ['id in another case', await patientToken(a), `Patient/${a.toUpperCase()}/$accounting-of-disclosures`],
      ['AuditEvent in the own compartment', await patientToken(a, {}, 'patient/*.rs patient/AuditEvent.rs'), `Patient/${a}/AuditEvent`],
      ['AuditEvent search on the own record', await patientToken(a), `AuditEvent?patient=Patient/${a}`],
      ['a physician whose fhirUser is the patient', await t.auth('physician', 'user/*.rs', { fhirUser: `Patient/${b}` }), `Patient/${b}/$accounting-of-disclosures`],
    ];
    for (const [what, headers, url] of tries) {
      const r = await call(`${t.base}/${url}`, { headers });
      assert.equal(r.status, 403, `${what}: ${r.status} ${r.text}`);
    }
    const encoded = await call(`${t.base}/Patient/${a}%2F..%2F${b}/$accounting-of-disclosures`, { headers: await patientToken(a) });
    assert.equal(encoded.status, 400, encoded.text);
    const batch = await call(t.base, { method: 'POST', headers: await patientToken(a), json: { resourceType: 'Bundle', type: 'batch', entry: [
      { request: { method: 'GET', url: `Patient/${b}/$accounting-of-disclosures` } },
    ] } });
    assert.match(batch.body.entry[0].response.status, /^403/);
    assert.equal((await accounting(a, await patientToken(a))).status, 200, 'their own, though');
  });

  test('sound: store searches reach no AuditEvent (_type, _revinclude, _has, compartments, $everything, _history)', async () => {
    const a = await newPatient('Probestore');
    await observation(a, 'probe-store');
    await settle();
    const pat = await patientToken(a);
    for (const [headers, url] of [
      [pat, '?_type=AuditEvent'], [pat, `Patient/${a}/$everything`], [pat, `Patient/${a}/*`],
      [pat, `Patient?_id=${a}&_revinclude=AuditEvent:patient`], [pat, `Patient?_id=${a}&_revinclude=AuditEvent:entity`],
      [system, '?_type=AuditEvent'], [system, '_history?_count=1000'], [system, `Patient?_id=${a}&_revinclude=AuditEvent:patient`],
    ] as const) {
      const r = await call(`${t.base}/${url}`, { headers });
      assert.ok(r.status === 200 || r.status === 403, `${url}: ${r.text}`);
      assert.doesNotMatch(r.text, /"resourceType":"AuditEvent"/, url);
    }
    const has = await call(`${t.base}/Patient?_has:AuditEvent:patient:outcome=0&_id=${a}`, { headers: pat });
    assert.equal(entries(has).length, 0, '_has finds nothing to test against');
  });

  test('sound: AuditEvent cannot be put into the store (transaction, type-mismatched body, conditional create)', async () => {
    const event = { resourceType: 'AuditEvent', type: { code: 'rest' }, recorded: new Date().toISOString(), agent: [{ requestor: true }], source: { observer: { display: 'x' } } };
    const tx = await call(t.base, { method: 'POST', headers: system, json: { resourceType: 'Bundle', type: 'transaction', entry: [
      { resource: event, request: { method: 'POST', url: 'AuditEvent', ifNoneExist: 'outcome=0' } },
    ] } });
    assert.ok(tx.status === 403 || tx.status === 405, tx.text);
    for (const [method, url] of [['POST', 'Basic'], ['PUT', 'Basic/x1'], ['PUT', 'AuditEvent?outcome=0']] as const) {
      const r = await call(`${t.base}/${url}`, { method, headers: system, json: { ...event, id: 'x1' } });
      assert.ok(r.status === 400 || r.status === 405, `${method} ${url}: ${r.status}`);
    }
    assert.doesNotMatch((await call(`${t.base}/?_type=AuditEvent`, { headers: system })).text, /"resourceType":"AuditEvent"/);
  });

  test('sound: ids and agents with "|" or "Patient/" in them do not reach the patient index', async () => {
    const victim = await newPatient('Probeinject');
    await settle();
    const before = entries(await call(`${t.base}/AuditEvent?patient=Patient/${victim}&_count=100`, { headers: auditor })).length;
    const org = await post({ resourceType: 'Organization', name: 'Probeinject' });
    for (const claims of [{ fhirUser: `Patient/${victim}`, client_id: `x|p|${victim}` }, { fhirUser: `p|${victim}`, client_id: `p|${victim}` }]) {
      const headers = await t.auth('physician', 'user/*.rs', claims);
      assert.equal((await call(`${t.base}/Organization/${org}`, { headers })).status, 200);
    }
    await settle();
    const after = entries(await call(`${t.base}/AuditEvent?patient=Patient/${victim}&_count=100`, { headers: auditor }));
    assert.equal(after.length, before, JSON.stringify(after.map((e: any) => e.agent)));
    assert.equal(entries(await call(`${t.base}/AuditEvent?entity=Patient/${victim}&agent-role=physician`, { headers: auditor })).length, 0);
  });

  test('sound: a signature moved onto other targets, or another time, does not verify', async () => {
    const a = await newPatient('Probesigmove');
    const b = await newPatient('Probesigmoveb');
    const [pa] = entries(await call(`${t.base}/Provenance?target=Patient/${a}`, { headers: system }));
    const moved = await post({ ...pa, id: undefined, meta: undefined, target: [{ reference: `Patient/${b}/_history/1` }] });
    const retimed = await post({ ...pa, id: undefined, meta: undefined, recorded: '2020-01-01T00:00:00.000Z' });
    for (const id of [moved, retimed]) {
      const v = await call(`${t.base}/Provenance/${id}/$verify-signature`, { headers: system });
      assert.equal(v.body.parameter[0].valueBoolean, false, v.text);
    }
  });

  test('sound: _count is capped, and records just appended (not indexed yet) merge in order with indexed ones across pages', async () => {
    const capped = await call(`${t.base}/AuditEvent?_count=100000&agent-role=system`, { headers: auditor });
    assert.equal(capped.status, 200);
    assert.ok(entries(capped).length <= 1000);
    assert.match(capped.body.link[0].url, /_count=1000/);

    const p = await newPatient('Probemerge');
    for (let i = 0; i < 2; i++) await call(`${t.base}/Patient/${p}`, { headers: system });
    await sleep(700); // the worker indexes once appends pause for 250 ms
    for (let i = 0; i < 2; i++) await call(`${t.base}/Patient/${p}`, { headers: system });
    await sleep(60);
    const seen: string[] = [];
    let url: string | undefined = `${t.base}/AuditEvent?patient=Patient/${p}&_count=1`;
    while (url) {
      const page = await call(url, { headers: auditor });
      assert.equal(page.status, 200, page.text);
      seen.push(...entries(page).map((e: any) => e.id));
      url = page.body.link.find((l: { relation: string }) => l.relation === 'next')?.url;
    }
    assert.equal(seen.length, 5, 'created, read four times');
    assert.deepEqual(seen, [...seen].sort((x, y) => Number(y) - Number(x)), 'newest first, no repeats');
    const ascending = entries(await call(`${t.base}/AuditEvent?patient=Patient/${p}&_sort=date`, { headers: auditor })).map((e: any) => e.id);
    assert.deepEqual(ascending, [...seen].reverse());
  });

  test('sound: date prefixes (eq, ne, sa, eb, gt, le) on day precision', async () => {
    const p = await newPatient('Probedates');
    await settle();
    const day = new Date().toISOString().slice(0, 10);
    const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    const n = async (date: string) => entries(await call(`${t.base}/AuditEvent?patient=Patient/${p}&date=${date}`, { headers: auditor })).length;
    assert.equal(await n(`eq${day}`), 1);
    assert.equal(await n(`ne${day}`), 0);
    assert.equal(await n(`sa${yesterday}`), 1);
    assert.equal(await n(`eb${tomorrow}`), 1);
    assert.equal(await n(`gt${day}`), 0);
    assert.equal(await n(`le${day}`), 1);
    assert.equal(await n(`lt${day}`), 0);
  });

  // ---- findings ----

  test('F1: a patient\'s accounting shows no other patient, record or query', async () => {
    const a = await newPatient('Probeacca');
    const b = await newPatient('Probeaccb');
    const obsB = await observation(b, 'probe-hiv-viral-load');
    await observation(a, 'probe-hiv-viral-load');
    const found = await call(`${t.base}/Observation?code:text=probe-hiv-viral-load`, { headers: system });
    assert.equal(entries(found).length, 2);
    await settle();
    const r = await accounting(a, await patientToken(a));
    assert.equal(r.status, 200, r.text);
    assert.ok(!r.text.includes(b), `Patient/${b} is named in Patient/${a}'s accounting`);
    assert.ok(!r.text.includes(obsB), 'the other patient\'s Observation id is listed');
    assert.ok(!r.text.includes(Buffer.from('code:text=probe-hiv-viral-load').toString('base64')), 'the search (with clinical terms) is disclosed');
  });

  test('F2: a server-made Provenance cannot be rewritten, and a rewritten copy does not verify', async () => {
    const a = await newPatient('Probeprov');
    const [prov] = entries(await call(`${t.base}/Provenance?target=Patient/${a}`, { headers: system }));
    const framed = [{ type: prov.agent[0].type, who: { reference: 'Practitioner/framed' } }];
    const put = await call(`${t.base}/Provenance/${prov.id}`, { method: 'PUT', headers: system, json: { ...prov, meta: undefined, agent: framed, activity: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-DataOperation', code: 'DELETE' }] } } });
    assert.equal(put.status, 403, 'what the server recorded is not rewritten');
    assert.equal((await call(`${t.base}/Provenance/${prov.id}`, { method: 'DELETE', headers: system })).status, 403, 'nor deleted');
    const lookalike = await call(`${t.base}/Provenance`, { method: 'POST', headers: system, json: { ...prov, id: undefined } });
    assert.equal(lookalike.status, 403, 'nor imitated with its tag');
    const copy = await call(`${t.base}/Provenance`, { method: 'POST', headers: system, json: { ...prov, id: undefined, meta: undefined, agent: framed } });
    for (const id of [put.status < 300 ? prov.id : undefined, copy.status < 300 ? copy.body.id : undefined]) {
      if (!id) continue;
      const v = await call(`${t.base}/Provenance/${id}/$verify-signature`, { headers: system });
      assert.equal(v.body.parameter[0].valueBoolean, false, `Provenance/${id} names Practitioner/framed and verifies: ${v.text}`);
    }
  });

  test('F3: a delete (or a patch answered minimally) of a patient\'s record is attributed to the patient', async () => {
    const a = await newPatient('Probedel');
    const o1 = await observation(a, 'probe-del');
    const o2 = await observation(a, 'probe-patch');
    assert.equal((await call(`${t.base}/Observation/${o1}`, { method: 'DELETE', headers: system })).status, 200);
    const patched = await call(`${t.base}/Observation/${o2}`, { method: 'PATCH', headers: { ...system, 'content-type': 'application/json-patch+json', prefer: 'return=minimal' }, body: JSON.stringify([{ op: 'replace', path: '/status', value: 'amended' }]) });
    assert.equal(patched.status, 200);
    await settle();
    assert.equal(entries(await call(`${t.base}/AuditEvent?entity=Observation/${o1}&subtype=delete`, { headers: auditor })).length, 1, 'the delete is on the trail');
    assert.equal(entries(await call(`${t.base}/AuditEvent?patient=Patient/${a}&subtype=delete`, { headers: auditor })).length, 1, 'found by the patient it concerned');
    assert.equal(entries(await call(`${t.base}/AuditEvent?patient=Patient/${a}&subtype=patch`, { headers: auditor })).length, 1, 'the patch too');
  });

  test('F4: content that merely contains "Patient/<id>" puts nothing into that patient\'s accounting', async () => {
    const a = await newPatient('Probetexta');
    const b = await newPatient('Probetextb');
    const writer = await patientToken(a, {}, 'patient/*.cruds');
    await post({ resourceType: 'Observation', status: 'final', code: { text: 'diary' }, subject: { reference: `Patient/${a}` }, note: [{ text: `Patient/${b}` }] }, writer);
    await settle();
    const r = await accounting(b, admin);
    const events = entries(r).slice(1);
    assert.ok(!events.some((e: any) => e.agent[0].who?.reference === `Patient/${a}`), 'patient A\'s own write is listed as a disclosure of B (with A\'s identity and address)');
    assert.ok(!r.text.includes(a), `Patient/${a} is named in Patient/${b}'s accounting`);
  });

  test('F5: a transaction\'s Provenance shows a patient none of the other patients it wrote', async () => {
    const tx = await call(t.base, { method: 'POST', headers: system, json: { resourceType: 'Bundle', type: 'transaction', entry: [
      { fullUrl: 'urn:uuid:a', resource: { resourceType: 'Patient', name: [{ family: 'Probetxa' }] }, request: { method: 'POST', url: 'Patient' } },
      { fullUrl: 'urn:uuid:b', resource: { resourceType: 'Patient', name: [{ family: 'Probetxb' }] }, request: { method: 'POST', url: 'Patient' } },
    ] } });
    assert.equal(tx.status, 200, tx.text);
    const [a, b] = tx.body.entry.map((e: any) => e.response.location.split('/_history')[0].split('/').pop());
    const headers = await patientToken(a);
    for (const url of [`Patient/${a}/Provenance`, `Patient/${a}/$everything`, `Patient?_id=${a}&_revinclude=Provenance:target`]) {
      const r = await call(`${t.base}/${url}`, { headers });
      assert.equal(r.status, 200, r.text);
      assert.ok(!r.text.includes(b), `${url} shows Patient/${b} to Patient/${a}`);
    }
  });

  test('F6: a response naming more than 1000 patients leaves none out of their trail and accounting', async () => {
    const tag = randomUUID().slice(0, 8);
    const group = await post({ resourceType: 'Group', type: 'person', actual: true, member: Array.from({ length: 1001 }, (_, i) => ({ entity: { reference: `Patient/g${tag}-${i}` } })) });
    assert.equal((await call(`${t.base}/Group/${group}`, { headers: system })).status, 200);
    await settle();
    assert.equal(entries(await call(`${t.base}/AuditEvent?patient=Patient/g${tag}-0&subtype=read`, { headers: auditor })).length, 1);
    assert.equal(entries(await call(`${t.base}/AuditEvent?patient=Patient/g${tag}-1000&subtype=read`, { headers: auditor })).length, 1, 'the 1001st member\'s disclosure is not found');
  });

  test('F7: the next link of a POSTed AuditEvent/_search is a GET that works', async () => {
    const first = await call(`${t.base}/AuditEvent/_search`, { method: 'POST', headers: form(auditor), body: '_count=1' });
    assert.equal(first.status, 200, first.text);
    const next = first.body.link.find((l: { relation: string }) => l.relation === 'next').url;
    const page = await call(next, { headers: auditor });
    assert.equal(page.status, 200, `${next}: ${page.text}`);
  });

  test('F8: a patient\'s own accesses are not disclosures when the token has a launch patient but no fhirUser', async () => {
    const a = await newPatient('Probeself');
    const headers = await t.auth('patient', 'patient/*.rs', { patient: a });
    assert.equal((await call(`${t.base}/Patient/${a}`, { headers })).status, 200);
    await settle();
    const events = entries(await accounting(a, headers)).slice(1);
    assert.ok(!events.some((e: any) => e.agent[0].role?.[0]?.text === 'patient'), JSON.stringify(events.map((e: any) => e.agent[0])));
  });

  test('F9: the resource store holds no AuditEvent (those stored before were moved out by migration 8; none can be stored now)', async () => {
    const a = await newPatient('Probelegacy');
    // What an EHR integration could POST to /AuditEvent before this change (system role: */cruds).
    await assert.rejects(t.server.store.transaction(async (tx) => tx.create({
      resourceType: 'AuditEvent', id: `legacy-${a.slice(0, 8)}`, type: { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest' }, recorded: '2024-01-01T00:00:00Z',
      agent: [{ requestor: true, who: { reference: 'Practitioner/psych' }, network: { address: '10.1.2.3', type: '2' } }], source: { observer: { display: 'EHR' } },
      entity: [{ what: { reference: `Patient/${a}` } }, { what: { reference: 'Observation/hiv-1' }, description: 'HIV viral load viewed' }],
    } as never)), /audit trail/);
    const pat = await patientToken(a);
    for (const [headers, url] of [[pat, '?_type=AuditEvent'], [pat, `Patient/${a}/$everything`], [pat, `Patient?_id=${a}&_revinclude=AuditEvent:patient`], [system, '?_type=AuditEvent']] as const) {
      const r = await call(`${t.base}/${url}`, { headers });
      assert.doesNotMatch(r.text, /"resourceType":"AuditEvent"/, `${url}: ${r.text.slice(0, 300)}`);
    }
    const oracle = await call(`${t.base}/Patient?_has:AuditEvent:patient:agent=Practitioner/psych`, { headers: pat });
    assert.equal(entries(oracle).length, 0, '_has answers whether Practitioner/psych looked at the record');
  });

  test('F10: the auditor role verifies Provenance (targets compared by hash, nothing read out)', async () => {
    const a = await newPatient('Probeaudverify');
    const [prov] = entries(await call(`${t.base}/Provenance?target=Patient/${a}`, { headers: auditor }));
    const v = await call(`${t.base}/Provenance/${prov.id}/$verify-signature`, { headers: auditor });
    assert.equal(v.status, 200, v.text);
    assert.equal(v.body.parameter[0].valueBoolean, true, v.text);
  });
});

describe('review probes: a patient\'s accounting under steady traffic', () => {
  const t = useIssuerServer();

  test('F11: a keyed search over a large unindexed tail does not block the event loop for seconds', async () => {
    const system = await t.auth('system');
    const a = (await call(`${t.base}/Patient`, { method: 'POST', headers: system, json: { resourceType: 'Patient', name: [{ family: 'Probedos' }] } })).body.id;
    const rec = (i: number) => {
      const at = new Date().toISOString();
      return { recorded: at, json: JSON.stringify({ at, do: 'read', st: 200, who: `user-${i % 500}`, rl: 'physician', fu: `Practitioner/${i % 500}`, ip: '10.0.0.1', what: [`Observation/o${i}/_history/1`], pt: [`p${i % 10000}`] }) };
    };
    // 150,000 records: about 2 hours of a busy clinic; steady traffic keeps the worker from indexing them.
    for (let i = 0; i < 150_000; i += 10_000) await t.server.store.appendAudit(Array.from({ length: 10_000 }, (_, k) => rec(i + k)));
    let k = 150_000;
    const steady = setInterval(() => void t.server.store.appendAudit([rec(k++)]).catch(() => {}), 50);
    try {
      await sleep(1000);
      const headers = await t.auth('patient', 'patient/*.rs', { patient: a, fhirUser: `Patient/${a}` });
      const started = Date.now();
      const pending = call(`${t.base}/Patient/${a}/$accounting-of-disclosures`, { headers });
      const slept = Date.now();
      await sleep(100);
      const late = Date.now() - slept - 100;
      const r = await pending;
      const took = Date.now() - started;
      assert.equal(r.status, 200);
      // Before the fix it was blocked 1.5 s here; a loaded CI machine alone delays timers a few hundred ms.
      assert.ok(late < 1000, `the event loop was blocked ${late} ms by one patient's accounting (${took} ms, ${r.body.entry.length - 1} records)`);
    } finally {
      clearInterval(steady);
    }
  });
});

describe('review probes: retention and the chain from a purge anchor', () => {
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const dataDir = () => {
    const d = mkdtempSync(join(tmpdir(), 'bastion-probe-'));
    dirs.push(d);
    return d;
  };
  const record = (at: string, n: number) => ({ recorded: at, json: JSON.stringify({ at, do: 'read', st: 200, who: `u${n}`, ip: '127.0.0.1' }) });
  const auditDb = async (dir: string) => openEncrypted(join(dir, 'bastion-audit.db'), await storeKey(dir, 'bastion-audit.db'));
  const purge = async (dir: string, before: string, years: number) => {
    const db = await auditDb(dir);
    try {
      return await purgeAuditTrail(db, { before: new Date(before), years, who: 'console:probe', key: await auditSigningKey(dir), publicKey: await auditSigningKey(dir, 'public') });
    } finally {
      db.close();
    }
  };

  test('sound: a checkpoint signature replayed as a purge is refused', async () => {
    const dir = dataDir();
    const store = await openStore(dir);
    await store.appendAudit(Array.from({ length: 5 }, (_, i) => record(`2015-03-01T00:00:0${i}.000Z`, i)));
    await store.close();
    await purge(dir, '2015-03-01T00:00:02.000Z', 6);
    const db = await auditDb(dir);
    try {
      const c = db.prepare('SELECT count, head, at, jws FROM audit_checkpoint ORDER BY n DESC LIMIT 1').get() as { count: number; head: Buffer; at: string; jws: string };
      db.prepare('INSERT INTO audit_purge (through, head, before, at, jws) VALUES (?, ?, ?, ?, ?)').run(c.count, c.head, c.at, c.at, c.jws);
    } finally {
      db.close();
    }
    const verdict = await verifyAuditFile(dir);
    assert.equal(verdict.ok, false);
  });

  test('F12: purging a trail older than retention in full keeps it verifiable', async () => {
    const dir = dataDir();
    const store = await openStore(dir);
    await store.appendAudit(Array.from({ length: 5 }, (_, i) => record(`2015-03-01T00:00:0${i}.000Z`, i)));
    await store.close();
    // The newest record stays, so the chain goes on from it.
    assert.deepEqual(await purge(dir, '2016-01-01', 6), { removed: 4, through: 4 });
    const verdict = await verifyAuditFile(dir);
    assert.equal(verdict.ok, true, JSON.stringify(verdict));
  });

  test('F13: verification refuses a signed purge of records inside the retention period', async () => {
    const dir = dataDir();
    const store = await openStore(dir);
    await store.appendAudit(Array.from({ length: 5 }, (_, i) => record(new Date(Date.now() - 3_600_000 + i).toISOString(), i)));
    await store.appendAudit(Array.from({ length: 5 }, (_, i) => record(new Date(Date.now() - 60_000 + i).toISOString(), i + 5)));
    await store.close();
    // Whoever holds the audit key (it sits in the data dir) signs a purge of the last hour.
    assert.equal((await purge(dir, new Date(Date.now() - 120_000).toISOString(), 0)).removed, 5);
    const verdict = await verifyAuditFile(dir);
    assert.equal(verdict.ok, false, 'records an hour old were removed and the trail still verifies');
  });
});
