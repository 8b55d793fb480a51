import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { call, patient } from '../rest/server.ts';
import { useIssuerServer, type IssuerServer } from './external-issuer.ts';
import { seeder } from './seeder.ts';

/** The relationship rule: clinicians reach only the records of patients they care for. */
const d1 = { fhirUser: 'Practitioner/d1' };

async function seed(t: IssuerServer): Promise<Record<string, string>> {
  const { ids, create } = await seeder(t);
  await create('gp', patient('Relgp', { generalPractitioner: [{ reference: 'Practitioner/d1' }] }));
  const team = await create('team', patient('Relteam'));
  const enc = await create('enc', patient('Relenc'));
  const oldTeam = await create('oldTeam', patient('Reloldteam'));
  await create('none', patient('Relnone'));
  await create('ct', { resourceType: 'CareTeam', status: 'active', subject: { reference: team }, participant: [{ member: { reference: 'Practitioner/d1' } }] });
  await create('ct2', { resourceType: 'CareTeam', status: 'inactive', subject: { reference: oldTeam }, participant: [{ member: { reference: 'Practitioner/d1' } }] });
  await create('e', { resourceType: 'Encounter', status: 'finished', class: { code: 'AMB' }, subject: { reference: enc }, participant: [{ individual: { reference: 'Practitioner/d1' } }] });
  for (const p of ['gp', 'team', 'enc', 'oldTeam', 'none']) {
    await create(`obs-${p}`, { resourceType: 'Observation', status: 'final', code: { text: 'rel-obs' }, subject: { reference: `Patient/${ids[p]}` } });
  }
  await create('org', { resourceType: 'Organization', name: 'Relclinic' });
  return ids;
}

const names = (r: { body: { entry?: { resource: { name?: { family: string }[] } }[] } }) => (r.body.entry ?? []).map((e) => e.resource.name?.[0]?.family).sort();

