import { sharedData } from '../shared-data.ts';
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import r4Model from 'fhirpath/fhir-context/r4';
import { validateResource, MAX_DEPTH, MAX_ISSUES } from '../../src/fhir/validation/validate.ts';
import { validationModel, type ComplexType } from '../../src/fhir/validation/model.ts';
import { expandValueSet } from '../../src/fhir/validation/bindings.ts';
import { NON_R4_ELEMENTS } from '../../src/fhir/validation/r4-corrections.ts';
import { resourceDefinitions, typeDefinitions } from '../../src/fhir/definitions.ts';
import type { OperationOutcomeIssue } from '../../src/fhir/types.ts';

const SYNTHEA = `${sharedData}synthea`;

/** Asserts exactly one issue, with this code at this location. */
function expectIssue(resource: unknown, code: string, expression: string, options?: { expectedType?: string }): OperationOutcomeIssue {
  const issues = validateResource(resource, options);
  assert.equal(issues.length, 1, `expected one issue, got ${JSON.stringify(issues, null, 1)}`);
  const [found] = issues;
  assert.equal(found.severity, 'error');
  assert.equal(found.code, code, JSON.stringify(found));
  assert.deepEqual(found.expression, [expression], JSON.stringify(found));
  assert.ok(found.diagnostics && found.diagnostics.length > 10, 'diagnostics explain the problem');
  return found;
}

function expectValid(resource: unknown, options?: { expectedType?: string }): void {
  assert.deepEqual(validateResource(resource, options), []);
}

const patient = (extra: Record<string, unknown>) => ({ resourceType: 'Patient', ...extra });
const observation = (extra: Record<string, unknown>) => ({
  resourceType: 'Observation',
  status: 'final',
  code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] },
  ...extra,
});

describe('resourceType', () => {
  test('a known concrete type is accepted', () => expectValid({ resourceType: 'Patient' }));
  test('missing', () => { expectIssue({ id: 'x' }, 'required', 'Resource'); });
  test('unknown type', () => { expectIssue({ resourceType: 'Patientx' }, 'value', 'resourceType'); });
  test('abstract types are not instantiable', () => {
    expectIssue({ resourceType: 'DomainResource' }, 'value', 'resourceType');
    expectIssue({ resourceType: 'Resource' }, 'value', 'resourceType');
  });
  test("Medplum's own resource types are not R4", () => {
    for (const resourceType of ['Bot', 'Project', 'ClientApplication', 'UserConfiguration']) expectIssue({ resourceType }, 'value', 'resourceType');
  });
  test('R4B SubscriptionStatus is not R4', () => { expectIssue({ resourceType: 'SubscriptionStatus' }, 'value', 'resourceType'); });
  test('not a string', () => { expectIssue({ resourceType: 42 }, 'value', 'resourceType'); });
  test('expectedType must match', () => {
    expectIssue({ resourceType: 'Patient' }, 'invalid', 'Patient', { expectedType: 'Observation' });
    expectValid({ resourceType: 'Patient' }, { expectedType: 'Patient' });
  });
  test('a resource must be an object', () => {
    for (const input of [null, undefined, 'Patient', 3, true, [], [{ resourceType: 'Patient' }]]) {
      expectIssue(input, 'structure', 'Resource');
    }
  });
});

