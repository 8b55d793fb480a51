import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { call, patient } from '../rest/server.ts';
import { useIssuerServer } from './external-issuer.ts';
import { configureMasks } from '../../src/access/minimum-necessary.ts';

/** Minimum necessary: per-role masks on what leaves, SUBSETTED tag, and writes that keep what the role cannot see. */
const t = useIssuerServer();
const clinician = { fhirUser: 'Practitioner/m1' };
let id = '';
const subsetted = (r: { meta?: { tag?: { code: string }[] } }) => (r.meta?.tag ?? []).some((x) => x.code === 'SUBSETTED');

describe('minimum necessary', () => {
  before(async () => {
    const r = await call(`${t.base}/Patient`, { method: 'POST', headers: await t.auth('system'), json: patient('Maskpat', {
      generalPractitioner: [{ reference: 'Practitioner/m1' }], telecom: [{ system: 'phone', value: '555-0100' }], address: [{ city: 'Springfield' }],
    }) });
    id = r.body.id;
  });
  after(() => configureMasks({
    'lab-technician': ['Patient.address', 'Patient.telecom', 'Patient.contact', 'Patient.photo', 'Patient.maritalStatus', 'Patient.communication'],
    billing: ['Patient.photo'],
  }));

  test('a lab technician sees limited demographics, tagged SUBSETTED, in reads and searches', async () => {
    const lab = await t.auth('lab-technician', 'user/*.rs', clinician);
    const read = await call(`${t.base}/Patient/${id}`, { headers: lab });
    assert.equal(read.status, 200);
    assert.equal(read.body.telecom, undefined);
    assert.equal(read.body.address, undefined);
    assert.equal(read.body.name[0].family, 'Maskpat');
    assert.ok(subsetted(read.body));
    const search = await call(`${t.base}/Patient?name=maskpat`, { headers: lab });
    assert.equal(search.body.entry[0].resource.telecom, undefined);
    assert.ok(subsetted(search.body.entry[0].resource));
    const doc = await call(`${t.base}/Patient/${id}`, { headers: await t.auth('physician', 'user/*.rs', clinician) });
    assert.equal(doc.body.telecom[0].value, '555-0100');
    assert.ok(!subsetted(doc.body));
  });

  test('an update by a masked role keeps the elements it cannot see', async () => {
    configureMasks({ nurse: ['Patient.telecom'] });
    const nurse = await t.auth('nurse', 'user/*.cruds', clinician);
    const seen = (await call(`${t.base}/Patient/${id}`, { headers: nurse })).body;
    assert.equal(seen.telecom, undefined);
    const put = await call(`${t.base}/Patient/${id}`, { method: 'PUT', headers: nurse, json: { ...seen, active: false } });
    assert.equal(put.status, 200, put.text);
    const stored = (await call(`${t.base}/Patient/${id}`, { headers: await t.auth('system') })).body;
    assert.equal(stored.telecom[0].value, '555-0100', 'the phone number survived an update that could not see it');
    assert.equal(stored.active, false);
    assert.ok(!subsetted(stored), 'the SUBSETTED tag is not stored');
  });
});
