import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { call, patient } from '../rest/server.ts';
import { useIssuerServer, type IssuerServer } from '../auth/external-issuer.ts';
import { seeder } from '../auth/seeder.ts';

/**
 * The Consent rule against a live server: active patient-privacy Consents withhold records by
 * actor, class, label and period; searches, counts and includes obey; the patient and
 * break-the-glass are not subject to them; the audit records each check.
 */
const d1 = 'Practitioner/cons-d1';
const d2 = 'Practitioner/cons-d2';
const scope = { system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' };
const resourceTypes = 'http://hl7.org/fhir/resource-types';
const psy = { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'PSY' };

const actor = (reference: string) => ({ role: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'PRCP' }] }, reference: { reference } });

function consent(p: string, provision: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    resourceType: 'Consent', status: 'active', scope: { coding: [scope] },
    category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
    patient: { reference: `Patient/${p}` }, policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTIN' }] },
    provision, ...extra,
  };
}

async function seed(t: IssuerServer): Promise<Record<string, string>> {
  const { ids, create: createRef } = await seeder(t);
  const create = async (name: string, body: Record<string, unknown>) => (await createRef(name, body)).split('/')[1];
  // Both physicians are every patient's GPs: only consents make a difference.
  for (const p of ['free', 'actor', 'cls', 'label', 'only', 'past', 'inactive', 'optout']) {
    const id = await create(p, patient(`Cons${p}`, { generalPractitioner: [{ reference: d1 }, { reference: d2 }] }));
    await create(`obs-${p}`, { resourceType: 'Observation', status: 'final', code: { text: 'cons-obs' }, subject: { reference: `Patient/${id}` } });
    await create(`psy-${p}`, { resourceType: 'Observation', status: 'final', meta: { security: [psy] }, code: { text: 'cons-psy' }, subject: { reference: `Patient/${id}` } });
  }
  await create('c-actor', consent(ids.actor, { type: 'permit', provision: [{ type: 'deny', actor: [actor(d1)] }] }));
  await create('c-cls', consent(ids.cls, { type: 'permit', provision: [{ type: 'deny', class: [{ system: resourceTypes, code: 'Observation' }] }] }));
  await create('c-label', consent(ids.label, { type: 'permit', provision: [{ type: 'deny', securityLabel: [psy] }] }));
  await create('c-only', consent(ids.only, { type: 'deny', provision: [{ type: 'permit', actor: [actor(d2)] }] }));
  await create('c-past', consent(ids.past, { type: 'permit', provision: [{ type: 'deny', period: { start: '2001-01-01', end: '2002-01-01' } }] }));
  await create('c-inactive', consent(ids.inactive, { type: 'deny' }, { status: 'inactive' }));
  await create('c-optout', { ...consent(ids.optout, { actor: [actor(d1)] }), policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTOUT' }] } });
  return ids;
}

describe('consent', () => {
  const t = useIssuerServer();
  let ids: Record<string, string>;
  let doc1: Record<string, string>;
  let doc2: Record<string, string>;
  before(async () => {
    ids = await seed(t);
    doc1 = await t.auth('physician', 'user/*.cruds', { fhirUser: d1 });
    doc2 = await t.auth('physician', 'user/*.cruds', { fhirUser: d2 });
  });
  const status = async (path: string, headers: Record<string, string>) => (await call(`${t.base}/${path}`, { headers })).status;
  const seen = async (query: string, headers: Record<string, string>) => {
    const r = await call(`${t.base}/${query}${query.includes('?') ? '&' : '?'}_total=accurate&_count=100`, { headers });
    assert.equal(r.status, 200, r.text);
    const found = (r.body.entry ?? []).filter((e: { search: { mode: string } }) => e.search.mode === 'match').map((e: { resource: { id: string } }) => e.resource.id);
    assert.equal(r.body.total, found.length, 'the total counts what may be seen');
    return found as string[];
  };

  test('a consent denying an actor withholds the whole record from that actor only', async () => {
    assert.equal(await status(`Patient/${ids.actor}`, doc1), 404);
    assert.equal(await status(`Observation/${ids['obs-actor']}`, doc1), 404);
    assert.deepEqual(await seen(`Observation?subject=Patient/${ids.actor}`, doc1), []);
    assert.equal(await status(`Patient/${ids.actor}`, doc2), 200);
    assert.deepEqual((await seen(`Observation?subject=Patient/${ids.actor}`, doc2)).sort(), [ids['obs-actor'], ids['psy-actor']].sort());
  });

  test('a consent denying a class withholds that type, not the rest of the record', async () => {
    assert.equal(await status(`Patient/${ids.cls}`, doc1), 200);
    assert.equal(await status(`Observation/${ids['obs-cls']}`, doc1), 404);
    assert.deepEqual(await seen(`Observation?subject=Patient/${ids.cls}`, doc2), []);
    const withObs = await call(`${t.base}/Patient?_id=${ids.cls}&_revinclude=Observation:subject`, { headers: doc1 });
    assert.deepEqual(withObs.body.entry.map((e: { resource: { resourceType: string } }) => e.resource.resourceType), ['Patient'], 'nor through _revinclude');
    const has = await call(`${t.base}/Patient?_has:Observation:subject:code:text=cons-obs&_id=${ids.cls}`, { headers: doc1 });
    assert.equal(has.body.entry?.length ?? 0, 0, 'nor through _has');
  });

  test('a consent denying a security label withholds what carries it, though the role is cleared for it', async () => {
    assert.equal(await status(`Observation/${ids['obs-label']}`, doc1), 200);
    assert.equal(await status(`Observation/${ids['psy-label']}`, doc1), 404);
    assert.equal(await status(`Observation/${ids['psy-free']}`, doc1), 200, 'the same label without such a consent');
    assert.deepEqual(await seen(`Observation?subject=Patient/${ids.label}`, doc1), [ids['obs-label']]);
  });

  test('a consent that denies all but one actor', async () => {
    assert.equal(await status(`Patient/${ids.only}`, doc1), 404);
    assert.deepEqual(await seen(`Observation?subject=Patient/${ids.only}`, doc1), []);
    assert.equal(await status(`Patient/${ids.only}`, doc2), 200);
    assert.equal((await seen(`Observation?subject=Patient/${ids.only}`, doc2)).length, 2);
  });

  test('an opt-out consent naming an actor withholds the record from that actor', async () => {
    assert.equal(await status(`Patient/${ids.optout}`, doc1), 404);
    assert.equal(await status(`Patient/${ids.optout}`, doc2), 200);
  });

  test('a provision whose period has passed, and an inactive consent, withhold nothing', async () => {
    assert.equal(await status(`Observation/${ids['obs-past']}`, doc1), 200);
    assert.equal(await status(`Patient/${ids.inactive}`, doc1), 200);
  });

  test('counts over every patient leave out what consents withhold', async () => {
    const all = await seen('Observation?code:text=cons-obs', doc1);
    // Withheld from d1: actor (whole record), cls (Observations), only (all but d2).
    const expected = ['free', 'label', 'past', 'inactive'].map((p) => ids[`obs-${p}`]).sort();
    assert.deepEqual(all.sort(), expected);
  });

  test('the patient\'s own access is not subject to their consent', async () => {
    const self = await t.auth('patient', 'patient/*.rs', { patient: ids.only, fhirUser: `Patient/${ids.only}` });
    assert.equal(await status(`Patient/${ids.only}`, self), 200);
    assert.equal((await seen('Observation', self)).length, 2);
  });

  test('a consent takes effect as soon as it is written, and stops when it is revoked', async () => {
    const system = await t.auth('system');
    assert.equal(await status(`Patient/${ids.free}`, doc1), 200);
    const made = await call(`${t.base}/Consent`, { method: 'POST', headers: system, json: consent(ids.free, { type: 'deny' }) });
    assert.equal(made.status, 201);
    assert.equal(await status(`Patient/${ids.free}`, doc1), 404);
    assert.deepEqual(await seen(`Observation?subject=Patient/${ids.free}`, doc1), []);
    const revoked = await call(`${t.base}/Consent/${made.body.id}`, { method: 'PUT', headers: system, json: { ...made.body, status: 'inactive' } });
    assert.equal(revoked.status, 200);
    assert.equal(await status(`Patient/${ids.free}`, doc1), 200);
  });

  test('each check and its result are in the audit trail', async () => {
    assert.equal(await status(`Patient/${ids.actor}`, doc1), 404);
    await t.server.app.audit.flush();
    const records = await t.server.store.auditRecords({ afterSeq: 0, limit: 100_000 });
    const last = records.map((r) => JSON.parse(r.json) as { do?: string; st?: number; cs?: string[]; who?: string }).filter((f) => f.do === 'read' && f.st === 404).at(-1);
    assert.ok(last?.cs?.includes(`Consent/${ids['c-actor']} deny`), JSON.stringify(last));
    assert.ok(last?.cs?.includes(`Consent/${ids['c-cls']} deny`), 'the class consent withholds part of a record from this physician');
    assert.ok(last?.cs?.some((c) => c === `Consent/${ids['c-past']} permit`), 'a consent that withholds nothing is recorded as permitting');
  });

  test('a privacy consent that could not be enforced is refused when written', async () => {
    const system = await t.auth('system');
    const byIdentifier = { ...consent(ids.free, { type: 'deny' }), patient: { identifier: { system: 'urn:mrn', value: 'MRN-1' } } };
    const r = await call(`${t.base}/Consent`, { method: 'POST', headers: system, json: byIdentifier });
    assert.equal(r.status, 422, r.text);
    assert.match(r.body.issue[0].diagnostics, /reference its patient/);
  });

  test('break-the-glass overrides a consent', async () => {
    const headers = { ...doc1, 'x-break-glass-patient': ids.actor, 'x-break-glass-reason': 'patient unconscious in the ED, consent overridden' };
    assert.equal(await status(`Patient/${ids.actor}`, headers), 200);
  });
});