describe('unknown elements', () => {
  test('at the root', () => { expectIssue(patient({ nickname: 'Bob' }), 'structure', 'Patient.nickname'); });
  test('names are case-sensitive', () => { expectIssue(patient({ BirthDate: '2000-01-01' }), 'structure', 'Patient.BirthDate'); });
  test('inside a complex type', () => {
    expectIssue(patient({ name: [{ family: 'Doe', middle: 'X' }] }), 'structure', 'Patient.name[0].middle');
    expectValid(patient({ name: [{ family: 'Doe', given: ['John', 'Q'] }] }));
  });
  test('inside a backbone element', () => {
    expectIssue(patient({ contact: [{ gender: 'female', nickname: 'x' }] }), 'structure', 'Patient.contact[0].nickname');
    expectValid(patient({ contact: [{ gender: 'female', name: { family: 'Doe' } }] }));
  });
  test('inside a contained resource', () => {
    expectIssue(patient({ contained: [{ resourceType: 'Practitioner', id: 'p1', foo: 1 }] }), 'structure', 'Patient.contained[0].foo');
    expectValid(patient({ contained: [{ resourceType: 'Practitioner', id: 'p1', active: true }] }));
  });
  test('inside contentReference elements (Questionnaire.item.item)', () => {
    const q = (inner: Record<string, unknown>) => ({
      resourceType: 'Questionnaire',
      status: 'active',
      item: [{ linkId: '1', type: 'group', item: [{ linkId: '1.1', type: 'string', item: [{ linkId: '1.1.1', type: 'display', ...inner }] }] }],
    });
    expectValid(q({ text: 'deep' }));
    expectIssue(q({ colour: 'red' }), 'structure', 'Questionnaire.item[0].item[0].item[0].colour');
  });
  test('choice types only with allowed type suffixes', () => {
    expectValid(observation({ valueString: 'x' }));
    expectValid(observation({ valueQuantity: { value: 1, unit: 'kg' } }));
    expectIssue(observation({ valueCanonical: 'http://x' }), 'structure', 'Observation.valueCanonical');
    expectIssue(observation({ valueFoo: 1 }), 'structure', 'Observation.valueFoo');
    expectIssue(observation({ value: 'x' }), 'structure', 'Observation.value');
    expectIssue(observation({ valuestring: 'x' }), 'structure', 'Observation.valuestring');
  });
  test('SimpleQuantity has no comparator', () => {
    expectValid(observation({ referenceRange: [{ low: { value: 1, unit: 'mmol/L' } }] }));
    expectIssue(observation({ referenceRange: [{ low: { value: 1, comparator: '<' } }] }), 'structure', 'Observation.referenceRange[0].low.comparator');
  });
  test('only one type of a choice element', () => {
    expectIssue(observation({ valueString: 'a', valueBoolean: true }), 'structure', 'Observation.value');
    expectValid(observation({ valueString: 'a', _valueString: { id: 'v' } }));
  });
  test("Medplum's Meta additions are not R4", () => {
    for (const name of ['project', 'author', 'onBehalfOf', 'account', 'accounts', 'compartment', 'deleted']) {
      expectIssue(patient({ meta: { versionId: '1', [name]: name === 'deleted' ? true : 'x' } }), 'structure', `Patient.meta.${name}`);
    }
    expectValid(patient({
      meta: {
        versionId: '1', lastUpdated: '2024-01-01T00:00:00Z', source: 'urn:x', profile: ['http://x/p'],
        security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' }], tag: [{ code: 't' }],
      },
    }));
  });
  test('R5 back-ports in the package are not R4', () => {
    expectIssue({ resourceType: 'ObservationDefinition', code: { text: 'x' }, publisher: { display: 'x' } }, 'structure', 'ObservationDefinition.publisher');
    expectIssue({ resourceType: 'HealthcareService', offeredIn: [{ display: 'x' }] }, 'structure', 'HealthcareService.offeredIn');
    expectIssue({ resourceType: 'ResearchStudy', status: 'active', name: 'x' }, 'structure', 'ResearchStudy.name');
    expectIssue({ resourceType: 'Binary', contentType: 'text/plain', url: 'http://x' }, 'structure', 'Binary.url');
  });
  test('R4 elements the package dropped are accepted (EvidenceVariable.characteristic)', () => {
    const ev = (characteristic: Record<string, unknown>) => ({ resourceType: 'EvidenceVariable', status: 'active', characteristic: [characteristic] });
    expectValid(ev({ definitionCodeableConcept: { text: 'smokers' }, groupMeasure: 'mean', timeFromStart: { value: 1 } }));
    expectIssue(ev({ definitionCodeableConcept: { text: 'x' }, definitionId: 'x' }), 'structure', 'EvidenceVariable.characteristic[0].definitionId');
    expectIssue(ev({ exclude: true }), 'required', 'EvidenceVariable.characteristic[0].definition');
  });
  test('Bundle.entry.response.outcome holds any resource in R4', () => {
    expectValid({
      resourceType: 'Bundle', type: 'batch-response',
      entry: [{ response: { status: '201', outcome: { resourceType: 'Patient', id: 'x' } } }],
    });
  });
});

