import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Resource } from '../../src/fhir/types.ts';
import { extractIndexRows, type IndexRows } from '../../src/fhir/search/extract.ts';
import { compileCompositeWithEngine, compileWithEngine, type CompositeEvaluator, type Evaluator } from '../../src/fhir/search/evaluate.ts';
import { componentKey, splitUnion, type SearchParam } from '../../src/fhir/search/params.ts';
import { parseSimplePath } from '../../src/fhir/search/path.ts';
import { loadSynthea } from './search-synthea.ts';

/** Everything through the full FHIRPath engine: the reference the fast path must equal. */
const engineCache = new Map<string, Evaluator>();
function engineEvaluator(resourceType: string, param: SearchParam): Evaluator {
  const key = `${resourceType}.${param.code}`;
  let e = engineCache.get(key);
  if (!e) {
    e = param.expression === undefined ? () => [] : compileWithEngine(param.expression);
    engineCache.set(key, e);
  }
  return e;
}

const compositeEngineCache = new Map<string, CompositeEvaluator>();
function compositeEngine(resourceType: string, param: SearchParam, parts: readonly { expression: string }[]): CompositeEvaluator {
  const key = `${resourceType}.${param.code}`;
  let e = compositeEngineCache.get(key);
  if (!e) {
    e = param.expression === undefined ? () => [] : compileCompositeWithEngine(param.expression, parts.map((p) => p.expression));
    compositeEngineCache.set(key, e);
  }
  return e;
}

const byEngine = (resource: Resource) => extractIndexRows(resource, engineEvaluator, compositeEngine);

function sorted(rows: IndexRows): Record<string, string[]> {
  return Object.fromEntries(Object.entries(rows).map(([table, list]) => [table, (list as object[]).map((r) => JSON.stringify(r)).sort()]));
}

const handmade: Resource[] = [
  {
    resourceType: 'Observation', id: 'o1', status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code: '1234-5', display: 'Thing' }], text: 'The thing' },
    subject: { reference: 'http://example.org/fhir/Patient/p9' },
    performer: [{ type: 'Practitioner', identifier: { system: 'urn:npi', value: '42' } }, { reference: 'Organization/org1' }],
    valuePeriod: { start: '2020-01-01', end: '2020-02' },
    component: [{ code: { text: 'c' }, valueQuantity: { value: 5.4, unit: 'mg', system: 'http://unitsofmeasure.org', code: 'mg' } }, { code: { coding: [{ code: 'x' }] }, valueCodeableConcept: { text: 'yes' } }],
    meta: { profile: ['http://example.org/StructureDefinition/p'], tag: [{ system: 's', code: 't' }], security: [{ code: 'R' }], source: 'urn:src' },
  },
  { resourceType: 'Observation', id: 'o2', status: 'final', code: { text: 'x' }, valueString: 'Héllo Wörld', subject: { reference: 'Group/g1' }, effectiveInstant: '2021-03-04T05:06:07.891Z' },
  { resourceType: 'Observation', id: 'o3', status: 'final', code: { text: 'x' }, valueCodeableConcept: { coding: [{ system: 's', code: 'c' }], text: 'Positive' }, effectiveTiming: { event: ['2020-05-05', '2020-06-06'], repeat: { boundsPeriod: { start: '2020-01-01T00:00:00Z' } } } },
  {
    resourceType: 'Patient', id: 'p1', deceasedDateTime: '2020-01-01T10:00:00+02:00', _birthDate: { extension: [{ url: 'x', valueString: 'y' }] },
    telecom: [{ system: 'email', value: 'a@b.c' }, { system: 'phone', value: '555' }], name: [{ text: 'Dr Ann Bee', given: ['Ann', 'Marie'], family: 'Bee', prefix: ['Dr'] }],
    address: [{ line: ['1 Main St'], city: 'Springfield', postalCode: '12345', country: 'US' }], generalPractitioner: [{ reference: 'Practitioner/dr1' }],
  },
  { resourceType: 'Patient', id: 'p2', deceasedBoolean: true, active: false },
  { resourceType: 'Condition', id: 'c1', subject: { reference: 'Patient/p1/_history/3' }, onsetAge: { value: 40, unit: 'a', system: 'http://unitsofmeasure.org', code: 'a' }, abatementString: 'in remission', recordedDate: '2020' },
  { resourceType: 'Condition', id: 'c2', subject: { reference: 'Group/g1' }, onsetPeriod: { start: '2019-05' }, abatementDateTime: '2020-01-01' },
  { resourceType: 'MedicationRequest', id: 'm1', status: 'active', intent: 'order', subject: { reference: 'Patient/p1' }, medicationReference: { reference: 'Medication/med1' } },
  { resourceType: 'MedicationRequest', id: 'm2', status: 'active', intent: 'order', subject: { reference: 'Patient/p1' }, medicationCodeableConcept: { coding: [{ system: 'rx', code: '1' }] } },
  { resourceType: 'Group', id: 'g1', type: 'person', actual: true, characteristic: [{ code: { text: 'c' }, valueBoolean: true, exclude: false }, { code: { text: 'd' }, valueQuantity: { value: 3 }, exclude: false }] },
  { resourceType: 'RiskAssessment', id: 'r1', status: 'final', subject: { reference: 'Patient/p1' }, occurrenceDateTime: '2020-02-02', prediction: [{ probabilityDecimal: 0.5 }, { probabilityRange: { low: { value: 0.1 }, high: { value: 0.3 } } }] },
  { resourceType: 'CarePlan', id: 'cp1', status: 'active', intent: 'plan', subject: { reference: 'Patient/p1' }, activity: [{ detail: { status: 'scheduled', scheduledTiming: { event: ['2020-01-01T10:00:00Z'] } } }, { detail: { status: 'scheduled', scheduledPeriod: { end: '2021' } } }] },
  { resourceType: 'InsurancePlan', id: 'ip1', name: 'Gold Plan', alias: ['Goldie'] },
  { resourceType: 'Bundle', id: 'b1', type: 'document', identifier: { system: 's', value: 'v' }, entry: [{ resource: { resourceType: 'Composition', id: 'x' } }] },
  { resourceType: 'Person', id: 'pe1', link: [{ target: { reference: 'Patient/p1' } }, { target: { reference: 'RelatedPerson/rp1' } }] },
  { resourceType: 'Observation', id: 'o4', status: 'final', code: { coding: [{ code: 'd' }] }, valueDateTime: '2020-03-15', component: [{ code: { text: 'p' }, valuePeriod: { start: '2020' } }] },
  { resourceType: 'Encounter', id: 'e1', status: 'finished', class: { code: 'AMB' }, subject: { reference: 'Patient/p1' }, period: { start: '2020-01-01T10:00:00Z', end: '2020-01-01T11:00:00Z' }, participant: [{ individual: { reference: 'Practitioner/dr1' } }, { individual: { type: 'RelatedPerson', reference: 'RelatedPerson/rp1' } }], length: { value: 60, unit: 'min' } },
];

