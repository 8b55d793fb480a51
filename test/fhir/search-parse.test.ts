import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSearch, type ParseOptions } from '../../src/fhir/search/parse.ts';
import { FhirError } from '../../src/fhir/outcome.ts';
import type { DateCriterion } from '../../src/fhir/search/types.ts';
import { splitUnescaped, unescapeValue, parseNumberValue } from '../../src/fhir/search/parse-values.ts';

const options: ParseOptions = { maxCount: 100, defaultCount: 20, lenient: false, now: Date.UTC(2024, 0, 1) };
const parse = (type: string | undefined, query: string, extra: Partial<ParseOptions> = {}) =>
  parseSearch(type, [...new URLSearchParams(query)], { ...options, ...extra });

function rejects(fn: () => unknown, status: number, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof FhirError, String(err));
    assert.equal(err.status, status);
    assert.match(err.message, pattern);
    return true;
  });
}

test('defaults, _count cap, _offset, _total', () => {
  const { request } = parse('Patient', '');
  assert.deepEqual(request, { resourceTypes: ['Patient'], criteria: [], sort: [], count: 20, offset: 0, total: 'none', include: [], revinclude: [] });
  assert.equal(parse('Patient', '_count=5000').request.count, 100);
  assert.equal(parse('Patient', '_offset=40').request.offset, 40);
  assert.equal(parse('Patient', '_total=accurate').request.total, 'accurate');
  assert.equal(parse('Patient', '_count=0').request.total, 'accurate', '_count=0 asks for the count');
  rejects(() => parse('Patient', '_count=-1'), 400, /_count/);
  rejects(() => parse('Patient', '_count=abc'), 400, /_count/);
  rejects(() => parse('Patient', '_total=maybe'), 400, /_total/);
  rejects(() => parse('Patient', '_count=1&_count=2'), 400, /only once/);
});

test('unknown parameters and modifiers: 400 naming them, or ignored when lenient', () => {
  rejects(() => parse('Patient', 'foo=bar'), 400, /'foo'/);
  rejects(() => parse('Patient', 'name:fuzzy=x'), 400, /:fuzzy.*'name'/);
  rejects(() => parse('Patient', 'birthdate:exact=2000'), 400, /:exact/);
  const lenient = parse('Patient', 'foo=bar&name:fuzzy=x&name=ann', { lenient: true });
  assert.deepEqual(lenient.ignored, ['foo', 'name:fuzzy']);
  assert.equal(lenient.request.criteria.length, 1);
  rejects(() => parse('Patient', 'Patient=1'), 400, /Unknown search parameter/);
});

test('result parameters are passed back to the caller', () => {
  const { resultParams, request } = parse('Patient', '_summary=count&_elements=id,name&_format=json&_pretty=true');
  assert.deepEqual(resultParams, [['_summary', 'count'], ['_elements', 'id,name'], ['_format', 'json'], ['_pretty', 'true']]);
  assert.deepEqual(request.criteria, []);
});

test('features not built yet are refused clearly, even when lenient', () => {
  for (const [type, q] of [['Observation', 'code:code-text=x'], ['Patient', '_query=x']]) {
    rejects(() => parse(type, q, { lenient: true }), 400, /not supported yet/);
  }
});

test('token :in/:not-in name value sets, :below/:above a system|code; malformed values are refused', () => {
  const c = (type: string, q: string) => parse(type, q).request.criteria[0];
  assert.deepEqual(c('Observation', 'code:in=http://vs/a,ValueSet/x1'), { kind: 'token-in', code: 'code', negate: false, valueSets: ['http://vs/a', 'ValueSet/x1'] });
  assert.deepEqual(c('Observation', 'code:not-in=urn:vs'), { kind: 'token-in', code: 'code', negate: true, valueSets: ['urn:vs'] });
  assert.deepEqual(c('Observation', 'code:below=http://s|a\\,b,http://s|c'), {
    kind: 'token-subsumes', code: 'code', direction: 'below', values: [{ system: 'http://s', code: 'a,b' }, { system: 'http://s', code: 'c' }],
  });
  for (const q of ['code:in=relative/thing', 'code:above=|x', 'code:below=x', 'code:below=http://s|']) rejects(() => parse('Observation', q), 400, /takes/);
});

