import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Pseudonyms } from '../../src/access/pseudonyms.ts';
import { ageCategoryUrl, deIdentify, pseudonymizedLabel, researcherMaySearch } from '../../src/access/de-identification.ts';
import { syntheaBundles } from '../shared-data.ts';

type Json = Record<string, any>;

const key = Buffer.alloc(32, 1);
const p = new Pseudonyms(key);
const now = new Date('2026-06-01T00:00:00Z');
const fhirId = /^[A-Za-z0-9\-.]{1,64}$/;
const masked = { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'masked' }] };
const pseuded = (r: Json) => (r.meta?.security ?? []).some((c: Json) => c.code === pseudonymizedLabel.code && c.system === pseudonymizedLabel.system);

/** deIdentify, also checking on every call that the input is left exactly as it was. */
function deid(resource: Json, at: Date = now): Json {
  const before = structuredClone(resource);
  const out = deIdentify(resource, p, at);
  assert.deepEqual(resource, before, 'the input is not mutated');
  return out;
}

/** Every string value anywhere in a JSON tree, except under the keys skipped. */
function strings(node: unknown, skip: readonly string[] = [], out: string[] = []): string[] {
  if (typeof node === 'string') out.push(node);
  else if (Array.isArray(node)) node.forEach((n) => strings(n, skip, out));
  else if (node && typeof node === 'object') for (const [k, v] of Object.entries(node)) if (!skip.includes(k)) strings(v, skip, out);
  return out;
}

/** Every object that has `key`, anywhere in a JSON tree. */
function objectsWith(node: unknown, key: string, out: Json[] = []): Json[] {
  if (Array.isArray(node)) node.forEach((n) => objectsWith(n, key, out));
  else if (node && typeof node === 'object') {
    if (key in node) out.push(node as Json);
    Object.values(node).forEach((n) => objectsWith(n, key, out));
  }
  return out;
}

describe('Pseudonyms', () => {
  test('deterministic, key-bound, type-bound, valid FHIR ids, and reversible', () => {
    const id = '54c48934-bec2-4773-89f5-f09f6fc6e6f9';
    const a = p.encode('Patient', id);
    assert.equal(a, p.encode('Patient', id));
    assert.equal(a, new Pseudonyms(Buffer.from(key)).encode('Patient', id), 'same key material, same pseudonym');
    assert.notEqual(a, new Pseudonyms(Buffer.alloc(32, 2)).encode('Patient', id), 'another key');
    assert.notEqual(a, p.encode('Observation', id), 'another type');
    assert.notEqual(a, p.encode('Patient', id.replace(/9$/, '8')));
    assert.ok(a.startsWith('x'));
    for (const x of [id, '1', 'a', 'A.b-C', '0'.repeat(39), 'é-not-a-fhir-id']) {
      const pseudonym = p.encode('Patient', x);
      assert.match(pseudonym, fhirId, x);
      assert.equal(p.decode('Patient', pseudonym), x, 'decode(encode(x)) === x');
    }
  });

  test('forged, tampered, foreign or other-type pseudonyms decode to undefined', () => {
    const a = p.encode('Patient', 'abc-123');
    assert.equal(p.decode('Observation', a), undefined, 'another type');
    assert.equal(new Pseudonyms(Buffer.alloc(32, 2)).decode('Patient', a), undefined, 'another key');
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.';
    for (let i = 1; i < a.length; i++) {
      const c = alphabet[(alphabet.indexOf(a[i]) + 1) % alphabet.length];
      assert.equal(p.decode('Patient', a.slice(0, i) + c + a.slice(i + 1)), undefined, `tampered at ${i}`);
    }
    assert.equal(p.decode('Patient', a.slice(0, -1)), undefined, 'truncated');
    assert.equal(p.decode('Patient', `${a}A`), undefined, 'extended');
    for (const junk of ['', 'x', 'xAAAA', 'x!!!!!!!!!!!!!!!', 'abc-123', `y${a.slice(1)}`, 'hAAAAAAAAAAAAAAAAAAAAAA', 'x' + 'A'.repeat(20)]) {
      assert.equal(p.decode('Patient', junk), undefined, junk);
    }
    assert.equal(p.decode('not a type', a), undefined);
  });

  test('ids too long for a 64-character pseudonym get a stable, non-reversible hash', () => {
    const longest = 'a'.repeat(39);
    assert.equal(p.encode('Patient', longest).length, 64, '39 bytes is the longest reversible id');
    const long = 'a'.repeat(40);
    const h = p.encode('Patient', long);
    assert.match(h, /^h[A-Za-z0-9\-.]{22}$/);
    assert.equal(h, p.encode('Patient', long));
    assert.notEqual(h, p.encode('Observation', long));
    assert.equal(p.decode('Patient', h), undefined);
    assert.match(p.encode('Patient', 'b'.repeat(64)), fhirId);
  });

  test('keys shorter than 32 bytes are refused', () => {
    assert.throws(() => new Pseudonyms(Buffer.alloc(31)), /32 bytes/);
  });

  test('rewriteReference keeps the relative Type/pseudonym form only', () => {
    const pat = `Patient/${p.encode('Patient', '123')}`;
    assert.equal(p.rewriteReference('Patient/123'), pat);
    assert.equal(p.rewriteReference('Patient/123/_history/7'), pat, 'versions are a side channel');
    assert.equal(p.rewriteReference('https://ehr.example.org/fhir/Patient/123'), pat, 'no source base');
    assert.equal(p.rewriteReference('http://ehr.example.org/fhir/Patient/123/_history/2'), pat);
    assert.equal(p.rewriteReference('#referral'), '#referral');
    for (const dropped of ['urn:uuid:54c48934-bec2-4773-89f5-f09f6fc6e6f9', 'urn:oid:1.2.3', 'Patient?identifier=http://x|123', 'patient/123', 'Patient', 'Patient/', `Patient/${'a'.repeat(65)}`, 'ftp://x/Patient/1', '']) {
      assert.equal(p.rewriteReference(dropped), undefined, dropped);
    }
  });

  test('uid: a keyed 2.25 OID, stable per value', () => {
    const uid = p.uid('1.2.840.99999999.1.52249557.1559319194750');
    assert.match(uid, /^2\.25\.[1-9][0-9]{0,38}$/);
    assert.equal(uid, p.uid('1.2.840.99999999.1.52249557.1559319194750'));
    assert.notEqual(uid, p.uid('1.2.840.99999999.1.52249557.1559319194751'));
  });
});