describe('cardinality', () => {
  test('required elements', () => {
    expectValid(observation({}));
    expectIssue({ resourceType: 'Observation', code: { text: 'x' } }, 'required', 'Observation.status');
    expectIssue(observation({ component: [{ valueString: 'x' }] }), 'required', 'Observation.component[0].code');
    expectIssue(patient({ extension: [{ valueString: 'x' }] }), 'required', 'Patient.extension[0].url');
  });
  test('a required choice element is satisfied by any of its types', () => {
    const q = (enableWhen: Record<string, unknown>) => ({
      resourceType: 'Questionnaire', status: 'active',
      item: [{ linkId: '2', type: 'string', enableWhen: [{ question: '1', operator: 'exists', ...enableWhen }] }],
    });
    expectValid(q({ answerBoolean: true }));
    expectValid(q({ answerCoding: { code: 'x' } }));
    expectIssue(q({}), 'required', 'Questionnaire.item[0].enableWhen[0].answer');
  });
  test('a 0..1 element must not be an array', () => {
    expectIssue(patient({ birthDate: ['2000-01-01'] }), 'structure', 'Patient.birthDate');
    expectIssue(patient({ maritalStatus: [{ text: 'x' }] }), 'structure', 'Patient.maritalStatus');
  });
  test('a 0..* element must be an array', () => {
    expectIssue(patient({ name: { family: 'Doe' } }), 'structure', 'Patient.name');
    expectIssue(patient({ name: [{ given: 'John' }] }), 'structure', 'Patient.name[0].given');
  });
});