test('the fast path indexes exactly what the FHIRPath engine selects (hand-made edge cases)', () => {
  for (const resource of handmade) {
    assert.deepEqual(sorted(extractIndexRows(resource)), sorted(byEngine(resource)), `${resource.resourceType}/${resource.id}`);
  }
});

test('the fast path indexes exactly what the FHIRPath engine selects (Synthea)', () => {
  const resources = loadSynthea(8);
  assert.ok(resources.length > 1000);
  for (const resource of resources) {
    assert.deepEqual(sorted(extractIndexRows(resource)), sorted(byEngine(resource)), `${resource.resourceType}/${resource.id}`);
  }
});

test('hand-made resources produce the rows search relies on', () => {
  const rows = extractIndexRows(handmade[0]);
  assert.ok(rows.reference.some((r) => r.type === 'Patient' && r.id === null && r.ref === 'http://example.org/fhir/Patient/p9'), 'another server: by text only');
  assert.ok(extractIndexRows(handmade[5]).reference.some((r) => r.type === 'Patient' && r.id === 'p1' && r.ref === null), 'local: by type and id');
  assert.ok(rows.reference.some((r) => r.type === 'Practitioner' && r.id === null), 'identifier-only reference still has a row');
  assert.ok(rows.token.some((t) => t.system === 'urn:npi' && t.code === '42'), 'reference identifier indexed as token');
  assert.ok(rows.date.some((d) => d.lo === Date.UTC(2020, 0, 1) && d.hi === Date.UTC(2020, 2, 1)), 'valuePeriod as [start, end of Feb)');
  assert.ok(rows.token.some((t) => t.text === 'the thing' && t.code === null));
  const o2 = extractIndexRows(handmade[1]);
  assert.ok(o2.string.some((s) => s.norm === 'hello world' && s.exact === 'Héllo Wörld'));
  assert.ok(!o2.reference.some((r) => r.type === 'Patient'), 'subject is a Group: no patient row');
  const p1 = extractIndexRows(handmade[3]);
  assert.deepEqual(p1.token.filter((t) => t.code === 'true' || t.code === 'false').length, 1, 'deceased evaluated by the engine fallback');
  assert.ok(p1.string.some((s) => s.exact === 'Marie'));
});

test('composite parameters: the parts of one base node share a group, across all composite forms', () => {
  const rows = extractIndexRows(handmade[0]);
  // Observation.component[0]: code text 'c' and 5.4 mg; component[1]: code x and a concept.
  const [codeKey, valueKey] = [0, 1].map((i) => componentKey('Observation', 'component-code-value-quantity', i));
  const quantity = rows.quantity.find((q) => q.key === valueKey && q.code === 'mg')!;
  const sameNode = rows.token.filter((t) => t.key === codeKey && t.grp === quantity.grp);
  assert.ok(!sameNode.some((t) => t.code === 'x'), 'the other component is another group');
  assert.ok(!rows.token.some((t) => t.grp !== undefined && t.code === null), 'parts match on codes: no text-only rows');
  const combo = componentKey('Observation', 'combo-code-value-quantity', 0);
  assert.ok(![...rows.token, ...rows.quantity].some((r) => r.key === combo), 'combo-... is searched through code-... and component-...');
  const ms = { resourceType: 'MolecularSequence', id: 'ms', coordinateSystem: 0, referenceSeq: { chromosome: { coding: [{ code: '1' }] }, genomeBuild: 'GRCh38' }, variant: [{ start: 5, end: 7 }] };
  assert.deepEqual(sorted(extractIndexRows(ms)), sorted(byEngine(ms)), '%resource parts run on the engine');
  assert.ok(extractIndexRows(ms).number.some((n) => n.grp !== undefined && n.lo === 5));
});

test('every R4 expression part outside the fast subset is known and handled by the engine', () => {
  // Guards the subset: a new definitions package with new forms shows up here, not as silent gaps.
  const roots = ['Patient', 'Resource', 'DomainResource'];
  assert.ok(parseSimplePath('(Observation.value.ofType(CodeableConcept)).text', ['Observation', ...roots]));
  assert.ok(parseSimplePath('Bundle.entry[0].resource', ['Bundle']));
  assert.equal(parseSimplePath('Patient.deceased.exists() and Patient.deceased != false', roots), undefined);
  assert.deepEqual(splitUnion("a.where(x='|') | (b | c).d"), ["a.where(x='|')", '(b | c).d']);
});
