import { test } from 'node:test';
import assert from 'node:assert/strict';
import { commonSearchParams, isResourceTypeName, paramKey, paramKeys, searchParam, searchParamsOf } from '../../src/fhir/search/params.ts';
import { normalizeText } from '../../src/fhir/search/normalize.ts';

test('index keys never change: they are stored in every search index row', () => {
  assert.equal(paramKey('Resource', '_tag'), 99668814375472);
  assert.equal(paramKey('Observation', 'code'), 183175551656424);
  assert.ok(Number.isSafeInteger(paramKey('Patient', 'name')));
  assert.deepEqual(paramKeys(['Patient', 'Observation'], '_tag'), [paramKey('Resource', '_tag')], 'shared parameters share one key');
  assert.deepEqual(paramKeys([], '_tag'), [paramKey('Resource', '_tag')]);
  assert.deepEqual(paramKeys([], 'name'), []);
  assert.deepEqual(paramKeys(['Patient', 'Practitioner'], 'name').length, 2);
});

test('each type sees only its own part of a shared expression', () => {
  assert.equal(searchParam('Observation', 'code')!.expression, 'Observation.code');
  assert.equal(searchParam('Condition', 'code')!.expression, 'Condition.code');
  assert.equal(searchParam('Patient', '_tag')!.expression, 'Resource.meta.tag');
  assert.equal(searchParam('InsurancePlan', 'name')!.expression, 'name | alias');
  assert.equal(searchParam('Observation', 'value-string')!.expression, '(Observation.value.ofType(string)) | (Observation.value.ofType(CodeableConcept)).text');
  assert.equal(searchParam('Observation', 'patient')!.expression, 'Observation.subject.where(resolve() is Patient)');
  assert.deepEqual(searchParam('Observation', 'patient')!.targets, ['Patient']);
});

test('parameters per type include the shared ones', () => {
  const patient = searchParamsOf('Patient');
  for (const code of ['_id', '_lastUpdated', '_tag', '_profile', '_security', '_source', 'name', 'birthdate']) assert.ok(patient.has(code), code);
  assert.equal(patient.get('_tag')!.base, 'Resource');
  assert.equal(patient.get('name')!.base, 'Patient');
  assert.ok(commonSearchParams().has('_lastUpdated'));
  assert.ok(!commonSearchParams().has('name'));
  assert.equal(searchParamsOf('Nope').size, 0);
  assert.ok(isResourceTypeName('Patient') && isResourceTypeName('Bundle'));
  assert.ok(!isResourceTypeName('DomainResource') && !isResourceTypeName('HumanName') && !isResourceTypeName('patient'));
});

test('text normalization: case, accents, surrounding space', () => {
  assert.equal(normalizeText('  Ängström Café '), 'angstrom cafe');
  assert.equal(normalizeText('MÜLLER'), 'muller');
  assert.equal(normalizeText('plain'), 'plain');
});