test('_has: reverse chaining, nested, with modifiers; malformed forms are refused', () => {
  const c = (type: string, q: string) => parse(type, q).request.criteria[0];
  assert.deepEqual(c('Patient', '_has:Observation:patient:code=1234-5'), {
    kind: 'has', code: 'patient', sourceType: 'Observation', criterion: { kind: 'token', code: 'code', negate: false, values: [{ code: '1234-5' }] },
  });
  assert.deepEqual(c('Patient', '_has:Observation:subject:code:not=x'), {
    kind: 'has', code: 'subject', sourceType: 'Observation', criterion: { kind: 'token', code: 'code', negate: true, values: [{ code: 'x' }] },
  });
  assert.equal((c('Patient', '_has:Observation:patient:_has:AuditEvent:entity:agent=u1') as { criterion: { kind: string } }).criterion.kind, 'has');
  rejects(() => parse('Patient', '_has:Observation:patient=1'), 400, /_has must be written/);
  rejects(() => parse('Patient', '_has:Nope:patient:code=1'), 400, /not a resource type/);
  rejects(() => parse('Patient', '_has:Observation:code:status=final'), 400, /not a reference/);
  rejects(() => parse('Practitioner', '_has:Observation:patient:code=1'), 400, /cannot refer to/);
  rejects(() => parse('Patient', '_has:Observation:patient:nope=1'), 400, /Unknown search parameter 'nope'/);
});

test('wildcard includes: every reference parameter of a type', () => {
  const specs = (type: string, q: string, key: 'include' | 'revinclude' = 'include') => parse(type, q).request[key].map((s) => `${s.sourceType}:${s.code}${s.targetType ? ':' + s.targetType : ''}${s.iterate ? '+' : ''}`).sort();
  const all = specs('Observation', '_include=Observation:*');
  for (const code of ['subject', 'patient', 'performer', 'encounter', 'based-on', 'has-member']) assert.ok(all.includes(`Observation:${code}`), code);
  assert.ok(!all.some((s) => s.endsWith(':code')), 'token parameters are not included');
  assert.deepEqual(specs('Observation', '_include=*'), all);
  assert.ok(specs('Observation', '_include:iterate=Observation:*').every((s) => s.endsWith('+')));
  const toPatient = specs('Observation', '_include=Observation:*:Patient');
  assert.ok(toPatient.includes('Observation:subject:Patient') && !toPatient.some((s) => s.startsWith('Observation:device')), toPatient.join());
  assert.ok(specs('Patient', '_revinclude=Provenance:*', 'revinclude').includes('Provenance:target'));
  rejects(() => parse('Patient', '_revinclude=*'), 400, /name the type/);
  rejects(() => parse(undefined, '_include=*'), 400, /needs the searched types/);
});

test('composite parameters: a tuple per value, each part read as its own type', () => {
  const c = parse('Observation', 'code-value-quantity=http://loinc.org|8480-6$gt100|http://unitsofmeasure.org|mm[Hg],8462-4$lt90').request.criteria[0];
  assert.deepEqual(c, {
    kind: 'composite', code: 'code-value-quantity', values: [
      [
        { kind: 'token', code: 'code-value-quantity', negate: false, values: [{ system: 'http://loinc.org', code: '8480-6' }] },
        { kind: 'quantity', code: 'code-value-quantity', values: [{ prefix: 'gt', value: 100, low: 99.5, high: 100.5, system: 'http://unitsofmeasure.org', code: 'mm[Hg]' }] },
      ],
      [
        { kind: 'token', code: 'code-value-quantity', negate: false, values: [{ code: '8462-4' }] },
        { kind: 'quantity', code: 'code-value-quantity', values: [{ prefix: 'lt', value: 90, low: 89.5, high: 90.5 }] },
      ],
    ],
  });
  const date = parse('Observation', 'code-value-date=x$ge2020-01').request.criteria[0] as { values: { kind: string }[][] };
  assert.deepEqual(date.values[0].map((p) => p.kind), ['token', 'date']);
  const escaped = parse('Observation', 'code-value-string=a\\$b$c\\,d').request.criteria[0] as { values: { values: unknown[] }[][] };
  assert.deepEqual(escaped.values[0][0].values, [{ code: 'a$b' }]);
  assert.deepEqual(escaped.values[0][1].values, ['c,d']);
  rejects(() => parse('Observation', 'code-value-quantity=8480-6'), 400, /takes 2 values joined by '\$'/);
  rejects(() => parse('Observation', 'code-value-quantity=8480-6$'), 400, /part 2 .* is empty/);
  rejects(() => parse('Observation', 'code-value-quantity=8480-6$abc'), 400, /abc/);
  rejects(() => parse('Observation', 'code-value-quantity:missing=true', { lenient: true }), 400, /not supported yet/);
});