describe('primitive types', () => {
  const ext = (value: Record<string, unknown>) => patient({ extension: [{ url: 'http://example.org/x', ...value }] });
  const cases: { name: string; valid: Record<string, unknown>[]; invalid: Record<string, unknown>[] }[] = [
    { name: 'Boolean', valid: [{ valueBoolean: true }, { valueBoolean: false }], invalid: [{ valueBoolean: 'true' }, { valueBoolean: 1 }] },
    {
      name: 'Integer',
      valid: [{ valueInteger: 0 }, { valueInteger: -2147483648 }, { valueInteger: 2147483647 }],
      invalid: [{ valueInteger: 1.5 }, { valueInteger: 2147483648 }, { valueInteger: '1' }],
    },
    { name: 'Decimal', valid: [{ valueDecimal: 1.25 }, { valueDecimal: -3 }, { valueDecimal: 1e-7 }], invalid: [{ valueDecimal: '1.0' }] },
    { name: 'PositiveInt', valid: [{ valuePositiveInt: 1 }], invalid: [{ valuePositiveInt: 0 }, { valuePositiveInt: -1 }] },
    { name: 'UnsignedInt', valid: [{ valueUnsignedInt: 0 }], invalid: [{ valueUnsignedInt: -1 }, { valueUnsignedInt: 0.5 }] },
    { name: 'String', valid: [{ valueString: 'a' }, { valueString: ' padded ' }], invalid: [{ valueString: '' }, { valueString: 1 }] },
    { name: 'Markdown', valid: [{ valueMarkdown: '# x' }], invalid: [{ valueMarkdown: '' }] },
    { name: 'Uri', valid: [{ valueUri: 'urn:x:y' }, { valueUri: 'http://a/b?c=d' }], invalid: [{ valueUri: 'http://a b' }, { valueUri: '' }] },
    { name: 'Url', valid: [{ valueUrl: 'https://example.org' }], invalid: [{ valueUrl: 'https://example.org/a b' }] },
    { name: 'Canonical', valid: [{ valueCanonical: 'http://hl7.org/fhir/StructureDefinition/Patient|4.0.1' }], invalid: [{ valueCanonical: ' x' }] },
    {
      name: 'Code',
      valid: [{ valueCode: 'abc' }, { valueCode: 'a b' }],
      invalid: [{ valueCode: ' abc' }, { valueCode: 'abc ' }, { valueCode: 'a  b' }, { valueCode: '' }],
    },
    {
      name: 'Id',
      valid: [{ valueId: 'a-B.9' }, { valueId: 'x'.repeat(64) }],
      invalid: [{ valueId: 'a_b' }, { valueId: 'x'.repeat(65) }, { valueId: '' }, { valueId: 'a b' }],
    },
    { name: 'Oid', valid: [{ valueOid: 'urn:oid:2.16.840.1.113883' }], invalid: [{ valueOid: '2.16.840' }, { valueOid: 'urn:oid:3.1' }, { valueOid: 'urn:oid:1.01' }] },
    {
      name: 'Uuid',
      valid: [{ valueUuid: 'urn:uuid:c757873d-ec9a-4326-a141-556f43239520' }],
      invalid: [{ valueUuid: 'c757873d-ec9a-4326-a141-556f43239520' }, { valueUuid: 'urn:uuid:C757873D-EC9A-4326-A141-556F43239520' }],
    },
    {
      name: 'Base64Binary',
      valid: [{ valueBase64Binary: 'aGVsbG8=' }, { valueBase64Binary: 'ab+/' }, { valueBase64Binary: 'aGVs\nbG8=' }],
      invalid: [{ valueBase64Binary: 'aGVsbG8' }, { valueBase64Binary: 'a*b=' }],
    },
    {
      name: 'Instant',
      valid: [{ valueInstant: '2015-02-07T13:28:17.239+02:00' }, { valueInstant: '2017-01-01T00:00:00Z' }],
      invalid: [{ valueInstant: '2017-01-01T00:00:00' }, { valueInstant: '2017-01-01' }, { valueInstant: '2017-02-30T00:00:00Z' }],
    },
    {
      name: 'Date',
      valid: [{ valueDate: '2018' }, { valueDate: '1973-06' }, { valueDate: '2020-02-29' }, { valueDate: '2000-02-29' }],
      invalid: [
        { valueDate: '2020-02-30' }, { valueDate: '2021-02-29' }, { valueDate: '1900-02-29' }, { valueDate: '2020-04-31' },
        { valueDate: '2020-13-01' }, { valueDate: '0000-01-01' }, { valueDate: '2020-01-01T00:00:00Z' }, { valueDate: '20200101' },
      ],
    },
    {
      name: 'DateTime',
      valid: [
        { valueDateTime: '2018' }, { valueDateTime: '1973-06' }, { valueDateTime: '1905-08-23' },
        { valueDateTime: '2015-02-07T13:28:17-05:00' }, { valueDateTime: '2017-01-01T00:00:00.000Z' },
      ],
      invalid: [
        { valueDateTime: '2017-01-01T00:00:00' }, { valueDateTime: '2017-01-01T00:00Z' }, { valueDateTime: '2017-02-29' },
        { valueDateTime: '2017-01-01T24:00:00Z' }, { valueDateTime: '2017-01-01T10:00:00+15:00' },
      ],
    },
    { name: 'Time', valid: [{ valueTime: '13:28:17' }, { valueTime: '00:00:00.5' }], invalid: [{ valueTime: '25:00:00' }, { valueTime: '13:28' }, { valueTime: '13:28:17Z' }] },
  ];
  for (const { name, valid, invalid } of cases) {
    test(name, () => {
      for (const v of valid) expectValid(ext(v));
      for (const v of invalid) expectIssue(ext(v), 'value', `Patient.extension[0].value.ofType(${name.charAt(0).toLowerCase()}${name.slice(1)})`);
    });
  }
  test('primitive elements in place', () => {
    expectIssue(patient({ active: 'yes' }), 'value', 'Patient.active');
    expectIssue(patient({ name: [{ given: ['John', ''] }] }), 'value', 'Patient.name[0].given[1]');
    expectIssue(patient({ identifier: [{ system: 'http://x y' }] }), 'value', 'Patient.identifier[0].system');
    expectIssue(patient({ telecom: [{ system: 'phone', value: '1', rank: 0 }] }), 'value', 'Patient.telecom[0].rank');
    expectIssue(observation({ issued: '2020-01-01T00:00:00' }), 'value', 'Observation.issued');
    expectIssue(patient({ photo: [{ size: -1 }] }), 'value', 'Patient.photo[0].size');
    expectIssue(patient({ text: { status: 'generated', div: 1 } }), 'value', 'Patient.text.div');
  });
  test('a complex element must be an object', () => {
    expectIssue(patient({ maritalStatus: 'married' }), 'structure', 'Patient.maritalStatus');
    expectIssue(patient({ name: ['Doe'] }), 'structure', 'Patient.name[0]');
  });
  test('Element.id and Extension.url are plain strings without `_` siblings', () => {
    expectIssue(patient({ extension: [{ url: 'http://x', _url: { id: 'a' }, valueString: 'x' }] }), 'structure', 'Patient.extension[0].url');
    expectIssue(patient({ extension: [{ url: 'http://x y', valueString: 'x' }] }), 'value', 'Patient.extension[0].url');
    expectValid(patient({ name: [{ id: 'any string is fine here', family: 'x' }] }));
  });
});

