import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { useServer, call } from './server.ts';
import { syntheaNdjson } from '../shared-data.ts';
import { openEncrypted } from '../../src/store/sqlite/open.ts';
import { storeKey } from '../store-key.ts';

// What a stolen disk shows: the Synthea patients imported through the API, then the raw files searched.
const t = useServer({ BASTION_ENCRYPT_RESOURCE_BODIES: 'true' });

interface SyntheaPatient {
  resourceType: 'Patient';
  id: string;
  name: { family: string; given: string[] }[];
  identifier: { system?: string; value: string; type?: { coding: { code: string }[] } }[];
}
const patients = readFileSync(join(syntheaNdjson, 'Patient.000.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as SyntheaPatient);
const ssnOf = (p: SyntheaPatient) => p.identifier.find((i) => i.system === 'http://hl7.org/fhir/sid/us-ssn')!.value;
const mrnOf = (p: SyntheaPatient) => p.identifier.find((i) => i.type?.coding.some((c) => c.code === 'MR'))!.value;

test('imported patients: no name, SSN or MRN in any file of the data dir; SSN search works and is audited blind', async () => {
  for (const p of patients) assert.equal((await call(`${t.base}/Patient/${p.id}`, { method: 'PUT', json: p })).status, 201);
  const target = patients[5];
  const found = await call(`${t.base}/Patient?identifier=${encodeURIComponent(`http://hl7.org/fhir/sid/us-ssn|${ssnOf(target)}`)}`);
  assert.equal(found.status, 200);
  assert.deepEqual(found.body.entry.map((e: { resource: { id: string } }) => e.resource.id), [target.id]);
  assert.deepEqual(found.body.entry[0].resource.identifier, target.identifier, 'served as written');
  const byValue = await call(`${t.base}/Patient?identifier=${ssnOf(target)}`);
  assert.equal(byValue.body.entry.length, 1);

  // Every file, raw: the store, its WAL, the audit trail, the auth file, keys.
  const needles = patients.flatMap((p) => [p.name[0].family, p.name[0].given[0], ssnOf(p), mrnOf(p)]);
  await t.server.app.audit.flush();
  for (const file of readdirSync(t.dataDir)) {
    const bytes = readFileSync(join(t.dataDir, file));
    for (const needle of needles) assert.equal(bytes.includes(needle), false, `${file} holds "${needle}"`);
  }

  // Decrypted with the file key: the search was audited with the SSN blinded.
  const db = openEncrypted(join(t.dataDir, 'bastion-audit.db'), await storeKey(t.dataDir, 'bastion-audit.db'), { readonly: true });
  const trail = (db.prepare('SELECT event FROM audit_log').pluck().all() as string[]).join('\n');
  db.close();
  assert.ok(trail.includes('identifier='), 'the search is in the trail');
  for (const p of patients) assert.equal(trail.includes(ssnOf(p)), false, 'no SSN in the trail');
  assert.ok(trail.includes('bi%3A') || trail.includes('bi:'), 'the blind index stands in for it');
});
