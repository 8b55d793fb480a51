import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { call } from '../rest/server.ts';
import { useIssuerServer } from './external-issuer.ts';

/** Security labels: what lies above a role's clearance is left out in the query, counts included. */
const t = useIssuerServer();
const ids: Record<string, string> = {};
const clinician = { fhirUser: 'Practitioner/p1' };
const conf = (code: string) => ({ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code });
const sens = (code: string) => ({ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code });
const found = (r: { body: { entry?: { resource: { id: string } }[] } }) => (r.body.entry ?? []).map((e) => e.resource.id).sort();

describe('security labels and clearance', () => {
  before(async () => {
    const seed = await t.auth('system');
    // Everything is about a patient whose GP the clinicians below are (the relationship rule).
    const pat = await call(`${t.base}/Patient`, { method: 'POST', headers: seed, json: { resourceType: 'Patient', generalPractitioner: [{ reference: 'Practitioner/p1' }] } });
    const create = async (name: string, security: { system: string; code: string }[], extra: Record<string, unknown> = {}) => {
      const r = await call(`${t.base}/Observation`, { method: 'POST', headers: seed, json: {
        resourceType: 'Observation', status: 'final', code: { text: `labels-${name}` }, subject: { reference: `Patient/${pat.body.id}` }, ...(security.length ? { meta: { security } } : {}), ...extra,
      } });
      assert.equal(r.status, 201, r.text);
      ids[name] = r.body.id;
    };
    await create('normal', []);
    await create('restricted', [conf('R')]);
    await create('very', [conf('V')]);
    await create('psy', [conf('N'), sens('PSY')]);
    await create('hiv', [conf('R'), sens('HIV')]);
    await create('pointsAtVery', [], { hasMember: [{ reference: 'Observation/' + ids.very }] });
  });
  const all = () => ['normal', 'restricted', 'very', 'psy', 'hiv', 'pointsAtVery'].map((n) => ids[n]).sort();
  const only = (...names: string[]) => names.map((n) => ids[n]).sort();

  test('search leaves out what is above the clearance, and the total agrees', async () => {
    const q = `${t.base}/Observation?code:text=labels&_total=accurate&_count=50`;
    const system = await call(q, { headers: await t.auth('system') });
    assert.deepEqual(found(system), all());
    const nurse = await call(q, { headers: await t.auth('nurse', undefined, clinician) });
    assert.deepEqual(found(nurse), only('normal', 'restricted', 'hiv', 'pointsAtVery'), 'nurse: up to R, HIV but not PSY, never V');
    assert.equal(nurse.body.total, 4);
    const lab = await call(q, { headers: await t.auth('lab-technician', undefined, clinician) });
    assert.deepEqual(found(lab), only('normal', 'pointsAtVery'), 'lab technician: normal only (HIV is there, but R)');
    assert.equal(lab.body.total, 2);
    const physician = await call(`${t.base}/Observation?code:text=labels&_summary=count`, { headers: await t.auth('physician', undefined, clinician) });
    assert.equal(physician.body.total, 5, 'physician: all but V');
  });

  test('reads above the clearance answer 404; includes and chains do not reach them', async () => {
    const lab = await t.auth('lab-technician', undefined, clinician);
    assert.equal((await call(`${t.base}/Observation/${ids.restricted}`, { headers: lab })).status, 404);
    assert.equal((await call(`${t.base}/Observation/${ids.normal}`, { headers: lab })).status, 200);
    const nurse = await t.auth('nurse', undefined, clinician);
    assert.equal((await call(`${t.base}/Observation/${ids.very}`, { headers: nurse })).status, 404);
    const withMember = await call(`${t.base}/Observation?_id=${ids.pointsAtVery}&_include=Observation:has-member`, { headers: nurse });
    assert.deepEqual(found(withMember), [ids.pointsAtVery], 'the V member is not included');
    const chained = await call(`${t.base}/Observation?has-member:Observation.code:text=labels-very`, { headers: nurse });
    assert.deepEqual(found(chained), [], 'a chain cannot test a V resource');
    const system = await call(`${t.base}/Observation?has-member:Observation.code:text=labels-very`, { headers: await t.auth('system') });
    assert.deepEqual(found(system), [ids.pointsAtVery]);
  });

  test('nothing above the clearance can be changed or deleted', async () => {
    const nurse = await t.auth('nurse', undefined, clinician);
    const seed = await t.auth('system');
    const very = (await call(`${t.base}/Observation/${ids.very}`, { headers: seed })).body;
    assert.equal((await call(`${t.base}/Observation/${ids.very}`, { method: 'PUT', headers: nurse, json: { ...very, status: 'amended' } })).status, 403);
    assert.equal((await call(`${t.base}/Observation/${ids.very}`, { method: 'DELETE', headers: nurse })).status, 403);
    assert.equal((await call(`${t.base}/Observation/${ids.very}`, { headers: seed })).body.status, 'final');
  });
});