describe('Resource.id', () => {
  test('valid ids', () => {
    expectValid(patient({ id: 'a1-B2.c3' }));
    expectValid(patient({ id: '0bfeda65-c8ac-4dd7-a46c-d69e665996d4' }));
  });
  test('a resource id is a primitive element and may carry extensions', () => {
    expectValid(patient({ id: 'x', _id: { extension: [{ url: 'http://x', valueString: 'y' }] } }));
  });
  test('invalid ids', () => {
    expectIssue(patient({ id: 'has space' }), 'value', 'Patient.id');
    expectIssue(patient({ id: 'x'.repeat(65) }), 'value', 'Patient.id');
    expectIssue(patient({ id: 7 }), 'value', 'Patient.id');
    expectIssue(patient({ contained: [{ resourceType: 'Organization', id: 'org#1' }] }), 'value', 'Patient.contained[0].id');
  });
});

describe('primitive extensions (`_name`)', () => {
  const absent = { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'unknown' }] };
  test('a `_name` object next to or instead of the value', () => {
    expectValid(patient({ birthDate: '1970-03-30', _birthDate: { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/patient-birthTime', valueDateTime: '1970-03-30T14:00:00+01:00' }] } }));
    expectValid(patient({ _birthDate: { id: 'b', ...absent } }));
  });
  test('`_name` alone satisfies a required element', () => {
    expectValid({ resourceType: 'Observation', _status: absent, code: { text: 'x' } });
  });
  test('`_name` must be an object with only id and extension', () => {
    expectIssue(patient({ _birthDate: 'x' }), 'structure', 'Patient.birthDate');
    expectIssue(patient({ _birthDate: { value: '2000' } }), 'structure', 'Patient.birthDate.value');
    expectIssue(patient({ _birthDate: {} }), 'structure', 'Patient.birthDate');
    expectIssue(patient({ _birthDate: { extension: [{ valueCode: 'x' }] } }), 'required', 'Patient.birthDate.extension[0].url');
  });
  test('only primitives have `_name`', () => {
    expectIssue(patient({ _maritalStatus: absent }), 'structure', 'Patient.maritalStatus');
    expectIssue(patient({ _nickname: absent }), 'structure', 'Patient.nickname');
  });
  test('arrays aligned with null placeholders', () => {
    expectValid(patient({ name: [{ given: ['A', 'B'], _given: [null, { id: 'g2' }] }] }));
    expectValid(patient({ name: [{ given: ['A', null], _given: [null, absent] }] }));
    expectValid(patient({ name: [{ _given: [absent] }] }));
  });
  test('misaligned or empty placeholders', () => {
    expectIssue(patient({ name: [{ given: ['A', 'B'], _given: [null] }] }), 'structure', 'Patient.name[0].given');
    expectIssue(patient({ name: [{ given: ['A', null] }] }), 'structure', 'Patient.name[0].given[1]');
    expectIssue(patient({ name: [{ given: ['A'], _given: { id: 'x' } }] }), 'structure', 'Patient.name[0].given');
    expectIssue(patient({ name: [{ given: ['A'], _given: [{ foo: 1 }] }] }), 'structure', 'Patient.name[0].given[0].foo');
    expectIssue(patient({ name: [{ given: ['A'], _given: ['x'] }] }), 'structure', 'Patient.name[0].given[0]');
    const both = validateResource(patient({ name: [{ given: ['A', null], _given: [null, null] }] }));
    assert.deepEqual(both.map((i) => [i.code, i.expression?.[0]]), [
      ['structure', 'Patient.name[0].given[1]'],
      ['structure', 'Patient.name[0].given[1]'],
    ]);
  });
});

describe('nulls, empty objects and empty arrays', () => {
  test('null values', () => {
    expectIssue(patient({ gender: null }), 'structure', 'Patient.gender');
    expectIssue(patient({ name: null }), 'structure', 'Patient.name');
    expectIssue(patient({ name: [null] }), 'structure', 'Patient.name[0]');
  });
  test('empty arrays', () => {
    expectIssue(patient({ name: [] }), 'structure', 'Patient.name');
    expectIssue(patient({ name: [{ family: 'x', given: [] }] }), 'structure', 'Patient.name[0].given');
  });
  test('empty objects', () => {
    expectIssue(patient({ name: [{}] }), 'structure', 'Patient.name[0]');
    expectIssue(patient({ maritalStatus: {} }), 'structure', 'Patient.maritalStatus');
  });
});

describe('required bindings', () => {
  test('code elements', () => {
    expectValid(patient({ gender: 'female' }));
    const issue = expectIssue(patient({ gender: 'F' }), 'code-invalid', 'Patient.gender');
    assert.match(issue.diagnostics!, /administrative-gender/);
    expectIssue(observation({ status: 'done' }), 'code-invalid', 'Observation.status');
    expectIssue({ resourceType: 'Bundle', type: 'transactions' }, 'code-invalid', 'Bundle.type');
    expectIssue(patient({ identifier: [{ use: 'primary', value: '1' }] }), 'code-invalid', 'Patient.identifier[0].use');
    expectIssue(observation({ valueQuantity: { value: 1, comparator: '=' } }), 'code-invalid', 'Observation.value.ofType(Quantity).comparator');
  });
  test('hierarchical code systems are flattened (observation-status: corrected under amended)', () => {
    expectValid(observation({ status: 'corrected' }));
  });
  test('codings from the bound code system', () => {
    const condition = (coding: Record<string, unknown>) => ({ resourceType: 'Condition', subject: { reference: 'Patient/1' }, clinicalStatus: { coding: [coding] } });
    expectValid(condition({ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }));
    expectIssue(condition({ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'gone' }), 'code-invalid', 'Condition.clinicalStatus.coding[0].code');
    // Translations into other systems are not judged.
    expectValid(condition({ system: 'http://snomed.info/sct', code: '55561003' }));
  });
  test('value sets that cannot be expanded locally are not enforced', () => {
    assert.equal(expandValueSet('http://hl7.org/fhir/ValueSet/mimetypes'), null);
    expectValid({ resourceType: 'Binary', contentType: 'application/x-anything' });
  });
});

describe('contained and nested resources', () => {
  test('contained resources are validated', () => {
    expectIssue(patient({ contained: [{ resourceType: 'Organization', active: 'yes' }] }), 'value', 'Patient.contained[0].active');
    expectIssue(patient({ contained: [{ resourceType: 'Nope' }] }), 'value', 'Patient.contained[0].resourceType');
    expectIssue(patient({ contained: [{ name: 'x' }] }), 'required', 'Patient.contained[0]');
    expectIssue(patient({ contained: ['x'] }), 'structure', 'Patient.contained[0]');
  });
  test('Bundle entries are validated', () => {
    const bundle = {
      resourceType: 'Bundle', type: 'transaction',
      entry: [
        { fullUrl: 'urn:uuid:c757873d-ec9a-4326-a141-556f43239520', resource: patient({ gender: 'male' }), request: { method: 'POST', url: 'Patient' } },
        { resource: observation({ subject: { reference: 'urn:uuid:c757873d-ec9a-4326-a141-556f43239520' }, valueQuantity: { value: '1' } }), request: { method: 'POST', url: 'Observation' } },
      ],
    };
    expectIssue(bundle, 'value', 'Bundle.entry[1].resource.value.ofType(Quantity).value');
    expectIssue({ ...bundle, entry: [{ ...bundle.entry[0], request: { method: 'FETCH', url: 'x' } }] }, 'code-invalid', 'Bundle.entry[0].request.method');
  });
});

describe('robustness', () => {
  test('excessive nesting gives one issue', () => {
    let ext: Record<string, unknown> = { url: 'http://x', valueString: 'leaf' };
    for (let i = 0; i < 1000; i++) ext = { url: 'http://x', extension: [ext] };
    const issues = validateResource(patient({ extension: [ext] }));
    assert.equal(issues.length, 1);
    assert.equal(issues[0].code, 'structure');
    assert.match(issues[0].diagnostics!, new RegExp(`${MAX_DEPTH} levels`));
  });
  test('nesting within the limit is fine', () => {
    let item: Record<string, unknown> = { linkId: 'leaf', type: 'display' };
    for (let i = 0; i < 40; i++) item = { linkId: `g${i}`, type: 'group', item: [item] };
    expectValid({ resourceType: 'Questionnaire', status: 'draft', item: [item] });
  });
  test('circular objects do not hang or throw', () => {
    const p: Record<string, unknown> = { resourceType: 'Patient' };
    const name: Record<string, unknown> = { family: 'x' };
    name.period = name;
    p.name = [name];
    assert.ok(validateResource(p).length > 0);
  });
  test('throwing getters do not escape', () => {
    const p = { resourceType: 'Patient', get gender(): string { throw new Error('boom'); } };
    const issues = validateResource(p);
    assert.equal(issues[0].code, 'exception');
  });
  test('the number of issues is capped', () => {
    const issues = validateResource(patient(Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`x${i}`, i]))));
    assert.equal(issues.length, MAX_ISSUES + 1);
    assert.equal(issues.at(-1)!.code, 'too-costly');
  });
  test('garbage never throws', () => {
    const garbage: unknown[] = [
      NaN, Infinity, -0, '', '{}', Symbol.iterator.toString(), new Date(), new Map(), Object.create(null),
      { resourceType: 'Patient', name: [[[[[]]]]] }, { resourceType: 'Patient', __proto__: { x: 1 } },
      JSON.parse('{"resourceType":"Patient","__proto__":{"gender":"male"}}'),
      { resourceType: 'Bundle', type: 'collection', entry: [{ resource: { resourceType: 'Bundle', type: 'collection', entry: [{ resource: 5 }] } }] },
      { resourceType: 'Observation', status: 'final', code: { coding: [{ system: 5, code: {} }] }, valueQuantity: { value: Infinity } },
      { resourceType: 'Patient', contained: [{ resourceType: 'Patient', contained: [{ resourceType: 'Patient', contained: [null] }] }] },
    ];
    for (const g of garbage) assert.ok(Array.isArray(validateResource(g)));
  });
  test('random mutations of real resources never throw', () => {
    const resources = syntheaBundleResources(1);
    const junk: unknown[] = [null, '', 0, -1, 1.5, true, [], {}, [null], [{}], 'x y', { foo: 1 }, [1, 'a']];
    let seed = 42;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    for (const original of resources.slice(0, 200)) {
      for (let k = 0; k < 5; k++) {
        const r = structuredClone(original) as Record<string, unknown>;
        // Replace one value somewhere in the tree.
        let node: unknown = r;
        for (let d = 0; d < 4 && node && typeof node === 'object'; d++) {
          const keys = Object.keys(node);
          if (keys.length === 0) break;
          const key = keys[rnd(keys.length)];
          if (d === 3 || rnd(3) === 0) {
            (node as Record<string, unknown>)[key] = junk[rnd(junk.length)];
            break;
          }
          node = (node as Record<string, unknown>)[key];
        }
        assert.ok(Array.isArray(validateResource(r)));
      }
    }
  });
});

