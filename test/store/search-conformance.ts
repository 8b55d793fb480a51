import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fhirpath from 'fhirpath';
import r4 from 'fhirpath/fhir-context/r4';
import type { Store } from '../../src/store/store.ts';
import type { Resource } from '../../src/fhir/types.ts';
import type { SearchRequest } from '../../src/fhir/search/types.ts';
import { parseSearch, type ParseOptions } from '../../src/fhir/search/parse.ts';
import type { FhirError } from '../../src/fhir/outcome.ts';
import { compartmentConstraint } from '../../src/fhir/search/compartment.ts';
import { loadSynthea } from '../fhir/search-synthea.ts';

/**
 * Search behaviour every Store must show, whatever its query language. Run it with a factory
 * that returns a fresh, empty store.
 */
export function searchConformance(makeStore: () => Promise<Store>): void {
  describe('search: parameter types, modifiers and prefixes', () => {
    let store: Store;
    before(async () => {
      store = await makeStore();
      await store.transaction(async (tx) => {
        for (const r of fixtures) await tx.create(r);
      });
    });
    after(() => store.close());

    const q = (type: string | undefined, query: string, options: Partial<ParseOptions> & { ordered?: boolean } = {}) => ids(store, type, query, options);

    test('string: case- and accent-insensitive prefix match on any name part', async () => {
      assert.deepEqual(await q('Patient', 'name=ann'), ['p1']);
      assert.deepEqual(await q('Patient', 'name=ANN'), ['p1']);
      assert.deepEqual(await q('Patient', 'name=jos'), ['p2']);
      assert.deepEqual(await q('Patient', 'name=álv'), ['p2']);
      assert.deepEqual(await q('Patient', 'name=alv'), ['p2']);
      assert.deepEqual(await q('Patient', 'name=nn'), []);
      assert.deepEqual(await q('Patient', 'address-city=spring'), ['p1']);
      assert.deepEqual(await q('Practitioner', 'name=doc'), ['dr1']);
    });

    test('phonetic: names that sound alike (Soundex)', async () => {
      assert.deepEqual(await q('Patient', 'phonetic=Bea'), ['p1'], 'Bee');
      assert.deepEqual(await q('Patient', 'phonetic=Alvares'), ['p2'], 'Álvarez');
      assert.deepEqual(await q('Patient', 'phonetic=Jose,Ana'), ['p1', 'p2']);
      assert.deepEqual(await q('Patient', 'phonetic=Zebra'), []);
    });

    test('string: OR by comma, AND by repetition', async () => {
      assert.deepEqual(await q('Patient', 'name=bee,alvarez'), ['p1', 'p2']);
      assert.deepEqual(await q('Patient', 'name=ann&name=bee'), ['p1']);
      assert.deepEqual(await q('Patient', 'name=ann&name=alvarez'), []);
    });

    test('string: :exact and :contains', async () => {
      assert.deepEqual(await q('Patient', 'name:exact=Ann'), ['p1']);
      assert.deepEqual(await q('Patient', 'name:exact=ann'), []);
      assert.deepEqual(await q('Patient', 'name:exact=José'), ['p2']);
      assert.deepEqual(await q('Patient', 'name:exact=Jose'), []);
      assert.deepEqual(await q('Patient', 'name:contains=ari'), ['p1']);
      assert.deepEqual(await q('Patient', 'name:contains=VAREZ'), ['p2']);
    });

    test('escaping: \\, \\| and \\\\ are literal characters', async () => {
      assert.deepEqual(await q('Patient', 'family=Van\\,D'), ['p3']);
      assert.deepEqual(await q('Patient', 'family=Dyke'), []);
      assert.deepEqual(await q('Patient', 'family=back\\\\s'), ['p3']);
      assert.deepEqual(await q('Patient', 'identifier=mrn|a\\|b'), ['p3']);
    });

    test('token: code, system|code, |code, system|', async () => {
      assert.deepEqual(await q('Patient', 'gender=female'), ['p1']);
      assert.deepEqual(await q('Patient', 'gender=male,female'), ['p1', 'p2']);
      assert.deepEqual(await q('Patient', 'identifier=mrn|001'), ['p1']);
      assert.deepEqual(await q('Patient', 'identifier=001'), ['p1', 'p2', 'p4']);
      assert.deepEqual(await q('Patient', 'identifier=|001'), ['p4']);
      assert.deepEqual(await q('Patient', 'identifier=http://other|'), ['p2']);
      assert.deepEqual(await q('Patient', 'identifier=MRN|001'), [], 'systems are case-sensitive');
      assert.deepEqual(await q('Patient', 'active=false'), ['p2']);
      assert.deepEqual(await q('Patient', 'telecom=phone|555-1000'), ['p1']);
      assert.deepEqual(await q('Observation', 'code=http://loinc.org|8302-2'), ['o1', 'o3', 'o5']);
      assert.deepEqual(await q('Observation', 'status=final'), ['o1', 'o2', 'o4']);
    });

    test('token: many values at once (as an expanded value set brings), with and without systems', async () => {
      assert.deepEqual(await q('Patient', 'identifier=mrn|001,mrn|002,mrn|003,|001,urn:none|x'), ['p1', 'p2', 'p4']);
      assert.deepEqual(await q('Patient', 'identifier=mrn|001,mrn|003,|001,urn:none|x'), ['p1', 'p4']);
      assert.deepEqual(await q('Patient', 'gender=male,female,other,unknown,x'), ['p1', 'p2']);
      assert.deepEqual(await q('Patient', 'gender:not=male,female,other,unknown'), ['p3', 'p4']);
      assert.deepEqual(await q('Observation', 'code=http://loinc.org|8302-2,http://loinc.org|1-1,http://loinc.org|2-2,http://snomed.info/sct|8302-2'), ['o1', 'o3', 'o5']);
    });

    test('token: :not includes resources without a value; :text matches display and text', async () => {
      assert.deepEqual(await q('Patient', 'gender:not=male'), ['p1', 'p3', 'p4']);
      assert.deepEqual(await q('Patient', 'gender:not=male,female'), ['p3', 'p4']);
      assert.deepEqual(await q('Observation', 'code:text=body'), ['o1', 'o2']);
      assert.deepEqual(await q('Observation', 'code:text=BODY H'), ['o1']);
      assert.deepEqual(await q('Observation', 'code:text=heart'), ['o4'], 'CodeableConcept.text');
    });

    test('_id, _tag, _profile, _security', async () => {
      assert.deepEqual(await q('Patient', '_id=p1,p3'), ['p1', 'p3']);
      assert.deepEqual(await q('Patient', '_id:not=p1'), ['p2', 'p3', 'p4']);
      assert.deepEqual(await q('Patient', '_tag=s|t1'), ['p1']);
      assert.deepEqual(await q('Patient', '_tag=t2'), ['p2']);
      assert.deepEqual(await q('Patient', '_security=R'), ['p2']);
      assert.deepEqual(await q('Patient', '_profile=http://example.org/fhir/StructureDefinition/my-patient'), ['p1']);
      assert.deepEqual(await q('Patient', '_profile:below=http://example.org/fhir/'), ['p1']);
      assert.deepEqual(await q('Patient', '_profile=http://example.org'), []);
      assert.deepEqual(await q('Patient', '_profile:above=http://example.org/fhir/StructureDefinition/my-patient/extra'), ['p1']);
    });

    test('reference: Type/id, bare id, :Type, absolute URL, :identifier', async () => {
      assert.deepEqual(await q('Observation', 'subject=Patient/p1'), ['o1', 'o2']);
      assert.deepEqual(await q('Observation', 'patient=p1'), ['o1', 'o2']);
      assert.deepEqual(await q('Observation', 'subject=p1'), ['o1', 'o2']);
      assert.deepEqual(await q('Observation', 'subject:Patient=p1'), ['o1', 'o2']);
      assert.deepEqual(await q('Observation', 'subject:Group=g1'), ['o4']);
      assert.deepEqual(await q('Observation', 'patient=Patient/p1,Patient/p2'), ['o1', 'o2', 'o3']);
      assert.deepEqual(await q('Observation', 'patient=Patient/p1/_history/1'), ['o1', 'o2']);
      assert.deepEqual(await q('Observation', 'subject=http://other.org/fhir/Patient/p1'), ['o5'], 'another server: exact text');
      assert.deepEqual(await q('Observation', 'subject=http://bastion.test/fhir/Patient/p1', { baseUrl: 'http://bastion.test/fhir' }), ['o1', 'o2']);
      assert.deepEqual(await q('Observation', 'patient=g1'), [], 'patient= only finds Patient references');
      assert.deepEqual(await q('Observation', 'performer:identifier=urn:npi|42'), ['o2']);
      assert.deepEqual(await q('Patient', 'general-practitioner=Practitioner/dr1'), ['p1']);
    });

    test(':missing', async () => {
      assert.deepEqual(await q('Observation', 'performer:missing=true'), ['o3', 'o4', 'o5']);
      assert.deepEqual(await q('Observation', 'performer:missing=false'), ['o1', 'o2']);
      assert.deepEqual(await q('Observation', 'date:missing=true'), ['o4']);
      assert.deepEqual(await q('Patient', 'birthdate:missing=true'), ['p4']);
      assert.deepEqual(await q('Patient', 'name:missing=true'), ['p4']);
      assert.deepEqual(await q('Patient', 'gender:missing=false'), ['p1', 'p2']);
      assert.deepEqual(await q('Patient', '_id:missing=false'), ['p1', 'p2', 'p3', 'p4']);
    });

    test('date: precision of the search value', async () => {
      assert.deepEqual(await q('Patient', 'birthdate=1980'), ['p1']);
      assert.deepEqual(await q('Patient', 'birthdate=1980-05'), ['p1']);
      assert.deepEqual(await q('Patient', 'birthdate=1980-05-15'), ['p1']);
      assert.deepEqual(await q('Patient', 'birthdate=1980-05-15T10:00'), [], 'a day is not within a minute');
      assert.deepEqual(await q('Patient', 'birthdate=1975'), ['p2']);
      assert.deepEqual(await q('Patient', 'birthdate=1975-06'), [], 'a year is not within a month');
      assert.deepEqual(await q('Observation', 'date=2020-03-04'), ['o1']);
      assert.deepEqual(await q('Observation', 'date=2020-01'), ['o2', 'o3'], 'a period within the month, and a time with an offset');
      assert.deepEqual(await q('Observation', 'date=2020-01-01'), ['o3'], '2019-12-31T23:30-02:00 is 2020-01-01 UTC');
      assert.deepEqual(await q('Observation', 'date=2019-12-31'), []);
      assert.deepEqual(await q('Observation', 'date=2020-03-04T10:00:00Z'), ['o1']);
      assert.deepEqual(await q('Observation', 'date=2020-03-04T12:00:00%2B02:00'), ['o1']);
    });

    test('date: prefixes', async () => {
      assert.deepEqual(await q('Patient', 'birthdate=lt1980'), ['p2']);
      assert.deepEqual(await q('Patient', 'birthdate=gt1980'), ['p3']);
      assert.deepEqual(await q('Patient', 'birthdate=ge1980'), ['p1', 'p3']);
      assert.deepEqual(await q('Patient', 'birthdate=le1980'), ['p1', 'p2']);
      assert.deepEqual(await q('Patient', 'birthdate=sa1980'), ['p3']);
      assert.deepEqual(await q('Patient', 'birthdate=eb1980'), ['p2']);
      assert.deepEqual(await q('Patient', 'birthdate=ne1980'), ['p2', 'p3']);
      assert.deepEqual(await q('Patient', 'birthdate=ap1980', { now: Date.UTC(2000, 0, 1) }), ['p1']);
      assert.deepEqual(await q('Patient', 'birthdate=ge1976&birthdate=lt1985'), ['p1']);
      assert.deepEqual(await q('Observation', 'date=gt2020-12-31'), ['o5'], 'an open period extends forever');
      assert.deepEqual(await q('Observation', 'date=lt2020-01-01'), []);
      assert.deepEqual(await q('Observation', 'date=lt2020-01-01T02:00:00Z'), ['o2', 'o3']);
      assert.deepEqual(await q('Observation', 'date=sa2020-02'), ['o1', 'o5']);
      assert.deepEqual(await q('Observation', 'date=eb2020-03'), ['o2', 'o3']);
      assert.deepEqual(await q('Patient', 'death-date=2020-06-01'), ['p4'], '12:00+02:00 is 10:00 UTC');
    });

    test('_lastUpdated', async () => {
      const p1 = (await store.read('Patient', 'p1'))!;
      const p2 = (await store.read('Patient', 'p2'))!;
      assert.deepEqual(await q('Patient', `_lastUpdated=${p1.lastUpdated}`), ['p1']);
      assert.deepEqual(await q('Patient', `_lastUpdated=lt${p2.lastUpdated}`), ['p1']);
      assert.deepEqual(await q('Patient', `_lastUpdated=ge${p2.lastUpdated}`), ['p2', 'p3', 'p4']);
      assert.deepEqual(await q('Patient', '_lastUpdated=gt2000-01-01'), ['p1', 'p2', 'p3', 'p4']);
      assert.deepEqual(await q('Patient', '_lastUpdated=lt2000-01-01'), []);
      assert.deepEqual(await q('Patient', `_lastUpdated=${p1.lastUpdated.slice(0, 4)}`), ['p1', 'p2', 'p3', 'p4']);
    });

    test('number: precision and prefixes, Range values', async () => {
      assert.deepEqual(await q('RiskAssessment', 'probability=0.5'), ['r1']);
      assert.deepEqual(await q('RiskAssessment', 'probability=0.50'), ['r1']);
      assert.deepEqual(await q('RiskAssessment', 'probability=0.55'), ['r3']);
      assert.deepEqual(await q('RiskAssessment', 'probability=0.6'), ['r3'], '0.55 is in [0.55, 0.65)');
      assert.deepEqual(await q('RiskAssessment', 'probability=gt0.5'), ['r3']);
      assert.deepEqual(await q('RiskAssessment', 'probability=lt0.2'), ['r2']);
      assert.deepEqual(await q('RiskAssessment', 'probability=ge0.55'), ['r3']);
      assert.deepEqual(await q('RiskAssessment', 'probability=le0.1'), ['r2']);
      assert.deepEqual(await q('RiskAssessment', 'probability=0.2'), [], 'a range is not within [0.15, 0.25)');
      assert.deepEqual(await q('RiskAssessment', 'probability=ap0.2'), ['r2']);
      assert.deepEqual(await q('RiskAssessment', 'probability=ne0.5'), ['r2', 'r3']);
    });

    test('quantity: value, system and code or unit', async () => {
      assert.deepEqual(await q('Observation', 'value-quantity=5.4'), ['o3']);
      assert.deepEqual(await q('Observation', 'value-quantity=5.4|http://unitsofmeasure.org|mg'), ['o3']);
      assert.deepEqual(await q('Observation', 'value-quantity=5.4|http://unitsofmeasure.org|kg'), []);
      assert.deepEqual(await q('Observation', 'value-quantity=gt100'), ['o1']);
      assert.deepEqual(await q('Observation', 'value-quantity=100'), ['o4']);
      assert.deepEqual(await q('Observation', 'value-quantity=100||beats'), ['o4']);
      assert.deepEqual(await q('Observation', 'value-quantity=ge70.25||kg'), ['o2']);
      assert.deepEqual(await q('Observation', 'value-quantity=lt100,gt150'), ['o1', 'o2', 'o3']);
    });

    test('sort: by parameter, descending, several keys, missing values last', async () => {
      assert.deepEqual(await q('Patient', '_sort=birthdate', { ordered: true }), ['p2', 'p1', 'p3', 'p4']);
      assert.deepEqual(await q('Patient', '_sort=-birthdate', { ordered: true }), ['p3', 'p1', 'p2', 'p4']);
      assert.deepEqual(await q('Patient', '_sort=family', { ordered: true }), ['p2', 'p3', 'p1', 'p4']);
      assert.deepEqual(await q('Patient', '_sort=-_id', { ordered: true }), ['p4', 'p3', 'p2', 'p1']);
      assert.deepEqual(await q('Observation', '_sort=status,-date', { ordered: true }), ['o5', 'o1', 'o2', 'o4', 'o3']);
      assert.deepEqual(await q('Patient', '_sort=-_lastUpdated', { ordered: true }), ['p4', 'p3', 'p2', 'p1']);
    });

    test('paging and totals', async () => {
      const page = async (query: string) => store.search(parse('Patient', query));
      const first = await page('_sort=_id&_count=2&_total=accurate');
      assert.deepEqual(first.matches.map((m) => m.id), ['p1', 'p2']);
      assert.equal(first.total, 4);
      assert.deepEqual((await page('_sort=_id&_count=2&_offset=2')).matches.map((m) => m.id), ['p3', 'p4']);
      assert.deepEqual((await page('_sort=_id&_count=2&_offset=4')).matches, []);
      assert.equal((await page('_count=2')).total, undefined, 'no total unless asked');
      const counted = await page('gender=male,female&_count=0');
      assert.deepEqual(counted.matches, []);
      assert.equal(counted.total, 2);
      assert.equal((await page('_count=1000000')).matches.length, 4, '_count is capped, not refused');
      const m = first.matches[0];
      assert.equal(m.resourceType, 'Patient');
      assert.equal(m.versionId, '1');
      assert.equal(JSON.parse(m.json!).name[0].family, 'Bee');
    });

    test('several types: _type and a search across all types', async () => {
      assert.deepEqual(await q(undefined, '_type=Patient,Observation&_id=p1,o1,dr1'), ['o1', 'p1']);
      assert.deepEqual(await q(undefined, '_tag=s|t1'), ['dr1', 'p1']);
      assert.deepEqual(await q(undefined, '_type=Patient,Practitioner&name=doc,ann'), ['dr1', 'p1']);
    });

    test('chains: the criterion applies to the referenced resource', async () => {
      assert.deepEqual(await q('Observation', 'subject:Patient.name=ann'), ['o1', 'o2']);
      assert.deepEqual(await q('Observation', 'subject.name=ann'), ['o1', 'o2']);
      assert.deepEqual(await q('Observation', 'subject.name=zzz'), []);
      assert.deepEqual(await q('Observation', 'patient.birthdate=lt1980'), ['o3']);
      assert.deepEqual(await q('Observation', 'patient.gender=male,female&code=http://loinc.org|8302-2'), ['o1', 'o3']);
      assert.deepEqual(await q('Observation', 'subject:Patient.general-practitioner.name=doc'), ['o1', 'o2'], 'two links');
      assert.deepEqual(await q('RiskAssessment', 'subject:Patient.gender=female'), ['r1', 'r2', 'r3']);
      assert.deepEqual(await q('Observation', 'subject:Patient._id=p2'), ['o3']);
    });

    test('_has: resources referred to by resources that match', async () => {
      assert.deepEqual(await q('Patient', '_has:Observation:subject:code=http://loinc.org|8302-2'), ['p1', 'p2']);
      assert.deepEqual(await q('Patient', '_has:Observation:subject:status=preliminary'), ['p2']);
      assert.deepEqual(await q('Patient', '_has:Observation:patient:status=final,amended'), ['p1'], 'o5 refers to p1 on another server: not ours');
      assert.deepEqual(await q('Patient', '_has:RiskAssessment:subject:probability=gt0.52'), ['p1']);
      assert.deepEqual(await q('Patient', '_has:RiskAssessment:subject:probability=gt0.9'), []);
      assert.deepEqual(await q('Patient', '_has:Observation:subject:code=http://loinc.org|8302-2&gender=male'), ['p2'], 'ANDed with the rest');
      assert.deepEqual(await q('Practitioner', '_has:Patient:general-practitioner:_has:Observation:subject:status=preliminary'), [], 'nested: p2 has no GP');
      assert.deepEqual(await q('Practitioner', '_has:Patient:general-practitioner:_has:Observation:subject:status=final'), ['dr1'], 'nested');
    });

    test('_include and _revinclude', async () => {
      const run = async (type: string, query: string, request: Partial<SearchRequest> = {}) => {
        const result = await store.search({ ...parse(type, query), ...request });
        return { matches: result.matches.map((m) => m.id).sort(), included: result.included.map((m) => `${m.resourceType}/${m.id}`).sort() };
      };
      assert.deepEqual(await run('Observation', '_id=o1&_include=Observation:subject'), { matches: ['o1'], included: ['Patient/p1'] });
      assert.deepEqual((await run('Observation', '_id=o1&_include=Observation:*')).included.filter((r) => r.startsWith('Patient/')), ['Patient/p1'], 'wildcard');
      assert.deepEqual(await run('Observation', 'code=http://loinc.org|8302-2&_include=Observation:subject:Patient'), { matches: ['o1', 'o3', 'o5'], included: ['Patient/p1', 'Patient/p2'] });
      assert.deepEqual(await run('Observation', '_id=o1&_include=Observation:subject&_include:iterate=Patient:general-practitioner'), { matches: ['o1'], included: ['Patient/p1', 'Practitioner/dr1'] });
      assert.deepEqual(await run('Observation', '_id=o1&_include=Observation:subject&_include=Patient:general-practitioner'), { matches: ['o1'], included: ['Patient/p1'] }, 'without :iterate only matches are followed');
      assert.deepEqual(await run('Patient', '_id=p1&_revinclude=Observation:subject'), { matches: ['p1'], included: ['Observation/o1', 'Observation/o2'] });
      assert.deepEqual(await run('Patient', '_id=p1&_revinclude=RiskAssessment:subject&_revinclude=Observation:patient'), {
        matches: ['p1'], included: ['Observation/o1', 'Observation/o2', 'RiskAssessment/r1', 'RiskAssessment/r2', 'RiskAssessment/r3'],
      });
      assert.deepEqual(await run('Patient', '_id=p1,dr1&_include=Patient:general-practitioner'), { matches: ['p1'], included: ['Practitioner/dr1'] });
      assert.deepEqual(await run(undefined as unknown as string, '_type=Patient,Practitioner&_id=p1,dr1&_include=Patient:general-practitioner'), { matches: ['dr1', 'p1'], included: [] }, 'a match is not repeated as an include');
      // Included resources pass the same access constraints as matches.
      const p1 = { kind: 'token' as const, code: '_id', negate: false, values: [{ code: 'p1' }] };
      const ofP1 = { kind: 'reference' as const, code: 'subject', values: [{ type: 'Patient', id: 'p1' }] };
      assert.deepEqual(await run('Observation', '_id=o1,o3&_include=Observation:subject', { constraints: [{ anyOf: [ofP1, p1] }] }), { matches: ['o1'], included: ['Patient/p1'] });
      assert.deepEqual(await run('Observation', '_id=o1,o3&_include=Observation:subject', { constraints: [{ anyOf: [ofP1] }] }), { matches: ['o1'], included: [] });
      assert.deepEqual(await run('Patient', '_id=p1&_revinclude=Observation:subject', { constraints: [{ anyOf: [p1, { kind: 'token', code: 'status', negate: false, values: [{ code: 'final' }] }] }] }), { matches: ['p1'], included: ['Observation/o1', 'Observation/o2'] });
      assert.deepEqual(await run('Patient', '_id=p1&_revinclude=Observation:subject', { constraints: [{ anyOf: [p1, { kind: 'reference', code: 'performer', values: [{ type: 'Practitioner', id: 'dr1' }] }] }] }), { matches: ['p1'], included: ['Observation/o1'] });
    });

    test('access constraints are ANDed into the query, counts included', async () => {
      const request: SearchRequest = {
        ...parse('Observation', 'code=http://loinc.org|8302-2&_total=accurate'),
        constraints: [{ anyOf: [{ kind: 'reference', code: 'subject', values: [{ type: 'Patient', id: 'p1' }] }, { kind: 'token', code: 'status', negate: false, values: [{ code: 'amended' }] }] }],
      };
      const result = await store.search(request);
      assert.deepEqual(result.matches.map((m) => m.id).sort(), ['o1', 'o5']);
      assert.equal(result.total, 2);
      const none = await store.search({ ...request, constraints: [{ anyOf: [] }] });
      assert.deepEqual(none.matches, []);
      assert.equal(none.total, 0);
    });
  });

  describe('search: composite parameters', () => {
    let store: Store;
    const loinc = (code: string) => ({ coding: [{ system: 'http://loinc.org', code }] });
    const mmHg = (value: number) => ({ value, unit: 'mmHg', system: 'http://unitsofmeasure.org', code: 'mm[Hg]' });
    before(async () => {
      store = await makeStore();
      await store.transaction(async (tx) => {
        // Blood pressures: systolic and diastolic as components.
        await tx.create({ resourceType: 'Observation', id: 'bp1', status: 'final', code: loinc('85354-9'), component: [
          { code: loinc('8480-6'), valueQuantity: mmHg(150) }, { code: loinc('8462-4'), valueQuantity: mmHg(70) },
        ] });
        await tx.create({ resourceType: 'Observation', id: 'bp2', status: 'final', code: loinc('85354-9'), component: [
          { code: loinc('8480-6'), valueQuantity: mmHg(110) }, { code: loinc('8462-4'), valueQuantity: mmHg(95) },
        ] });
        await tx.create({ resourceType: 'Observation', id: 'hr', status: 'final', code: loinc('8867-4'), valueQuantity: { value: 150, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' } });
        await tx.create({ resourceType: 'Observation', id: 'smoker', status: 'final', code: loinc('72166-2'), valueCodeableConcept: { coding: [{ system: 'http://snomed.info/sct', code: '449868002' }] } });
        await tx.create({ resourceType: 'Observation', id: 'onset', status: 'final', code: loinc('11368-8'), valueDateTime: '2020-03-15' });
        await tx.create({ resourceType: 'Group', id: 'g1', type: 'person', actual: true, characteristic: [
          { code: { text: 'gender', coding: [{ code: 'gender' }] }, valueCodeableConcept: { coding: [{ code: 'female' }] }, exclude: false },
          { code: { coding: [{ code: 'smoker' }] }, valueBoolean: true, exclude: false },
        ] });
      });
    });
    after(() => store.close());
    const q = (type: string, query: string) => ids(store, type, query);

    test('both parts must hold on the same component', async () => {
      assert.deepEqual(await q('Observation', 'component-code-value-quantity=http://loinc.org|8480-6$gt140'), ['bp1']);
      assert.deepEqual(await q('Observation', 'component-code-value-quantity=http://loinc.org|8462-4$gt90'), ['bp2']);
      // 150 is bp1's systolic and 95 bp2's diastolic: no diastolic above 140 anywhere.
      assert.deepEqual(await q('Observation', 'component-code-value-quantity=http://loinc.org|8462-4$gt140'), []);
      assert.deepEqual(await q('Observation', 'component-code-value-quantity=8480-6$lt120|http://unitsofmeasure.org|mm[Hg]'), ['bp2']);
      assert.deepEqual(await q('Observation', 'component-code-value-quantity=8480-6$gt140,8462-4$gt90'), ['bp1', 'bp2'], 'OR of tuples');
      assert.deepEqual(await q('Observation', 'component-code-value-quantity=8480-6$gt100&component-code-value-quantity=8462-4$lt80'), ['bp1'], 'AND of tuples');
    });

    test('on the resource itself, and combo (resource or component)', async () => {
      assert.deepEqual(await q('Observation', 'code-value-quantity=http://loinc.org|8867-4$150'), ['hr']);
      assert.deepEqual(await q('Observation', 'code-value-quantity=http://loinc.org|8480-6$150'), [], 'components are not the resource');
      assert.deepEqual(await q('Observation', 'combo-code-value-quantity=8480-6$ge150'), ['bp1']);
      assert.deepEqual(await q('Observation', 'combo-code-value-quantity=8867-4$ge150'), ['hr']);
      assert.deepEqual(await q('Observation', 'code-value-concept=72166-2$http://snomed.info/sct|449868002'), ['smoker']);
      assert.deepEqual(await q('Observation', 'code-value-concept=72166-2$http://snomed.info/sct|0'), []);
      assert.deepEqual(await q('Observation', 'code-value-date=11368-8$ge2020-03'), ['onset']);
      assert.deepEqual(await q('Observation', 'code-value-date=11368-8$lt2020'), []);
      assert.deepEqual(await q('Group', 'characteristic-value=gender$female'), ['g1']);
      assert.deepEqual(await q('Group', 'characteristic-value=gender$male'), []);
      assert.deepEqual(await q('Group', 'characteristic-value=smoker$true'), ['g1']);
    });

    test('an update re-groups the parts', async () => {
      await store.transaction((tx) => tx.update({ resourceType: 'Observation', id: 'bp2', status: 'final', code: loinc('85354-9'), component: [
        { code: loinc('8480-6'), valueQuantity: mmHg(95) }, { code: loinc('8462-4'), valueQuantity: mmHg(110) },
      ] }));
      assert.deepEqual(await q('Observation', 'component-code-value-quantity=8462-4$gt90'), ['bp2']);
      assert.deepEqual(await q('Observation', 'component-code-value-quantity=8480-6$lt100'), ['bp2']);
      assert.deepEqual(await q('Observation', 'component-code-value-quantity=8480-6$110'), []);
    });
  });

  describe('search: identifier :of-type', () => {
    let store: Store;
    const v2 = 'http://terminology.hl7.org/CodeSystem/v2-0203';
    before(async () => {
      store = await makeStore();
      await store.transaction(async (tx) => {
        await tx.create({ resourceType: 'Patient', id: 'mr1', identifier: [
          { type: { coding: [{ system: v2, code: 'MR' }] }, system: 'urn:hospital', value: '123' },
          { type: { coding: [{ system: v2, code: 'SS' }] }, system: 'http://hl7.org/fhir/sid/us-ssn', value: '999-00-1111' },
        ] });
        await tx.create({ resourceType: 'Patient', id: 'mr2', identifier: [{ type: { coding: [{ system: 'urn:other', code: 'MR' }] }, value: '123' }] });
        await tx.create({ resourceType: 'Patient', id: 'dl', identifier: [{ type: { coding: [{ system: v2, code: 'DL' }] }, value: '123' }] });
      });
    });
    after(() => store.close());
    const q = (query: string) => ids(store, 'Patient', query);

    test('type and value must belong to the same identifier', async () => {
      assert.deepEqual(await q(`identifier:of-type=${v2}|MR|123`), ['mr1']);
      assert.deepEqual(await q(`identifier:of-type=|MR|123`), ['mr1', 'mr2'], 'any type system');
      assert.deepEqual(await q(`identifier:of-type=${v2}|MR|999-00-1111`), [], 'the SSN is not the MR');
      assert.deepEqual(await q(`identifier:of-type=${v2}|SS|999-00-1111,${v2}|DL|123`), ['dl', 'mr1']);
      assert.deepEqual(await q('identifier=123'), ['dl', 'mr1', 'mr2'], 'plain identifier search unchanged');
    });
  });

  describe('search: near and _list', () => {
    let store: Store;
    const at = (id: string, latitude: number, longitude: number) => ({ resourceType: 'Location', id, name: id, position: { latitude, longitude } });
    before(async () => {
      store = await makeStore();
      await store.transaction(async (tx) => {
        await tx.create(at('annarbor', 42.2808, -83.743));
        await tx.create(at('ypsilanti', 42.2411, -83.613)); // about 11.4 km from Ann Arbor
        await tx.create(at('detroit', 42.3314, -83.0458)); // about 57 km
        await tx.create(at('sydney', -33.8688, 151.2093));
        await tx.create({ resourceType: 'Location', id: 'nowhere', name: 'nowhere' });
        await tx.create({ resourceType: 'Patient', id: 'l1' });
        await tx.create({ resourceType: 'Patient', id: 'l2' });
        await tx.create({ resourceType: 'Patient', id: 'l3' });
        await tx.create({ resourceType: 'List', id: 'ward', status: 'current', mode: 'working', entry: [{ item: { reference: 'Patient/l1' } }, { item: { reference: 'Patient/l3' } }, { item: { reference: 'Location/detroit' } }] });
      });
    });
    after(() => store.close());

    test('near: great-circle distance from the point, in km, m or miles', async () => {
      assert.deepEqual(await ids(store, 'Location', 'near=42.2808|-83.743|5|km'), ['annarbor']);
      assert.deepEqual(await ids(store, 'Location', 'near=42.2808|-83.743|12|km'), ['annarbor', 'ypsilanti']);
      assert.deepEqual(await ids(store, 'Location', 'near=42.2808|-83.743|12000|m'), ['annarbor', 'ypsilanti']);
      assert.deepEqual(await ids(store, 'Location', 'near=42.2808|-83.743|40|[mi_i]'), ['annarbor', 'detroit', 'ypsilanti']);
      assert.deepEqual(await ids(store, 'Location', 'near=-33.87|151.21'), ['sydney'], 'default distance');
      assert.deepEqual(await ids(store, 'Location', 'near=0|0|100|km'), []);
    });

    test('_list: the entries of a List, of the searched type', async () => {
      assert.deepEqual(await ids(store, 'Patient', '_list=ward'), ['l1', 'l3']);
      assert.deepEqual(await ids(store, 'Location', '_list=ward'), ['detroit']);
      assert.deepEqual(await ids(store, 'Patient', '_list=nosuchlist'), []);
      await store.transaction((tx) => tx.delete('Patient', 'l3'));
      assert.deepEqual(await ids(store, 'Patient', '_list=ward'), ['l1'], 'a deleted entry is not found');
    });
  });

  describe('search: _text and _content', () => {
    let store: Store;
    const narrative = (html: string) => ({ status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml">${html}</div>` });
    before(async () => {
      store = await makeStore();
      await store.transaction(async (tx) => {
        await tx.create({ resourceType: 'Condition', id: 'c1', subject: { reference: 'Patient/x' }, text: narrative('<p>Type&#160;2 <b>diabetes</b> mellitus, well controlled</p>'), code: { text: 'Diabetes' }, note: [{ text: 'Reviewed by Dr Müller' }] });
        await tx.create({ resourceType: 'Condition', id: 'c2', subject: { reference: 'Patient/x' }, text: narrative('<p>Hypertension</p>'), code: { coding: [{ system: 'http://snomed.info/sct', code: '38341003', display: 'Hypertensive disorder' }] } });
        await tx.create({ resourceType: 'Condition', id: 'c3', subject: { reference: 'Patient/x' }, code: { text: 'Asthma, diabetic neighbour' } });
      });
    });
    after(() => store.close());
    const q = (query: string) => ids(store, 'Condition', query);

    test('_text: words of the narrative, as words or their beginnings, all of them', async () => {
      assert.deepEqual(await q('_text=diabetes'), ['c1']);
      assert.deepEqual(await q('_text=DIAB'), ['c1'], 'prefix, any case');
      assert.deepEqual(await q('_text=diabetes controlled'), ['c1']);
      assert.deepEqual(await q('_text=diabetes asthma'), []);
      assert.deepEqual(await q('_text=diabetes,hypertension'), ['c1', 'c2'], 'OR by comma');
      assert.deepEqual(await q('_text="type 2 diabetes"'), ['c1'], 'a quoted phrase');
      assert.deepEqual(await q('_text="diabetes type"'), []);
      assert.deepEqual(await q('_text=asthma'), [], 'c3 has no narrative');
    });

    test('_content: all of the text, narrative included; markup and machine strings are not text', async () => {
      assert.deepEqual(await q('_content=diabet'), ['c1', 'c3']);
      assert.deepEqual(await q('_content=mueller,muller'), ['c1'], 'accents folded');
      assert.deepEqual(await q('_content=hypertensive'), ['c2'], 'a display');
      assert.deepEqual(await q('_content=snomed'), [], 'system URLs are not content');
      assert.deepEqual(await q('_content=xhtml'), [], 'markup is not content');
      assert.deepEqual(await q('_content=diabetes&_text=controlled'), ['c1']);
    });

    test('the text index follows updates and deletes; query syntax in a value is only text', async () => {
      await store.transaction((tx) => tx.update({ resourceType: 'Condition', id: 'c3', subject: { reference: 'Patient/x' }, code: { text: 'Asthma' } }));
      assert.deepEqual(await q('_content=diabet'), ['c1']);
      await store.transaction((tx) => tx.delete('Condition', 'c1'));
      assert.deepEqual(await q('_content=diabet'), []);
      assert.deepEqual(await q('_content=asthma OR NOT'), [], 'OR and NOT are words here');
      assert.deepEqual(await q('_content=asthma*'), ['c3']);
    });
  });

  describe('search: paging by continuation tokens', () => {
    let store: Store;
    // 12 Patients; some without a birthDate (they sort last either way), some sharing one.
    const people = Array.from({ length: 12 }, (_, i): Resource & { id: string } => ({
      resourceType: 'Patient', id: `pg${String(i).padStart(2, '0')}`, name: [{ family: `Pager${'abcdefghijkl'[(i * 5) % 12]}` }], gender: 'other',
      ...(i % 4 === 3 ? {} : { birthDate: `19${50 + (i % 5)}-01-01` }),
    }));
    before(async () => {
      store = await makeStore();
      await store.transaction(async (tx) => {
        for (const r of people) await tx.create(r);
      });
    });
    after(() => store.close());

    const all = async (query: string) => (await store.search(parse('Patient', `${query}&_count=1000`))).matches.map((m) => m.id);
    async function walk(query: string, count: number, direction: 'next' | 'previous', start?: string): Promise<string[][]> {
      const pages: string[][] = [];
      let request: SearchRequest = { ...parse('Patient', `${query}&_count=${count}`), ...(start ? { cursor: start } : {}) };
      for (let n = 0; n < 50; n++) {
        const result = await store.search(request);
        pages.push(result.matches.map((m) => m.id));
        const token = result[direction];
        if (!token) break;
        request = { ...request, cursor: token };
      }
      return pages;
    }

    for (const query of ['gender=other', 'gender=other&_sort=name', 'gender=other&_sort=-birthdate', 'gender=other&_sort=birthdate,-name', 'gender=other&_sort=-_lastUpdated', 'gender=other&_sort=_id']) {
      test(`${query}: next walks every match once, in order; previous walks back`, async () => {
        const expected = await all(query);
        assert.equal(expected.length, 12);
        const forward = await walk(query, 5, 'next');
        assert.deepEqual(forward.map((p) => p.length), [5, 5, 2]);
        assert.deepEqual(forward.flat(), expected);
        // From the last page back to the first.
        const last = await store.search(parse('Patient', `${query}&_count=5`));
        const second = await store.search({ ...parse('Patient', `${query}&_count=5`), cursor: last.next });
        const third = await store.search({ ...parse('Patient', `${query}&_count=5`), cursor: second.next });
        assert.equal(third.next, undefined, 'no page after the last');
        const back = await walk(query, 5, 'previous', third.previous);
        assert.deepEqual(back.reverse().flat(), expected.slice(0, 10));
        assert.equal(last.previous, undefined, 'no page before the first');
      });
    }

    test('pages fetched later neither repeat nor skip a resource when others are created and deleted meanwhile', async () => {
      const query = 'gender=other&_sort=name';
      const before = await all(query);
      const first = await store.search(parse('Patient', `${query}&_count=4`));
      const seen = first.matches.map((m) => m.id);
      // A new match sorting before the cursor, one after it; a seen one and an unseen one deleted.
      await store.transaction(async (tx) => {
        await tx.create({ resourceType: 'Patient', id: 'pg-early', name: [{ family: 'Pagera' }], gender: 'other' });
        await tx.create({ resourceType: 'Patient', id: 'pg-late', name: [{ family: 'Pagerz' }], gender: 'other' });
        await tx.delete('Patient', seen[1]);
        await tx.delete('Patient', before[6]);
      });
      let token = first.next;
      while (token) {
        const page = await store.search({ ...parse('Patient', `${query}&_count=4`), cursor: token });
        seen.push(...page.matches.map((m) => m.id));
        token = page.next;
      }
      assert.equal(new Set(seen).size, seen.length, `no resource twice: ${seen}`);
      const unchanged = before.filter((id) => id !== before[6]);
      for (const id of unchanged) assert.ok(seen.includes(id), `${id} was not skipped`);
      assert.ok(seen.includes('pg-late'), 'a new match after the position is found');
      assert.ok(!seen.includes(before[6]), 'a deleted resource is not returned');
      assert.ok(!seen.includes('pg-early'), 'a new match before the position is not (it belongs to pages already read)');
    });

    test('a token that is not one of this search is refused', async () => {
      for (const cursor of ['not-base64-json', Buffer.from('{"d":"n","k":[],"r":0}').toString('base64url'), Buffer.from('{"d":"x","k":[],"r":1}').toString('base64url')]) {
        await assert.rejects(store.search({ ...parse('Patient', 'gender=other&_sort=name'), cursor }), (err: unknown) => (err as FhirError).status === 400);
      }
    });
  });

  describe('search: the index follows updates and deletes', () => {
    let store: Store;
    before(async () => {
      store = await makeStore();
      await store.transaction(async (tx) => {
        for (const r of fixtures.filter((f) => f.resourceType === 'Patient')) await tx.create(r);
      });
    });
    after(() => store.close());

    test('an update replaces the old values', async () => {
      await store.transaction((tx) => tx.update({ resourceType: 'Patient', id: 'p1', name: [{ family: 'Zed' }], gender: 'male' }));
      assert.deepEqual(await ids(store, 'Patient', 'name=ann'), []);
      assert.deepEqual(await ids(store, 'Patient', 'name=zed'), ['p1']);
      assert.deepEqual(await ids(store, 'Patient', 'birthdate=1980'), []);
      assert.deepEqual(await ids(store, 'Patient', 'gender=male'), ['p1', 'p2']);
    });

    test('a delete removes the resource from every search; re-creating brings it back', async () => {
      await store.transaction((tx) => tx.delete('Patient', 'p2'));
      assert.deepEqual(await ids(store, 'Patient', 'gender=male'), ['p1']);
      assert.deepEqual(await ids(store, 'Patient', '_id=p2'), []);
      assert.deepEqual(await ids(store, 'Patient', 'gender:not=female'), ['p1', 'p3', 'p4']);
      assert.equal((await store.search(parse('Patient', '_total=accurate&_count=0'))).total, 3);
      await store.transaction((tx) => tx.update({ resourceType: 'Patient', id: 'p2', gender: 'male' }));
      assert.deepEqual(await ids(store, 'Patient', 'gender=male'), ['p1', 'p2']);
      assert.deepEqual(await ids(store, 'Patient', 'name=alvarez'), []);
    });

    test('a chain does not pass through a deleted resource', async () => {
      await store.transaction(async (tx) => {
        await tx.create({ resourceType: 'Observation', id: 'ox', status: 'final', code: { text: 'x' }, subject: { reference: 'Patient/p4' } });
      });
      assert.deepEqual(await ids(store, 'Observation', 'subject:Patient.identifier=001'), ['ox']);
      await store.transaction((tx) => tx.delete('Patient', 'p4'));
      assert.deepEqual(await ids(store, 'Observation', 'subject:Patient.identifier=001'), []);
      assert.deepEqual(await ids(store, 'Observation', 'subject=Patient/p4'), ['ox'], 'the reference itself is still there');
      const included = await store.search(parse('Observation', '_id=ox&_include=Observation:subject'));
      assert.deepEqual(included.included, []);
    });

    test('a rolled-back transaction leaves the index as it was', async () => {
      await assert.rejects(store.transaction(async (tx) => {
        await tx.update({ resourceType: 'Patient', id: 'p3', gender: 'other' });
        throw new Error('abort');
      }));
      assert.deepEqual(await ids(store, 'Patient', 'gender=other'), []);
      assert.deepEqual(await ids(store, 'Patient', 'family=van'), ['p3']);
    });
  });

  describe('search: results agree with direct FHIRPath evaluation on Synthea data', () => {
    let store: Store;
    const resources = loadSynthea(8);
    const byType = (type: string) => resources.filter((r) => r.resourceType === type);
    const fp = (r: Resource, expr: string): unknown[] => fhirpath.evaluate(r, expr, undefined, r4) as unknown[];
    const patient = byType('Patient')[1];
    before(async () => {
      store = await makeStore();
      await store.transaction(async (tx) => {
        for (const r of resources) await tx.create(r);
      });
    });
    after(() => store.close());

    const expect = async (type: string, query: string, predicate: (r: Resource) => boolean) => {
      const expected = byType(type).filter(predicate).map((r) => r.id!).sort();
      const actual = await ids(store, type, `${query}&_count=1000`);
      assert.deepEqual(actual, expected, `${type}?${query}`);
      return expected.length;
    };
    const fold = (s: string) => s.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();

    test('Patient?name=', async () => {
      for (const prefix of [fold((patient.name as { family: string }[])[0].family).slice(0, 3), 'ma', 'jo']) {
        await expect('Patient', `name=${prefix}`, (r) => (fp(r, 'Patient.name.given | Patient.name.family | Patient.name.prefix | Patient.name.suffix | Patient.name.text') as string[]).some((s) => fold(s).startsWith(prefix)));
      }
    });

    test('Patient?birthdate=ge...', async () => {
      const n = await expect('Patient', 'birthdate=ge1980-01-01', (r) => (fp(r, 'Patient.birthDate') as string[]).some((d) => d >= '1980-01-01'));
      assert.ok(n > 0);
    });

    test('Observation?subject=Patient/X&code=http://loinc.org|8302-2', async () => {
      const n = await expect('Observation', `subject=Patient/${patient.id}&code=http://loinc.org|8302-2`, (r) =>
        fp(r, `Observation.subject.reference = 'Patient/${patient.id}' and Observation.code.coding.where(system = 'http://loinc.org' and code = '8302-2').exists()`)[0] === true);
      assert.ok(n > 0);
    });

    test('Encounter?patient=X', async () => {
      for (const p of byType('Patient').slice(0, 4)) {
        assert.ok((await expect('Encounter', `patient=${p.id}`, (r) => fp(r, 'Encounter.subject.reference')[0] === `Patient/${p.id}`)) > 0);
      }
    });

    test('Condition?code=', async () => {
      const codes = [...new Set(byType('Condition').map((c) => fp(c, 'Condition.code.coding.code')[0] as string))].slice(0, 5);
      for (const code of codes) {
        assert.ok((await expect('Condition', `code=${code}`, (r) => (fp(r, 'Condition.code.coding.code') as string[]).includes(code))) > 0);
      }
    });

    test('Observation?date=lt...', async () => {
      const cut = Date.UTC(2015, 0, 1);
      const n = await expect('Observation', 'date=lt2015-01-01', (r) => (fp(r, 'Observation.effective.ofType(dateTime)') as string[]).some((d) => Date.parse(d) < cut));
      assert.ok(n > 0);
    });

    test('Observation?value-quantity=gt...&_sort=-date pages in order', async () => {
      const matching = byType('Observation').filter((r) => (fp(r, 'Observation.value.ofType(Quantity).value') as number[]).some((v) => v > 100));
      const time = (r: Resource) => Date.parse(fp(r, 'Observation.effective.ofType(dateTime)')[0] as string);
      const expected = matching.sort((a, b) => time(b) - time(a) || 0).map((r) => time(r));
      const seen: number[] = [];
      for (let offset = 0; ; offset += 50) {
        const page = await store.search(parse('Observation', `value-quantity=gt100&_sort=-date&_count=50&_offset=${offset}&_total=accurate`));
        assert.equal(page.total, expected.length);
        if (page.matches.length === 0) break;
        seen.push(...page.matches.map((m) => time(JSON.parse(m.json!) as Resource)));
      }
      assert.deepEqual(seen, expected);
    });

    test('Observation?component-code-value-quantity= (blood pressure components)', async () => {
      const n = await expect('Observation', 'component-code-value-quantity=http://loinc.org|8480-6$gt120', (r) =>
        fp(r, "Observation.component.where(code.coding.where(system = 'http://loinc.org' and code = '8480-6').exists() and value.ofType(Quantity).value > 120).exists()")[0] === true);
      assert.ok(n > 0);
    });

    test('Patient?_has:Observation:subject:code=', async () => {
      const subjects = (code: string) => new Set(byType('Observation')
        .filter((o) => (fp(o, 'Observation.code.coding.code') as string[]).includes(code))
        .map((o) => fp(o, 'Observation.subject.reference')[0] as string));
      for (const code of ['8302-2', '72166-2']) {
        const refs = subjects(code);
        assert.ok((await expect('Patient', `_has:Observation:subject:code=${code}`, (p) => refs.has(`Patient/${p.id}`))) > 0);
      }
    });

    test('Patient/X/Encounter (compartment)', async () => {
      const request: SearchRequest = { ...parse('Encounter', '_count=1000') };
      request.constraints = [compartmentConstraint('Patient', patient.id!, ['Encounter'])];
      const actual = (await store.search(request)).matches.map((m) => m.id).sort();
      const expected = byType('Encounter').filter((e) => fp(e, 'Encounter.subject.reference')[0] === `Patient/${patient.id}`).map((e) => e.id!).sort();
      assert.ok(expected.length > 0);
      assert.deepEqual(actual, expected);
    });
  });
}

function parse(type: string | undefined, query: string, options: Partial<ParseOptions> = {}): SearchRequest {
  return parseSearch(type, [...new URLSearchParams(query)], { maxCount: 1000, defaultCount: 100, lenient: false, ...options }).request;
}

/** The ids found; sorted unless `ordered`, so tests of filtering do not depend on the default order. */
async function ids(store: Store, type: string | undefined, query: string, options: Partial<ParseOptions> & { ordered?: boolean } = {}): Promise<string[]> {
  const result = await store.search(parse(type, query, options));
  const found = result.matches.map((m) => m.id);
  return options.ordered ? found : found.sort();
}

const fixtures: (Resource & { id: string })[] = [
  {
    resourceType: 'Patient', id: 'p1', name: [{ given: ['Ann', 'Marie'], family: 'Bee' }], birthDate: '1980-05-15', gender: 'female', active: true,
    identifier: [{ system: 'mrn', value: '001' }], telecom: [{ system: 'phone', value: '555-1000' }], address: [{ city: 'Springfield' }],
    meta: { tag: [{ system: 's', code: 't1' }], profile: ['http://example.org/fhir/StructureDefinition/my-patient'] },
    generalPractitioner: [{ reference: 'Practitioner/dr1' }],
  },
  {
    resourceType: 'Patient', id: 'p2', name: [{ given: ['José'], family: 'Álvarez' }], birthDate: '1975', gender: 'male', active: false,
    identifier: [{ system: 'mrn', value: '002' }, { system: 'http://other', value: '001' }], address: [{ city: 'Shelbyville' }],
    meta: { tag: [{ system: 's', code: 't2' }], security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' }] },
  },
  { resourceType: 'Patient', id: 'p3', name: [{ given: ['Dick'], family: 'Van,Dyke' }, { family: 'Back\\slash' }], birthDate: '1990-01-01', identifier: [{ system: 'mrn', value: 'a|b' }] },
  { resourceType: 'Patient', id: 'p4', deceasedDateTime: '2020-06-01T12:00:00+02:00', identifier: [{ value: '001' }] },
  { resourceType: 'Practitioner', id: 'dr1', name: [{ family: 'Who', given: ['Doctor'] }], meta: { tag: [{ system: 's', code: 't1' }] } },
  {
    resourceType: 'Observation', id: 'o1', status: 'final', subject: { reference: 'Patient/p1' },
    code: { coding: [{ system: 'http://loinc.org', code: '8302-2', display: 'Body Height' }] }, effectiveDateTime: '2020-03-04T10:00:00Z',
    valueQuantity: { value: 172.5, unit: 'cm', system: 'http://unitsofmeasure.org', code: 'cm' }, performer: [{ reference: 'Practitioner/dr1' }],
  },
  {
    resourceType: 'Observation', id: 'o2', status: 'final', subject: { reference: 'Patient/p1' },
    code: { coding: [{ system: 'http://loinc.org', code: '29463-7', display: 'Body Weight' }] }, effectivePeriod: { start: '2020-01-01', end: '2020-01-31' },
    valueQuantity: { value: 70.25, unit: 'kg', system: 'http://unitsofmeasure.org', code: 'kg' },
    performer: [{ type: 'Practitioner', identifier: { system: 'urn:npi', value: '42' } }],
  },
  {
    resourceType: 'Observation', id: 'o3', status: 'preliminary', subject: { reference: 'Patient/p2' },
    code: { coding: [{ system: 'http://loinc.org', code: '8302-2' }] }, effectiveDateTime: '2019-12-31T23:30:00-02:00',
    valueQuantity: { value: 5.4, unit: 'milligram', system: 'http://unitsofmeasure.org', code: 'mg' },
  },
  { resourceType: 'Observation', id: 'o4', status: 'final', subject: { reference: 'Group/g1' }, code: { coding: [{ system: 'other', code: 'x' }], text: 'Heart rate' }, valueQuantity: { value: 100, unit: 'beats' } },
  {
    resourceType: 'Observation', id: 'o5', status: 'amended', subject: { reference: 'http://other.org/fhir/Patient/p1' },
    code: { coding: [{ system: 'http://loinc.org', code: '8302-2' }] }, effectivePeriod: { start: '2021-01-01' },
  },
  { resourceType: 'RiskAssessment', id: 'r1', status: 'final', subject: { reference: 'Patient/p1' }, prediction: [{ probabilityDecimal: 0.5 }] },
  { resourceType: 'RiskAssessment', id: 'r2', status: 'final', subject: { reference: 'Patient/p1' }, prediction: [{ probabilityRange: { low: { value: 0.1 }, high: { value: 0.3 } } }] },
  { resourceType: 'RiskAssessment', id: 'r3', status: 'final', subject: { reference: 'Patient/p1' }, prediction: [{ probabilityDecimal: 0.55 }] },
];