test(':of-type on identifiers', () => {
  assert.deepEqual(parse('Patient', 'identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|12\\|3').request.criteria[0], {
    kind: 'token-of-type', code: 'identifier', values: [{ typeSystem: 'http://terminology.hl7.org/CodeSystem/v2-0203', typeCode: 'MR', value: '12|3' }],
  });
  assert.deepEqual(parse('Patient', 'identifier:of-type=|MR|1').request.criteria[0], { kind: 'token-of-type', code: 'identifier', values: [{ typeCode: 'MR', value: '1' }] });
  rejects(() => parse('Patient', 'identifier:of-type=MR|123'), 400, /\[type system\]\|\[type code\]\|\[value\]/);
  rejects(() => parse('Patient', 'identifier:of-type=s||123'), 400, /of-type takes/);
});

test('near and _list', () => {
  assert.deepEqual(parse('Location', 'near=42.256|-83.694|11.2|km').request.criteria[0], { kind: 'near', code: 'near', values: [{ latitude: 42.256, longitude: -83.694, km: 11.2 }] });
  assert.deepEqual(parse('Location', 'near=1|2|1000|m').request.criteria[0], { kind: 'near', code: 'near', values: [{ latitude: 1, longitude: 2, km: 1 }] });
  for (const bad of ['near=91|0', 'near=1', 'near=a|b', 'near=1|2|3|parsec']) rejects(() => parse('Location', bad), 400, /near/);
  assert.deepEqual(parse('Patient', '_list=a,b').request.criteria[0], { kind: 'list', code: '_list', values: ['a', 'b'] });
  rejects(() => parse('Patient', '_list=$current-allergies'), 400, /_list takes the id of a List/);
});

test('chains', () => {
  const c = (q: string) => parse('Observation', q).request.criteria[0];
  assert.deepEqual(c('subject:Patient.name=ann'), { kind: 'chain', code: 'subject', targetTypes: ['Patient'], criterion: { kind: 'string', code: 'name', match: 'prefix', values: ['ann'] } });
  assert.deepEqual(c('subject.name:exact=Ann'), { kind: 'chain', code: 'subject', targetTypes: ['Patient', 'Location'], criterion: { kind: 'string', code: 'name', match: 'exact', values: ['Ann'] } });
  assert.deepEqual(c('patient.general-practitioner:Practitioner.name=doc'), {
    kind: 'chain', code: 'patient', targetTypes: ['Patient'],
    criterion: { kind: 'chain', code: 'general-practitioner', targetTypes: ['Practitioner'], criterion: { kind: 'string', code: 'name', match: 'prefix', values: ['doc'] } },
  });
  rejects(() => c('subject.nope=1'), 400, /'nope'/);
  rejects(() => c('status.name=1'), 400, /not a reference/);
  rejects(() => c('subject:Medication.code=1'), 400, /Medication/);
  assert.deepEqual(parse('Observation', 'subject.nope=1&status=final', { lenient: true }).ignored, ['subject.nope']);
});

test('_include and _revinclude', () => {
  const { request } = parse('Observation', '_include=Observation:subject&_include:iterate=Patient:general-practitioner:Practitioner&_revinclude=Provenance:target');
  assert.deepEqual(request.include, [
    { sourceType: 'Observation', code: 'subject', iterate: false },
    { sourceType: 'Patient', code: 'general-practitioner', targetType: 'Practitioner', iterate: true },
  ]);
  assert.deepEqual(request.revinclude, [{ sourceType: 'Provenance', code: 'target', iterate: false }]);
  rejects(() => parse('Observation', '_include=Observation'), 400, /_include/);
  rejects(() => parse('Observation', '_include=Observation:status'), 400, /not a reference/);
  rejects(() => parse('Observation', '_include=Observation:nope'), 400, /nope/);
  rejects(() => parse('Observation', '_include=Observation:subject:Medication'), 400, /Medication/);
  rejects(() => parse('Observation', '_include:recurse=Observation:subject'), 400, /recurse/);
});