function syntheaBundleResources(count: number): unknown[] {
  const dir = join(SYNTHEA, 'bundles');
  const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort().slice(0, count);
  const out: unknown[] = [];
  for (const f of files) {
    const bundle = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { entry: { resource: unknown }[] };
    for (const e of bundle.entry) out.push(e.resource);
  }
  return out;
}

describe('real data (Synthea)', () => {
  test('every resource of 3 transaction bundles is valid, and the bundles themselves', () => {
    const dir = join(SYNTHEA, 'bundles');
    const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort().slice(0, 3);
    let n = 0;
    for (const f of files) {
      const bundle = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { entry: { resource: { resourceType: string; id?: string } }[] };
      for (const { resource } of bundle.entry) {
        assert.deepEqual(validateResource(resource), [], `${f}: ${resource.resourceType}/${resource.id}`);
        n++;
      }
      assert.deepEqual(validateResource(bundle, { expectedType: 'Bundle' }), [], f);
    }
    assert.ok(n > 300, `only ${n} resources`);
  });
  test('every line of the bulk NDJSON export is valid', () => {
    const dir = join(SYNTHEA, 'bulk-ndjson-10-patients');
    let n = 0;
    for (const f of readdirSync(dir).filter((f) => f.endsWith('.ndjson') && f !== 'log.ndjson')) {
      const expectedType = f.slice(0, f.indexOf('.'));
      for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
        if (!line.trim()) continue;
        const resource = JSON.parse(line) as { id?: string };
        assert.deepEqual(validateResource(resource, { expectedType }), [], `${f}: ${resource.id}`);
        n++;
      }
    }
    assert.ok(n > 7000);
  });
});