describe('deIdentify', () => {
  const patient: Json = {
    resourceType: 'Patient',
    id: 'pat-1',
    meta: { versionId: '3', lastUpdated: '2025-03-04T05:06:07.123Z', source: 'urn:source:ehr-7', profile: ['http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient'], security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'N' }], tag: [{ system: 'urn:t', code: 'study-4' }] },
    text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">Jane Roe, 12 Elm St</div>' },
    extension: [
      { url: 'http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName', valueString: 'Smithers' },
      { url: 'http://hl7.org/fhir/StructureDefinition/patient-birthPlace', valueAddress: { city: 'Springfield', state: 'MA' } },
      { url: 'http://example.org/ext/emergency-contact', valueContactPoint: { system: 'phone', value: '555-0100' } },
      { url: 'http://example.org/ext/alias', valueHumanName: { family: 'Roe-Alias' } },
      { url: 'http://example.org/ext/other-id', valueIdentifier: { value: 'OTHER-9' } },
      { url: 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex', valueCode: 'F' },
      { url: 'http://example.org/ext/first-seen', valueDateTime: '2001-02-03T04:05:06Z' },
      { url: 'http://example.org/ext/nested', extension: [{ url: 'where', valueAddress: { city: 'Springfield' } }] },
      { url: 'http://example.org/ext/mixed', extension: [{ url: 'where', valueAddress: { city: 'Springfield' } }, { url: 'when', valueDate: '1999-12-31' }] },
    ],
    identifier: [{ system: 'http://hl7.org/fhir/sid/us-ssn', value: '999-12-3456' }, { system: 'urn:mrn', value: 'MRN-777', assigner: { display: 'General Hospital' } }],
    name: [{ family: 'Roe', given: ['Jane'] }],
    telecom: [{ system: 'phone', value: '555-0199' }],
    gender: 'female',
    birthDate: '1961-04-05',
    _birthDate: { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/patient-birthTime', valueDateTime: '1961-04-05T06:07:08Z' }] },
    address: [
      { use: 'home', type: 'both', line: ['12 Elm St'], city: 'Springfield', district: 'Hampden', state: 'MA', postalCode: '01101-1234', country: 'US', text: '12 Elm St, Springfield', period: { start: '2001-01-01' } },
      { use: 'old', postalCode: '03601', state: 'NH' },
      { line: ['1 Nowhere Rd'], city: 'Ottawa', postalCode: 'K1A 0B1', country: 'CA' },
      { line: ['only a street'] },
    ],
    photo: [{ contentType: 'image/jpeg', data: 'AAAA' }],
    contact: [{ name: { family: 'Roe', given: ['John'] }, telecom: [{ system: 'phone', value: '555-0123' }] }],
    generalPractitioner: [{ reference: 'Practitioner/dr-1', display: 'Dr Who' }],
    managingOrganization: { reference: 'https://ehr.example.org/fhir/Organization/org-1/_history/4', display: 'General Hospital', identifier: { value: 'ORG-1' } },
    link: [{ other: { reference: 'RelatedPerson/rp-1', display: 'John Roe' }, type: 'seealso' }],
    communication: [{ language: { coding: [{ system: 'urn:ietf:bcp:47', code: 'en-US' }] } }],
  };

  test('ids become pseudonyms; references are rewritten and lose display and identifier', () => {
    const out = deid(patient);
    assert.equal(out.id, p.encode('Patient', 'pat-1'));
    assert.equal(p.decode('Patient', out.id), 'pat-1');
    assert.deepEqual(out.generalPractitioner, [{ reference: `Practitioner/${p.encode('Practitioner', 'dr-1')}` }]);
    assert.deepEqual(out.managingOrganization, { reference: `Organization/${p.encode('Organization', 'org-1')}` });
    assert.deepEqual(out.link, [{ other: { reference: `RelatedPerson/${p.encode('RelatedPerson', 'rp-1')}` }, type: 'seealso' }]);
    // Outside a Bundle a urn:uuid means nothing: dropped, and a Reference left empty says masked.
    const obs = deid({ resourceType: 'Observation', id: 'o', status: 'final', subject: { reference: 'urn:uuid:1b4f', display: 'Jane Roe' }, performer: [{ reference: 'Patient?identifier=urn:mrn|MRN-777' }, { display: 'Dr Who' }, { reference: '#p' }] });
    assert.deepEqual(obs.subject, masked);
    assert.deepEqual(obs.performer, [masked, masked, { reference: '#p' }]);
  });

  test('(A) names, (D-F) telecom, (H-K, R) identifiers, (Q) photos, narrative and mother\'s maiden name are removed', () => {
    const out = deid(patient);
    for (const gone of ['identifier', 'name', 'telecom', 'photo', 'contact', 'text']) assert.equal(out[gone], undefined, gone);
    const json = JSON.stringify(out);
    for (const secret of ['Roe', 'Jane', 'John', 'Smithers', 'Springfield', 'Hampden', 'Elm', '555-0', '999-12-3456', 'MRN-777', 'OTHER-9', 'ORG-1', 'Dr Who', 'General Hospital', 'pat-1', 'dr-1', 'org-1', 'rp-1', 'ehr.example.org', 'ehr-7', 'Ottawa', 'K1A']) {
      assert.ok(!json.includes(secret), `${secret} is gone`);
    }
    assert.equal(out.gender, 'female');
    assert.deepEqual(out.communication, patient.communication);
  });

  test('extensions carrying identifiers are dropped; the rest are kept and walked', () => {
    const out = deid(patient);
    const urls = out.extension.map((e: Json) => e.url);
    assert.deepEqual(urls, ['http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex', 'http://example.org/ext/first-seen', 'http://example.org/ext/mixed']);
    assert.equal(out.extension[1].valueDateTime, '2001');
    assert.deepEqual(out.extension[2].extension, [{ url: 'when', valueDate: '1999' }], 'an emptied extension goes, a partly kept one keeps the rest');
    assert.deepEqual(out._birthDate, { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/patient-birthTime', valueDateTime: '1961' }] });
  });

  test('meta keeps only labels, and gains PSEUDED once', () => {
    const out = deid(patient);
    assert.deepEqual(out.meta, { security: [patient.meta.security[0], pseudonymizedLabel], tag: patient.meta.tag });
    assert.deepEqual(deid({ resourceType: 'Basic', meta: { security: [pseudonymizedLabel] } }).meta, { security: [pseudonymizedLabel] });
    assert.deepEqual(deid({ resourceType: 'Basic' }).meta, { security: [pseudonymizedLabel] });
  });

  test('(B) addresses keep state, country, use, type and a 3-digit ZIP (000 where restricted)', () => {
    const out = deid(patient);
    assert.deepEqual(out.address, [
      { use: 'home', type: 'both', state: 'MA', country: 'US', postalCode: '011' },
      { use: 'old', state: 'NH', postalCode: '000' },
      { country: 'CA' },
      masked,
    ]);
    for (const zip3 of ['036', '059', '063', '102', '203', '556', '692', '790', '821', '823', '830', '831', '878', '879', '884', '890', '893']) {
      assert.equal(deid({ resourceType: 'Patient', address: [{ postalCode: `${zip3}42` }] }).address[0].postalCode, '000', zip3);
    }
    assert.equal(deid({ resourceType: 'Patient', address: [{ postalCode: '03742' }] }).address[0].postalCode, '037');
    const loc = deid({ resourceType: 'Location', id: 'l', name: 'Ward 4', address: { line: ['1 Main'], city: 'Reading', postalCode: '01867', state: 'MA' }, position: { latitude: 42.5, longitude: -71.1 } });
    assert.deepEqual(loc.address, { state: 'MA', postalCode: '018' });
    assert.equal(loc.position, undefined);
    const claim = deid({ resourceType: 'Claim', accident: { date: '2020-02-03', locationAddress: { line: ['I-93'], city: 'Boston', state: 'MA' } } });
    assert.deepEqual(claim.accident, { date: '2020', locationAddress: { state: 'MA' } });
  });

  test('(C) every date, dateTime, instant and Period becomes its year, wherever it is', () => {
    const out = deid({
      resourceType: 'Observation',
      id: 'o1',
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '8302-2', version: '2020-06' }], text: '2020-06-30' },
      effectivePeriod: { start: '2019-03-04T05:06:07+02:00', end: '2019-12' },
      issued: '2019-03-04T05:06:07.891Z',
      valueString: 'not a date 2019-03-04',
      component: [{ code: { text: 'x' }, valueDateTime: '2018-01-02' }],
      extension: [{ url: 'http://example.org/ext/recorded', valueInstant: '2017-05-06T07:08:09Z' }],
    });
    assert.deepEqual(out.effectivePeriod, { start: '2019', end: '2019' });
    assert.equal(out.issued, '2019');
    assert.equal(out.component[0].valueDateTime, '2018');
    assert.equal(out.extension[0].valueInstant, '2017');
    assert.equal(out.code.coding[0].version, '2020-06', 'codes and versions are never dates');
    assert.equal(out.code.text, '2020', 'a whole string that is a date is generalised, whatever its element');
    assert.equal(out.valueString, 'not a date 2019-03-04', 'free text is not parsed');
    const cond = deid({ resourceType: 'Condition', onsetDateTime: '2001-02-03', recordedDate: '2001-02-04', abatementString: '2001' });
    assert.deepEqual([cond.onsetDateTime, cond.recordedDate, cond.abatementString], ['2001', '2001', '2001']);
    const mr = deid({ resourceType: 'MedicationRequest', authoredOn: '2010-10-10T10:10:10Z' });
    assert.equal(mr.authoredOn, '2010');
  });

  test('(C) people aged 90 or older: birth date and death date give way to an age category', () => {
    const old = deid({ resourceType: 'Patient', id: 'old', birthDate: '1930-07-01', extension: [{ url: 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex', valueCode: 'M' }] });
    assert.equal(old.birthDate, undefined);
    assert.deepEqual(old.extension.at(-1), { url: ageCategoryUrl, valueString: '90 or older' });
    assert.equal(old.extension.length, 2);
    const ninety = deid({ resourceType: 'Patient', birthDate: '1936' });
    assert.equal(ninety.birthDate, undefined, '2026 - 1936 = 90: counted by year, erring towards removal');
    const eightyNine = deid({ resourceType: 'Patient', birthDate: '1937-12-31' });
    assert.equal(eightyNine.birthDate, '1937');
    assert.equal(eightyNine.extension, undefined);
    const diedOld = deid({ resourceType: 'Patient', birthDate: '1910-09-19', _birthDate: { id: 'b' }, deceasedDateTime: '2005-03-22T23:11:46+00:00' });
    assert.equal(diedOld.birthDate, undefined);
    assert.equal(diedOld._birthDate, undefined);
    assert.equal(diedOld.deceasedDateTime, undefined);
    assert.equal(diedOld.deceasedBoolean, true);
    const diedYoung = deid({ resourceType: 'Patient', birthDate: '1910-09-19', deceasedDateTime: '1993-03-22T23:11:46+00:00' });
    assert.deepEqual([diedYoung.birthDate, diedYoung.deceasedDateTime], ['1910', '1993'], 'age is counted at death: 83');
    const relative = deid({ resourceType: 'RelatedPerson', birthDate: '1920-01-01', name: [{ text: 'Old Roe' }], telecom: [{ value: '555-0111' }], address: [{ city: 'Reading', state: 'MA' }] });
    assert.deepEqual(relative, { resourceType: 'RelatedPerson', address: [{ state: 'MA' }], extension: [{ url: ageCategoryUrl, valueString: '90 or older' }], meta: { security: [pseudonymizedLabel] } });
  });

  test('(C) Age quantities above 89 years become >= 90', () => {
    const ucum = 'http://unitsofmeasure.org';
    const c = deid({ resourceType: 'Condition', onsetAge: { value: 95, unit: 'years', system: ucum, code: 'a' } });
    assert.deepEqual(c.onsetAge, { value: 90, comparator: '>=', unit: 'years', system: ucum, code: 'a' });
    assert.deepEqual(deid({ resourceType: 'Condition', onsetAge: { value: 89, unit: 'yr', system: ucum, code: 'a' } }).onsetAge, { value: 89, unit: 'yr', system: ucum, code: 'a' });
    assert.deepEqual(deid({ resourceType: 'Condition', onsetAge: { value: 1100, unit: 'months', system: ucum, code: 'mo' } }).onsetAge, { value: 90, comparator: '>=', unit: 'years', system: ucum, code: 'a' });
    const range = deid({ resourceType: 'Condition', onsetRange: { low: { value: 85, system: ucum, code: 'a' }, high: { value: 99, system: ucum, code: 'a' } } });
    assert.deepEqual(range.onsetRange.high, { value: 90, comparator: '>=', system: ucum, code: 'a' });
    assert.deepEqual(deid({ resourceType: 'Observation', valueQuantity: { value: 120, unit: 'mg', system: ucum, code: 'mg' } }).valueQuantity.value, 120);
  });

  test('Practitioner, RelatedPerson and Person names go; Organization names stay; HumanNames anywhere go', () => {
    for (const resourceType of ['Practitioner', 'RelatedPerson', 'Person']) {
      assert.equal(deid({ resourceType, name: [{ family: 'Legros', given: ['Annette'] }] }).name, undefined, resourceType);
    }
    const org = deid({ resourceType: 'Organization', name: 'ANNA JAQUES HOSPITAL', contact: [{ name: { family: 'Payer', given: ['Pat'] }, telecom: [{ value: '555' }], purpose: { text: 'billing' } }] });
    assert.equal(org.name, 'ANNA JAQUES HOSPITAL');
    assert.deepEqual(org.contact, [{ purpose: { text: 'billing' } }]);
  });

  test('notes, Attachment urls/data/titles, device serials, subscriber ids and signatures are removed', () => {
    const doc = deid({
      resourceType: 'DocumentReference',
      masterIdentifier: { value: 'DOC-1' },
      content: [{ attachment: { contentType: 'text/plain', language: 'en', url: 'https://ehr.example.org/Binary/9', data: 'SmFuZSBSb2U=', title: 'Jane Roe discharge', hash: 'abc', size: 9, creation: '2020-01-02T03:04:05Z' } }],
    });
    assert.equal(doc.masterIdentifier, undefined);
    assert.deepEqual(doc.content, [{ attachment: { contentType: 'text/plain', language: 'en', size: 9, creation: '2020' } }]);
    const report = deid({ resourceType: 'DiagnosticReport', presentedForm: [{ url: 'https://ehr.example.org/r.pdf', title: 'r' }], note: [{ text: 'Jane said...', time: '2020-01-01' }] });
    assert.deepEqual(report.presentedForm, [masked]);
    assert.equal(report.note, undefined);
    const device = deid({ resourceType: 'Device', id: 'd', serialNumber: 'SN-1', lotNumber: 'LOT-1', udiCarrier: [{ deviceIdentifier: 'UDI' }], distinctIdentifier: 'DI', url: 'http://10.0.0.4/pump', modelNumber: 'M-100', patient: { reference: 'Patient/pat-1' } });
    assert.deepEqual(Object.keys(device).sort(), ['id', 'meta', 'modelNumber', 'patient', 'resourceType']);
    const coverage = deid({ resourceType: 'Coverage', subscriberId: 'SUB-1', beneficiary: { reference: 'Patient/pat-1' }, status: 'active' });
    assert.equal(coverage.subscriberId, undefined);
    assert.equal(coverage.status, 'active');
    const prov = deid({ resourceType: 'Provenance', recorded: '2020-01-01T00:00:00Z', signature: [{ who: { reference: 'Practitioner/1' }, data: 'c2ln' }] });
    assert.equal(prov.signature, undefined);
  });

  test('ImagingStudy DICOM UIDs are replaced by keyed 2.25 UIDs', () => {
    const study = deid({ resourceType: 'ImagingStudy', identifier: [{ value: 'urn:oid:1.2.3' }], series: [{ uid: '1.2.3.4', instance: [{ uid: '1.2.3.4.5', sopClass: { system: 'urn:ietf:rfc:3986', code: '1.2.840.10008.5.1.4.1.1.1.1' } }] }] });
    assert.equal(study.series[0].uid, p.uid('1.2.3.4'));
    assert.equal(study.series[0].instance[0].uid, p.uid('1.2.3.4.5'));
    assert.equal(study.series[0].instance[0].sopClass.code, '1.2.840.10008.5.1.4.1.1.1.1', 'a class, not an instance');
  });

  test('contained resources are de-identified with the same rules; their local ids and # references stay', () => {
    const eob = deid({
      resourceType: 'ExplanationOfBenefit',
      id: 'eob-1',
      contained: [
        { resourceType: 'Coverage', id: 'coverage', subscriberId: 'SUB-9', beneficiary: { reference: 'Patient/pat-1', display: 'Jane Roe' }, meta: { lastUpdated: '2020-01-01T00:00:00Z' } },
        { resourceType: 'RelatedPerson', id: 'rp', name: [{ family: 'Roe' }], telecom: [{ value: '555-0142' }], birthDate: '1970-03-03' },
      ],
      insurance: [{ focal: true, coverage: { reference: '#coverage' } }],
      created: '2020-05-05T00:00:00Z',
    });
    assert.deepEqual(eob.contained, [
      { resourceType: 'Coverage', id: 'coverage', beneficiary: { reference: `Patient/${p.encode('Patient', 'pat-1')}` } },
      { resourceType: 'RelatedPerson', id: 'rp', birthDate: '1970' },
    ]);
    assert.deepEqual(eob.insurance, [{ focal: true, coverage: { reference: '#coverage' } }]);
    assert.ok(pseuded(eob));
  });

  test('a search Bundle passes through: entries de-identified, fullUrls relative, links by urn:uuid resolved', () => {
    const bundle = deid({
      resourceType: 'Bundle',
      id: 'b1',
      type: 'searchset',
      total: 2,
      timestamp: '2026-05-05T01:02:03Z',
      identifier: { value: 'BUNDLE-1' },
      meta: { lastUpdated: '2026-05-05T01:02:03Z' },
      entry: [
        { fullUrl: 'https://ehr.example.org/fhir/Patient/pat-1', resource: { resourceType: 'Patient', id: 'pat-1', name: [{ family: 'Roe' }] }, search: { mode: 'match', score: 1 } },
        { fullUrl: 'urn:uuid:0b8f', resource: { resourceType: 'Observation', status: 'final', subject: { reference: 'Patient/pat-1' }, hasMember: [{ reference: 'urn:uuid:0b8f' }] }, search: { mode: 'include' } },
        { fullUrl: 'urn:uuid:ab12', resource: { resourceType: 'Encounter', id: 'enc-1', subject: { reference: 'urn:uuid:unknown' } }, request: { method: 'POST', url: 'Encounter', ifNoneExist: 'identifier=urn:mrn|MRN-777' }, response: { status: '201 Created', location: 'Encounter/enc-1/_history/1', etag: 'W/"1"', lastModified: '2026-05-05T01:02:03Z' } },
        { fullUrl: 'urn:oid:1.2.3', request: { method: 'PUT', url: 'Patient?identifier=urn:mrn|MRN-777' } },
      ],
    });
    const patId = p.encode('Patient', 'pat-1');
    assert.equal(bundle.id, p.encode('Bundle', 'b1'));
    assert.equal(bundle.identifier, undefined);
    assert.equal(bundle.timestamp, '2026');
    assert.equal(bundle.total, 2);
    assert.ok(pseuded(bundle));
    const [pat, obs, enc, put] = bundle.entry;
    assert.deepEqual(pat, { fullUrl: `Patient/${patId}`, resource: { resourceType: 'Patient', id: patId, meta: { security: [pseudonymizedLabel] } }, search: { mode: 'match', score: 1 } });
    assert.equal(obs.fullUrl, `Observation/${p.encode('Observation', '0b8f')}`, 'a POSTed entry without id: its urn:uuid stands in');
    assert.equal(obs.resource.subject.reference, `Patient/${patId}`);
    assert.deepEqual(obs.resource.hasMember, [{ reference: obs.fullUrl }]);
    assert.equal(enc.fullUrl, `Encounter/${p.encode('Encounter', 'enc-1')}`);
    assert.deepEqual(enc.resource.subject, masked, 'a urn:uuid not in the Bundle cannot be resolved');
    assert.deepEqual(enc.request, { method: 'POST', url: 'Encounter' });
    assert.deepEqual(enc.response, { status: '201 Created', location: enc.fullUrl });
    assert.deepEqual(put, {}, 'conditional URLs and urn:oid fullUrls are dropped');
    assert.ok(!JSON.stringify(bundle).includes('MRN-777'));
  });
});

describe('real Synthea patient bundles', () => {
  // All 40: among them a man born 1910 who died at 83, people alive and over 90 (born 1913, 1926),
  // a woman who died at 77, and a child who died at 7.
  const files = readdirSync(syntheaBundles).filter((f) => f.endsWith('.json')).sort();
  assert.ok(files.length > 0, `Synthea bundles in ${syntheaBundles}`);
  for (const file of files) {
    test(file.replace(/_[0-9a-f-]+\.json$/, ''), () => {
      const raw = readFileSync(join(syntheaBundles, file), 'utf8');
      const original = JSON.parse(raw) as Json;
      const out = deIdentify(original, p, now) as Json;
      assert.equal(JSON.stringify(original), JSON.stringify(JSON.parse(raw)), 'the input is not mutated');
      const json = JSON.stringify(out);
      const resources: Json[] = original.entry.map((e: Json) => e.resource);
      const patient = resources.find((r) => r.resourceType === 'Patient')!;

      // What must not survive: names, identifier values, phones, street lines, cities, full dates, real ids.
      const secrets = new Set<string>();
      for (const r of resources) {
        secrets.add(r.id);
        for (const n of objectsWith(r, 'family')) [n.family, ...(n.given ?? [])].forEach((s: string) => secrets.add(s));
        for (const i of objectsWith(r, 'identifier')) for (const id of [i.identifier].flat()) if (typeof id.value === 'string') secrets.add(id.value);
        for (const t of [r.telecom ?? []].flat()) secrets.add(t.value);
        for (const a of objectsWith(r, 'line')) a.line.forEach((l: string) => secrets.add(l));
      }
      for (const a of [...objectsWith(patient, 'city')]) secrets.add(a.city); // the patient's home and birthplace
      const maiden = patient.extension.find((e: Json) => e.url.endsWith('mothersMaidenName'));
      if (maiden) maiden.valueString.split(' ').forEach((s: string) => secrets.add(s));
      secrets.add(patient.birthDate);
      if (patient.deceasedDateTime) secrets.add(patient.deceasedDateTime.slice(0, 10));
      secrets.add('Person seed');
      // Whole values anywhere but in codes (an NPI "20" is also a place-of-service code), and longer
      // text as a word inside any string (a name in free text; "America" inside "African American" is not one).
      const values = new Set(strings(out, ['code', 'system', 'version']));
      for (const secret of secrets) {
        assert.ok(!values.has(secret), `"${secret}" leaked`);
        if (secret.length >= 4 && !/^\d+$/.test(secret)) assert.doesNotMatch(json, new RegExp(`(?<![A-Za-z0-9])${secret.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![A-Za-z0-9])`), `"${secret}" leaked`);
      }
      assert.ok(secrets.size > 20);

      // No date finer than a year anywhere; every reference is a pseudonym that resolves in the Bundle.
      for (const s of strings(out)) assert.doesNotMatch(s, /^\d{4}-\d{2}/);
      const ids = new Set(out.entry.map((e: Json) => `${e.resource.resourceType}/${e.resource.id}`));
      assert.equal(ids.size, out.entry.length);
      for (const e of out.entry) assert.equal(e.fullUrl, `${e.resource.resourceType}/${e.resource.id}`);
      const refs = objectsWith(out, 'reference').map((r) => r.reference as string);
      assert.ok(refs.length > 100);
      for (const ref of refs) assert.ok(ref.startsWith('#') || ids.has(ref), `${ref} resolves`);

      const deidPatient = out.entry.find((e: Json) => e.resource.resourceType === 'Patient').resource;
      assert.equal(p.decode('Patient', deidPatient.id), patient.id);
      const observations = out.entry.filter((e: Json) => e.resource.resourceType === 'Observation').map((e: Json) => e.resource);
      assert.ok(observations.length > 0);
      for (const o of observations) {
        assert.equal(o.subject.reference, `Patient/${deidPatient.id}`);
        assert.ok(pseuded(o));
        assert.equal(o.meta.lastUpdated, undefined);
      }
      for (const [i, e] of out.entry.entries()) {
        assert.equal(p.decode(e.resource.resourceType, e.resource.id), original.entry[i].resource.id, 'every id decodes to the original');
      }

      const born = Number(patient.birthDate.slice(0, 4));
      const at = patient.deceasedDateTime ? Number(patient.deceasedDateTime.slice(0, 4)) : now.getUTCFullYear();
      if (at - born >= 90) {
        assert.equal(deidPatient.birthDate, undefined);
        assert.ok(deidPatient.extension.some((x: Json) => x.url === ageCategoryUrl && x.valueString === '90 or older'));
      } else {
        assert.equal(deidPatient.birthDate, String(born));
      }
      assert.ok(deidPatient.address.every((a: Json) => Object.keys(a).every((k) => ['state', 'country', 'postalCode', 'use', 'type'].includes(k))));
    });
  }
});

describe('researcherMaySearch', () => {
  const ok = (code: string, type: string, value: string) => assert.deepEqual(researcherMaySearch(code, type, value, now), { ok: true }, `${code}=${value} is allowed`);
  const no = (code: string, type: string, value: string, reason: RegExp) => {
    const verdict = researcherMaySearch(code, type, value, now);
    assert.equal(verdict.ok, false, `${code}=${value} is denied`);
    if (!verdict.ok) assert.match(verdict.reason, reason);
  };

  test('string, identifier, telecom, free-text and uri parameters are denied', () => {
    for (const code of ['name', 'family', 'given', 'address', 'address-city', 'phonetic']) no(code, 'string', 'Smith', /Text parameters/);
    no('name:exact', 'string', 'Smith', /Text parameters/);
    no('identifier', 'token', 'http://hl7.org/fhir/sid/us-ssn|999-12-3456', /identifier/);
    no('identifier:of-type', 'token', 'x|MR|1', /identifier/);
    for (const code of ['telecom', 'phone', 'email']) no(code, 'token', '555-0199', /phone|email/);
    no('address-postalcode', 'string', '01101', /postal code/);
    no('_text', 'string', 'Roe', /narrative/);
    no('_content', 'string', 'Roe', /free text/);
    no('_filter', 'special', 'name eq Roe', /_filter/);
    no('url', 'uri', 'http://x', /URI/);
    no('near', 'special', '42.5|-71.1|10|km', /coordinates/);
    no('subject:identifier', 'reference', 'urn:mrn|MRN-777', /:identifier/);
    no('subject.name', 'string', 'Roe', /Chained/);
    no('_has:Observation:patient:code', 'token', '1234-5', /Chained/);
    no('instance', 'token', '1.2.3', /DICOM/);
    no('_source', 'uri', 'x', /not available/);
  });

  test('dates only by year; birth years only where they are shown', () => {
    for (const v of ['1950', 'ge1950', 'lt2000', 'eq2020', 'ap2019', 'sa2010,eb2012']) ok('date', 'date', v);
    for (const v of ['1950-03', 'ge1950-03-04', '2020-01-01T00:00:00Z', '1950,1950-01', '195', 'ge19500']) no('date', 'date', v, /by year/);
    ok('_lastUpdated', 'date', 'ge2020');
    no('_lastUpdated', 'date', 'ge2020-05-01', /by year/);
    ok('birthdate', 'date', 'ge1950');
    ok('birthdate', 'date', 'lt1937');
    no('birthdate', 'date', 'lt1936', /90 or older/);
    no('birthdate', 'date', '1920', /90 or older/);
    no('birthdate', 'date', '1987-03-04', /by year/);
    no('death-date', 'date', '2001', /date of death/);
    ok('date:missing', 'date', 'true');
    no('code-value-date', 'composite', 'http://loinc.org|1234-5$ge2020-05-01', /by year/);
    ok('code-value-date', 'composite', 'http://loinc.org|1234-5$ge2020');
  });

  test('tokens, references, numbers, quantities and result controls are allowed', () => {
    ok('code', 'token', 'http://loinc.org|8302-2');
    ok('gender', 'token', 'female');
    ok('code:text', 'token', 'height');
    ok('subject', 'reference', `Patient/${p.encode('Patient', 'pat-1')}`);
    ok('subject:Patient', 'reference', p.encode('Patient', 'pat-1'));
    ok('probability', 'number', 'gt0.5');
    ok('value-quantity', 'quantity', 'gt100|http://unitsofmeasure.org|mg');
    ok('value-quantity', 'quantity', 'gt100');
    ok('code-value-quantity', 'composite', 'http://loinc.org|8480-6$gt140');
    no('identifier:missing', 'token', 'true', /identifier/);
    for (const [code, value] of [['_id', p.encode('Patient', 'pat-1')], ['_count', '50'], ['_summary', 'count'], ['_total', 'accurate'], ['_include', 'Observation:subject'], ['_revinclude', 'Observation:patient'], ['_elements', 'code,value'], ['_tag', 'urn:t|study-4'], ['_security', 'R']]) {
      ok(code, 'special', value);
    }
    no('_list', 'special', '42', /not available/);
  });

  test('ages above 89 cannot be searched more finely than "90 or older"', () => {
    ok('onset-age', 'quantity', 'lt89||a');
    no('onset-age', 'quantity', 'gt95||a', /90 or older/);
    no('onset-age', 'quantity', 'gt95', /90 or older/);
    no('value-quantity', 'quantity', 'ge92|http://unitsofmeasure.org|a', /90 or older/);
  });

  test('_sort only on values the view shows unchanged', () => {
    ok('_sort', 'special', 'status');
    ok('_sort', 'special', '-value-quantity,code');
    for (const key of ['date', '-birthdate', '_lastUpdated', 'name', 'family', 'subject', '_id', 'identifier', 'onset-age', 'status,-date', 'made-up']) no('_sort', 'special', key, /_sort=/);
  });
});