describe('relationships (all kinds)', () => {
  const t = useIssuerServer();
  let ids: Record<string, string>;
  before(async () => {
    ids = await seed(t);
  });

  test('a physician finds the patients he cares for: GP, active care team, encounter; not an inactive team or a stranger', async () => {
    const doc = await t.auth('physician', 'user/*.rs', d1);
    assert.deepEqual(names(await call(`${t.base}/Patient?name=rel`, { headers: doc })), ['Relenc', 'Relgp', 'Relteam']);
    const obs = await call(`${t.base}/Observation?code:text=rel-obs&_total=accurate`, { headers: doc });
    assert.equal(obs.body.total, 3);
    assert.deepEqual(obs.body.entry.map((e: { resource: { id: string } }) => e.resource.id).sort(), [ids['obs-gp'], ids['obs-team'], ids['obs-enc']].sort());
    assert.equal((await call(`${t.base}/Patient/${ids.none}`, { headers: doc })).status, 404);
    assert.equal((await call(`${t.base}/Observation/${ids['obs-none']}`, { headers: doc })).status, 404);
    assert.equal((await call(`${t.base}/Patient/${ids.oldTeam}`, { headers: doc })).status, 404);
    assert.equal((await call(`${t.base}/Organization/${ids.org}`, { headers: doc })).status, 200, 'what is in no patient\'s compartment stays reachable');
  });

  test('a relationship that ends closes the record at once (what reads remember is forgotten on commit)', async () => {
    const doc = await t.auth('physician', 'user/*.rs', d1);
    const system = await t.auth('system');
    const patientId = (await call(`${t.base}/Patient`, { method: 'POST', headers: system, json: patient('Endingrel') })).body.id;
    const team = await call(`${t.base}/CareTeam`, { method: 'POST', headers: system, json: { resourceType: 'CareTeam', status: 'active', subject: { reference: `Patient/${patientId}` }, participant: [{ member: { reference: 'Practitioner/d1' } }] } });
    assert.equal(team.status, 201);
    assert.equal((await call(`${t.base}/Patient/${patientId}`, { headers: doc })).status, 200);
    assert.deepEqual(names(await call(`${t.base}/Patient?name=endingrel`, { headers: doc })), ['Endingrel']);
    const ended = await call(`${t.base}/CareTeam/${team.body.id}`, { method: 'PUT', headers: system, json: { ...team.body, status: 'inactive' } });
    assert.equal(ended.status, 200);
    assert.equal((await call(`${t.base}/Patient/${patientId}`, { headers: doc })).status, 404);
    assert.deepEqual(names(await call(`${t.base}/Patient?name=endingrel`, { headers: doc })), []);
  });

  test('the audit record says why: the rules that hid a record, the reasons of a denial', async () => {
    const doc = await t.auth('physician', 'user/*.rs', d1);
    assert.equal((await call(`${t.base}/Observation/${ids['obs-none']}`, { headers: doc })).status, 404);
    const billing = await t.auth('billing', 'user/*.rs', d1);
    assert.equal((await call(`${t.base}/Observation/${ids['obs-gp']}`, { headers: billing })).status, 403);
    await t.server.app.audit.flush();
    const records = (await t.server.store.auditRecords({ afterSeq: 0, limit: 100_000 })).map((r) => JSON.parse(r.json) as { do?: string; st?: number; what?: string[]; rs?: string[] });
    const hidden = records.filter((f) => f.do === 'read' && f.st === 404 && f.what?.[0] === `Observation/${ids['obs-none']}`).at(-1);
    assert.ok(hidden?.rs?.includes('relationship'), JSON.stringify(hidden));
    const denied = records.filter((f) => f.do === 'read' && f.st === 403 && f.what?.[0] === `Observation/${ids['obs-gp']}`).at(-1);
    assert.ok(denied?.rs?.some((r) => /role billing may not r Observation/.test(r)), JSON.stringify(denied));
  });

  test('history shows only the versions that pass the rules themselves', async () => {
    const system = await t.auth('system');
    const doc = await t.auth('physician', 'user/*.rs', d1);
    const first = await call(`${t.base}/Observation`, { method: 'POST', headers: system, json: { resourceType: 'Observation', status: 'preliminary', code: { text: 'refiled' }, subject: { reference: `Patient/${ids.none}` } } });
    const moved = await call(`${t.base}/Observation/${first.body.id}`, { method: 'PUT', headers: system, json: { ...first.body, status: 'final', subject: { reference: `Patient/${ids.gp}` } } });
    assert.equal(moved.status, 200);
    const h = await call(`${t.base}/Observation/${first.body.id}/_history`, { headers: doc });
    assert.equal(h.status, 200, h.text);
    assert.equal(h.body.total, 1);
    assert.deepEqual(h.body.entry.map((e: { resource: { meta: { versionId: string } } }) => e.resource.meta.versionId), ['2']);
    assert.equal((await call(`${t.base}/Observation/${first.body.id}/_history/1`, { headers: doc })).status, 404, 'the version filed for an unrelated patient');
    assert.equal((await call(`${t.base}/Observation/${first.body.id}/_history/2`, { headers: doc })).status, 200);
    const hidden = await call(`${t.base}/Observation/${ids['obs-none']}/_history`, { headers: doc });
    assert.equal(hidden.body.total, 0, 'a resource it cannot see has no history for it, as one that does not exist');
    assert.equal((await call(`${t.base}/Observation/_history`, { headers: doc })).status, 403, 'type history is refused');
  });

  test('without a practitioner identity, no patient; writes only for related patients', async () => {
    const anonymousDoc = await t.auth('physician', 'user/*.rs');
    assert.deepEqual(names(await call(`${t.base}/Patient?name=rel`, { headers: anonymousDoc })), []);
    const nurse = await t.auth('nurse', 'user/*.cruds', d1);
    const obs = (p: string) => ({ resourceType: 'Observation', status: 'final', code: { text: 'nurse-note' }, subject: { reference: `Patient/${ids[p]}` } });
    assert.equal((await call(`${t.base}/Observation`, { method: 'POST', headers: nurse, json: obs('gp') })).status, 201);
    assert.equal((await call(`${t.base}/Observation`, { method: 'POST', headers: nurse, json: obs('none') })).status, 403);
  });

  test('break-the-glass opens one unrelated patient\'s record, with a reason, for a time, recorded', async () => {
    const doc = await t.auth('physician', 'user/*.rs', { ...d1, sub: 'btg-doc' });
    assert.equal((await call(`${t.base}/Patient/${ids.none}`, { headers: doc })).status, 404);
    const short = await call(`${t.base}/Patient/${ids.none}`, { headers: { ...doc, 'x-break-glass-patient': ids.none, 'x-break-glass-reason': 'urgent' } });
    assert.equal(short.status, 403, 'a reason of a few letters is not one');
    const billing = await t.auth('billing', 'user/*.rs', d1);
    assert.equal((await call(`${t.base}/Patient/${ids.none}`, { headers: { ...billing, 'x-break-glass-patient': ids.none, 'x-break-glass-reason': 'patient unconscious in the ED' } })).status, 403, 'only clinicians');
    const opened = await call(`${t.base}/Patient/${ids.none}`, { headers: { ...doc, 'x-break-glass-patient': ids.none, 'x-break-glass-reason': 'patient unconscious in the ED, no GP reachable' } });
    assert.equal(opened.status, 200);
    const later = await call(`${t.base}/Observation?subject=Patient/${ids.none}`, { headers: doc });
    assert.equal(later.body.entry.length, 1, 'the access lasts beyond the request that asked for it');
    assert.equal((await call(`${t.base}/Patient/${ids.oldTeam}`, { headers: doc })).status, 404, 'one patient only');
    await t.server.app.audit.flush();
    const records = await t.server.store.auditRecords({ afterSeq: 0, limit: 100_000 });
    const btg = records.map((r) => JSON.parse(r.json) as { ev?: string; why?: string }).filter((f) => f.ev === 'break-glass');
    assert.equal(btg.length, 1);
    assert.match(btg[0].why ?? '', /severity=high.*reason=patient unconscious/);
  });

  test('patients and backend services are not subject to it', async () => {
    const sys = await t.auth('system');
    assert.equal(names(await call(`${t.base}/Patient?name=rel`, { headers: sys })).length, 5);
  });
});

describe('relationships (care teams only)', () => {
  const t = useIssuerServer({ BASTION_RELATIONSHIPS: 'care-team' });
  before(async () => {
    await seed(t);
  });

  test('a deployment can switch kinds off', async () => {
    const doc = await t.auth('physician', 'user/*.rs', d1);
    assert.deepEqual(names(await call(`${t.base}/Patient?name=rel`, { headers: doc })), ['Relteam']);
  });
});

describe('break-the-glass registry', () => {
  test('access lapses when its time is up', async () => {
    const { BreakGlassRegistry } = await import('../../src/auth/break-glass-registry.ts');
    const stored: Record<string, unknown>[] = [];
    const store = { oauthUpsert: async (_m: string, _k: string, p: Record<string, unknown>) => { stored.push(p); }, oauthList: async () => [] };
    const registry = new BreakGlassRegistry(store as never, 1);
    await registry.grant('u1', 'p1', 'a reason long enough');
    assert.deepEqual(registry.patientsOf('u1'), ['p1']);
    assert.equal(registry.patientsOf('u2'), undefined);
    await new Promise((r) => setTimeout(r, 1100));
    assert.equal(registry.patientsOf('u1'), undefined);
    assert.equal(stored.length, 1);
  });
});