describe('the compiled model matches R4', () => {
  // An independent R4 model: the one generated for HL7's FHIRPath engine from the R4 definitions.
  const fp = r4Model as unknown as {
    path2Type: Record<string, unknown>;
    choiceTypePaths: Record<string, string[]>;
    pathsDefinedElsewhere: Record<string, string>;
    path2Repeating: Record<string, boolean>;
  };

  function allTypes(): ComplexType[] {
    const { resources, types } = validationModel();
    const out = new Set<ComplexType>();
    const visit = (t: ComplexType) => {
      if (out.has(t)) return;
      out.add(t);
      for (const p of t.props.values()) if (p.type.kind === 'complex') visit(p.type);
    };
    for (const t of [...resources.values(), ...types.values()]) visit(t);
    return [...out].filter((t) => t.name !== 'Element' && t.name !== 'SimpleQuantity');
  }

  test('every element we accept is an R4 element, with R4 array-ness and choice types', () => {
    const problems: string[] = [];
    for (const type of allTypes()) {
      for (const [key, prop] of type.props) {
        const { path, isArray, isChoice } = prop.element;
        const p = path.replace('[x]', '');
        const known = p in fp.path2Type || p in fp.choiceTypePaths || p in fp.pathsDefinedElsewhere;
        if (!known) problems.push(`not R4: ${path}`);
        if (known && !(p in fp.pathsDefinedElsewhere) && isArray !== (fp.path2Repeating[p] === true)) problems.push(`array-ness differs: ${path}`);
        if (isChoice) {
          const allowed = (fp.choiceTypePaths[p] ?? []).map((t) => t.toLowerCase());
          const suffix = key.slice(p.slice(p.lastIndexOf('.') + 1).length).toLowerCase();
          if (!allowed.includes(suffix)) problems.push(`choice type not R4: ${key} at ${path}`);
        }
      }
    }
    assert.deepEqual(problems, []);
  });

  test('every R4 element of a resource is accepted', () => {
    const { resources } = validationModel();
    const accepted = new Set<string>();
    for (const type of allTypes()) for (const prop of type.props.values()) accepted.add(prop.element.path.replace('[x]', ''));
    const missing = Object.keys(fp.path2Type).filter((p) => {
      if (!resources.has(p.slice(0, p.indexOf('.')))) return false;
      // path2Type also lists each choice type of a choice element ('Observation.valueQuantity').
      const parent = p.slice(0, p.lastIndexOf('.'));
      const isChoiceVariant = Object.keys(fp.choiceTypePaths).some((c) => c.startsWith(`${parent}.`) && p.startsWith(c) && p.length > c.length);
      return !accepted.has(p) && !isChoiceVariant;
    });
    assert.deepEqual(missing, []);
  });

  test('every exclusion names an element of the package (so stale entries get noticed)', () => {
    const packaged = new Set<string>();
    for (const sd of [...resourceDefinitions().values(), ...typeDefinitions().values()]) {
      for (const e of sd.snapshot?.element ?? []) packaged.add(e.path);
    }
    for (const path of NON_R4_ELEMENTS) assert.ok(packaged.has(path), path);
  });
});