test('types: type-level, _type, and all types', () => {
  assert.deepEqual(parse(undefined, '_type=Patient,Observation').request.resourceTypes, ['Patient', 'Observation']);
  assert.deepEqual(parse(undefined, '').request.resourceTypes, []);
  rejects(() => parse(undefined, '_type=Nope'), 400, /Nope/);
  rejects(() => parse('Nope', ''), 400, /Nope/);
  rejects(() => parse(undefined, 'name=x'), 400, /'name'/);
  rejects(() => parse(undefined, '_type=Patient,Observation&name=x'), 400, /'name'/);
  assert.equal(parse(undefined, '_type=Patient,Practitioner&name=x').request.criteria.length, 1);
  assert.equal(parse(undefined, '_tag=a|b').request.criteria.length, 1);
});

test('escaping', () => {
  assert.deepEqual(splitUnescaped('a\\,b,c\\\\,d', ','), ['a\\,b', 'c\\\\', 'd']);
  assert.equal(unescapeValue('a\\,b\\|c\\$d\\\\e\\x'), 'a,b|c$d\\e\\x');
  const { request } = parse('Patient', 'family=van\\,dyke,smith&identifier=s\\|1|v\\,2');
  assert.deepEqual(request.criteria[0], { kind: 'string', code: 'family', match: 'prefix', values: ['van,dyke', 'smith'] });
  assert.deepEqual(request.criteria[1], { kind: 'token', code: 'identifier', negate: false, values: [{ system: 's|1', code: 'v,2' }] });
});

test('token forms', () => {
  const values = parse('Patient', 'identifier=a|b,|c,d|,e').request.criteria[0];
  assert.deepEqual(values, { kind: 'token', code: 'identifier', negate: false, values: [{ system: 'a', code: 'b' }, { system: null, code: 'c' }, { system: 'd' }, { code: 'e' }] });
  rejects(() => parse('Patient', 'identifier=a|b|c'), 400, /identifier/);
  assert.equal(parse('Patient', 'gender:not=male').request.criteria[0].kind, 'token');
  assert.deepEqual(parse('Observation', 'code:text=Body Héight').request.criteria[0], { kind: 'token-text', code: 'code', values: ['body height'] });
});

test('reference forms', () => {
  const c = (q: string, extra: Partial<ParseOptions> = {}) => parse('Observation', q, extra).request.criteria[0];
  assert.deepEqual(c('subject=Patient/1'), { kind: 'reference', code: 'subject', values: [{ type: 'Patient', id: '1' }] });
  assert.deepEqual(c('patient=1'), { kind: 'reference', code: 'patient', values: [{ type: 'Patient', id: '1' }] }, 'single target');
  assert.deepEqual(c('subject=1'), { kind: 'reference', code: 'subject', values: [{ id: '1' }] }, 'several targets');
  assert.deepEqual(c('subject:Patient=1'), { kind: 'reference', code: 'subject', values: [{ type: 'Patient', id: '1' }] });
  assert.deepEqual(c('subject=http://x.org/fhir/Patient/1'), { kind: 'reference', code: 'subject', values: [{ url: 'http://x.org/fhir/Patient/1' }] });
  assert.deepEqual(c('subject=https://me/fhir/Patient/1/_history/2', { baseUrl: 'https://me/fhir/' }), { kind: 'reference', code: 'subject', values: [{ type: 'Patient', id: '1' }] });
  assert.deepEqual(c('performer:identifier=urn:npi|42'), { kind: 'reference-identifier', code: 'performer', values: [{ system: 'urn:npi', code: '42' }] });
  rejects(() => c('subject=Nope/1'), 400, /Nope/);
  rejects(() => c('subject:Medication=1'), 400, /Medication/);
  rejects(() => c('subject=a b'), 400, /subject/);
});

test('dates: prefixes, precision, time zones, invalid values', () => {
  const d = (q: string) => parse('Patient', q).request.criteria[0] as DateCriterion;
  assert.deepEqual(d('birthdate=2020'), { kind: 'date', code: 'birthdate', values: [{ prefix: 'eq', start: Date.UTC(2020, 0, 1), end: Date.UTC(2021, 0, 1) }] });
  assert.deepEqual(d('birthdate=ge2020-02'), { kind: 'date', code: 'birthdate', values: [{ prefix: 'ge', start: Date.UTC(2020, 1, 1), end: Date.UTC(2020, 2, 1) }] });
  assert.deepEqual(d('birthdate=lt2020-02-03T04:05:06%2B01:00').values, [{ prefix: 'lt', start: Date.UTC(2020, 1, 3, 3, 5, 6), end: Date.UTC(2020, 1, 3, 3, 5, 7) }]);
  const ap = d('birthdate=ap2014').values[0];
  assert.ok(ap.start < Date.UTC(2013, 0, 1) && ap.end > Date.UTC(2015, 11, 31), 'ap widens by 10% of the distance from now');
  rejects(() => d('birthdate=2020-13'), 400, /birthdate/);
  rejects(() => d('birthdate=xx2020'), 400, /birthdate/);
  rejects(() => d('birthdate=yesterday'), 400, /birthdate/);
  assert.deepEqual(parse('Patient', '_lastUpdated=gt2020').request.criteria[0].kind, 'date');
});

test('numbers and quantities: implied precision', () => {
  assert.deepEqual(parseNumberValue('n', '100'), { prefix: 'eq', value: 100, low: 99.5, high: 100.5 });
  assert.deepEqual(parseNumberValue('n', '100.00'), { prefix: 'eq', value: 100, low: 99.995, high: 100.005 });
  assert.deepEqual(parseNumberValue('n', '5.4'), { prefix: 'eq', value: 5.4, low: 5.35, high: 5.45 });
  assert.deepEqual(parseNumberValue('n', 'gt-2'), { prefix: 'gt', value: -2, low: -2.5, high: -1.5 });
  assert.deepEqual(parseNumberValue('n', '1e2'), { prefix: 'eq', value: 100, low: 50, high: 150 });
  assert.deepEqual(parseNumberValue('n', 'ap100'), { prefix: 'ap', value: 100, low: 90, high: 110 });
  rejects(() => parseNumberValue('n', '1,0'), 400, /Invalid number/);
  const q = parse('Observation', 'value-quantity=le5.4|http://unitsofmeasure.org|mg,3||kg,7').request.criteria[0];
  assert.deepEqual(q, {
    kind: 'quantity', code: 'value-quantity', values: [
      { prefix: 'le', value: 5.4, low: 5.35, high: 5.45, system: 'http://unitsofmeasure.org', code: 'mg' },
      { prefix: 'eq', value: 3, low: 2.5, high: 3.5, code: 'kg' },
      { prefix: 'eq', value: 7, low: 6.5, high: 7.5 },
    ],
  });
  rejects(() => parse('Observation', 'value-quantity=5|mg'), 400, /quantity/);
});

test('_sort and :missing', () => {
  assert.deepEqual(parse('Patient', '_sort=-birthdate,name,_id').request.sort, [
    { code: 'birthdate', type: 'date', descending: true }, { code: 'name', type: 'string', descending: false }, { code: '_id', type: 'token', descending: false },
  ]);
  rejects(() => parse('Patient', '_sort=nope'), 400, /nope/);
  assert.deepEqual(parse('Patient', '_sort=nope,name', { lenient: true }).request.sort.map((s) => s.code), ['name']);
  assert.deepEqual(parse('Patient', 'birthdate:missing=true').request.criteria[0], { kind: 'missing', code: 'birthdate', paramType: 'date', missing: true });
  rejects(() => parse('Patient', 'birthdate:missing=maybe'), 400, /missing/);
});

test('an empty value constrains nothing', () => {
  assert.deepEqual(parse('Patient', 'name=&gender=').request.criteria, []);
});
