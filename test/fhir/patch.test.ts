import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { FhirError } from '../../src/fhir/outcome.ts';
import type { Resource } from '../../src/fhir/types.ts';
import { applyJsonPatch } from '../../src/fhir/patch/json-patch.ts';
import { applyFhirPathPatch } from '../../src/fhir/patch/fhirpath-patch.ts';

const fixture = (name: string): unknown => JSON.parse(readFileSync(new URL(`./fixtures/fhirpath-patch/${name}`, import.meta.url), 'utf8'));

/** Runs `fn`, which must throw a FhirError with `status` whose diagnostics match `pattern`; returns it. */
function fails(fn: () => unknown, status: number, pattern: RegExp): FhirError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof FhirError, `expected a FhirError, got ${String(caught)}`);
  assert.equal(caught.status, status, caught.message);
  assert.match(caught.issues[0].diagnostics ?? '', pattern);
  return caught;
}

const patient = (): Resource => ({
  resourceType: 'Patient',
  id: 'p1',
  meta: { versionId: '3', lastUpdated: '2024-01-01T00:00:00Z' },
  active: true,
  gender: 'female',
  birthDate: '1970-02-03',
  name: [{ family: 'Chalmers', given: ['Peter', 'James'] }],
  identifier: [{ system: 'urn:mrn', value: '1' }, { system: 'urn:mrn', value: '2' }],
});

describe('JSON Patch (application/json-patch+json)', () => {
  interface JsonCase { comment: string; doc: Record<string, unknown>; patch: unknown; expected?: Record<string, unknown>; error?: string }

  describe('RFC 6902 cases from fhir-test-cases (documents wrapped as a Basic resource)', () => {
    for (const c of fixture('json-patch-tests.json') as JsonCase[]) {
      it(c.comment, () => {
        const doc = { resourceType: 'Basic', ...c.doc } as Resource;
        if (c.error) {
          fails(() => applyJsonPatch(doc, c.patch), 422, /JSON Patch operation \d/);
        } else {
          assert.deepEqual(applyJsonPatch(doc, c.patch), { resourceType: 'Basic', ...c.expected });
        }
      });
    }
  });

  it('applies add, remove, replace, move, copy and test in order', () => {
    const out = applyJsonPatch(patient(), [
      { op: 'test', path: '/gender', value: 'female' },
      { op: 'replace', path: '/gender', value: 'male' },
      { op: 'add', path: '/name/0/given/-', value: 'Jim' },
      { op: 'add', path: '/telecom', value: [{ system: 'phone', value: '555' }] },
      { op: 'remove', path: '/active' },
      { op: 'move', from: '/identifier/1', path: '/identifier/0' },
      { op: 'copy', from: '/name/0', path: '/name/-' },
      { op: 'test', path: '/name/1/given/2', value: 'Jim' },
    ]);
    assert.deepEqual(out, {
      resourceType: 'Patient',
      id: 'p1',
      meta: { versionId: '3', lastUpdated: '2024-01-01T00:00:00Z' },
      gender: 'male',
      birthDate: '1970-02-03',
      name: [{ family: 'Chalmers', given: ['Peter', 'James', 'Jim'] }, { family: 'Chalmers', given: ['Peter', 'James', 'Jim'] }],
      identifier: [{ system: 'urn:mrn', value: '2' }, { system: 'urn:mrn', value: '1' }],
      telecom: [{ system: 'phone', value: '555' }],
    });
  });

  it('copies values rather than sharing them', () => {
    const out = applyJsonPatch(patient(), [{ op: 'copy', from: '/name/0', path: '/contact' }]) as Resource & { contact: unknown; name: unknown[] };
    assert.notEqual(out.contact, out.name[0]);
  });

  it('a failing test operation is 422 and names the operation', () => {
    const err = fails(() => applyJsonPatch(patient(), [
      { op: 'replace', path: '/active', value: false },
      { op: 'test', path: '/gender', value: 'male' },
    ]), 422, /operation 1 \(test \/gender\) failed/);
    assert.equal(err.issues[0].code, 'processing');
  });

  it('a test comparing a number with a string fails', () => {
    fails(() => applyJsonPatch({ resourceType: 'Basic', n: 10 }, [{ op: 'test', path: '/n', value: '10' }]), 422, /failed/);
  });

  it('paths that do not exist are 422', () => {
    fails(() => applyJsonPatch(patient(), [{ op: 'remove', path: '/deceasedBoolean' }]), 422, /operation 0 \(remove \/deceasedBoolean\): the path does not exist/);
    fails(() => applyJsonPatch(patient(), [{ op: 'replace', path: '/name/5/family', value: 'x' }]), 422, /does not exist/);
    fails(() => applyJsonPatch(patient(), [{ op: 'add', path: '/contact/0/name', value: {} }]), 422, /does not exist/);
    fails(() => applyJsonPatch(patient(), [{ op: 'add', path: '/identifier/7', value: {} }]), 422, /past the end/);
    fails(() => applyJsonPatch(patient(), [{ op: 'add', path: '/identifier/first', value: {} }]), 422, /index or "-"/);
    fails(() => applyJsonPatch(patient(), [{ op: 'move', from: '/nope', path: '/x' }]), 422, /"from" \/nope does not exist/);
  });

  describe('malformed patch documents are 400 naming the operation', () => {
    const cases: [string, unknown, RegExp][] = [
      ['not an array', { op: 'add', path: '/a', value: 1 }, /must be a JSON array/],
      ['operation not an object', [1], /operation 0 must be a JSON object/],
      ['unknown op', [{ op: 'test', path: '/a', value: 1 }, { op: 'merge', path: '/a' }], /operation 1: "op" must be one of/],
      ['missing op', [{ path: '/a' }], /operation 0: "op" must be one of .*got nothing/],
      ['missing path', [{ op: 'remove' }], /operation 0 \(remove\): "path" must be a string/],
      ['path not a pointer', [{ op: 'remove', path: 'gender' }], /must be empty or start with "\/"/],
      ['bad ~ escape', [{ op: 'remove', path: '/a~2b' }], /invalid escape/],
      ['missing value', [{ op: 'add', path: '/a' }], /"value" is required/],
      ['missing from', [{ op: 'copy', path: '/a' }], /"from" must be a string/],
      ['move into itself', [{ op: 'move', from: '/name', path: '/name/0/x' }], /cannot be moved into itself/],
      ['__proto__', [{ op: 'add', path: '/__proto__/polluted', value: true }], /reserved name "__proto__"/],
      ['constructor/prototype', [{ op: 'add', path: '/constructor/prototype/polluted', value: true }], /reserved name "constructor"/],
      ['escaped __proto__ in from', [{ op: 'copy', from: '/__proto__', path: '/x' }], /reserved name/],
    ];
    for (const [label, patch, pattern] of cases) {
      it(label, () => {
        fails(() => applyJsonPatch(patient(), patch), 400, pattern);
      });
    }
    it('does not pollute Object.prototype', () => {
      assert.throws(() => applyJsonPatch(patient(), [{ op: 'add', path: '/__proto__/polluted', value: true }]));
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
    });
  });

  describe('resourceType and id belong to the server', () => {
    const refused: [string, unknown[]][] = [
      ['replace /id', [{ op: 'replace', path: '/id', value: 'other' }]],
      ['remove /id', [{ op: 'remove', path: '/id' }]],
      ['add /id', [{ op: 'add', path: '/id', value: 'p1' }]],
      ['move from /id', [{ op: 'move', from: '/id', path: '/text' }]],
      ['replace /resourceType', [{ op: 'replace', path: '/resourceType', value: 'Practitioner' }]],
    ];
    for (const [label, patch] of refused) {
      it(label, () => {
        fails(() => applyJsonPatch(patient(), patch), 422, /operation 0 \(\w+\) would change \/(id|resourceType)/);
      });
    }
    it('replacing or removing the whole document cannot change them either', () => {
      fails(() => applyJsonPatch(patient(), [{ op: 'replace', path: '', value: { resourceType: 'Patient', id: 'other' } }]), 422, /resourceType and id cannot be changed/);
      fails(() => applyJsonPatch(patient(), [{ op: 'remove', path: '' }]), 422, /resourceType and id cannot be changed/);
    });
    it('tests on them and copies from them are fine', () => {
      const out = applyJsonPatch(patient(), [{ op: 'test', path: '/id', value: 'p1' }, { op: 'copy', from: '/id', path: '/identifier/0/value' }]);
      assert.equal((out.identifier as { value: string }[])[0].value, 'p1');
    });
    it('meta.versionId changes pass through (the server overwrites them)', () => {
      const out = applyJsonPatch(patient(), [{ op: 'replace', path: '/meta/versionId', value: '99' }]);
      assert.equal(out.meta?.versionId, '99');
    });
  });

  it('an absurdly deep value is 400, not a crash', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 200_000; i++) deep = [deep];
    fails(() => applyJsonPatch(patient(), [{ op: 'add', path: '/x', value: deep }]), 400, /nested too deeply/);
  });

  it('never mutates the resource or the patch', () => {
    const resource = patient();
    const before = structuredClone(resource);
    const patch = [
      { op: 'add', path: '/contact', value: [{ name: { text: 'x' } }] },
      { op: 'add', path: '/contact/0/gender', value: 'male' },
      { op: 'remove', path: '/name/0/given/0' },
    ];
    const patchBefore = structuredClone(patch);
    const out = applyJsonPatch(resource, patch);
    assert.deepEqual(resource, before);
    assert.deepEqual(patch, patchBefore);
    assert.notDeepEqual(out, before);
    fails(() => applyJsonPatch(resource, [{ op: 'remove', path: '/gender' }, { op: 'remove', path: '/gender' }]), 422, /operation 1/);
    assert.deepEqual(resource, before);
  });
});

// ---------------------------------------------------------------------------------------------

type Part = Record<string, unknown>;
const operation = (type: string, path: string, extra: Part[] = []) => ({
  name: 'operation',
  part: [{ name: 'type', valueCode: type }, { name: 'path', valueString: path }, ...extra],
});
const params = (...ops: unknown[]) => ({ resourceType: 'Parameters', parameter: ops });
const value = (v: Part): Part => ({ name: 'value', ...v });
const named = (n: string): Part => ({ name: 'name', valueString: n });
const int = (name: string, n: number): Part => ({ name, valueInteger: n });

/** An Extension given as parts, each level nesting another extension. */
function deepExtension(levels: number): Part {
  let inner: Part = { name: 'url', valueUri: 'http://example.org/x' };
  for (let i = 0; i < levels; i++) inner = { name: 'extension', part: [{ name: 'url', valueUri: 'http://example.org/x' }, inner] };
  return { part: (inner.part as Part[]) };
}

describe('FHIRPath Patch (Parameters)', () => {
  interface PatchCase { name: string; input: Resource; diff: unknown; output?: Resource; error?: string }

  describe('official FHIR patch test cases (fhir-test-cases r4/patch/fhir-patch-tests.xml)', () => {
    for (const c of fixture('fhir-patch-tests.json') as PatchCase[]) {
      it(c.name, () => {
        const input = structuredClone(c.input);
        if (c.error) {
          const err = fails(() => applyFhirPathPatch(input, c.diff), 422, /operation 0/);
          assert.ok(err.message.toLowerCase().includes(c.error.toLowerCase()), err.message);
        } else {
          assert.deepEqual(applyFhirPathPatch(input, c.diff), c.output);
        }
        assert.deepEqual(input, c.input, 'input must not be mutated');
      });
    }
  });

  describe('choice elements', () => {
    it('replace can change the type, and so the JSON name', () => {
      const out = applyFhirPathPatch({ resourceType: 'Patient', deceasedBoolean: false },
        params(operation('replace', 'Patient.deceased', [value({ valueDateTime: '2020-01-01' })])));
      assert.deepEqual(out, { resourceType: 'Patient', deceasedDateTime: '2020-01-01' });
    });
    it('add takes the base name or the typed name', () => {
      const viaBase = applyFhirPathPatch({ resourceType: 'Patient' }, params(operation('add', 'Patient', [named('multipleBirth'), value({ valueInteger: 2 })])));
      const viaTyped = applyFhirPathPatch({ resourceType: 'Patient' }, params(operation('add', 'Patient', [named('multipleBirthInteger'), value({ valueInteger: 2 })])));
      assert.deepEqual(viaBase, { resourceType: 'Patient', multipleBirthInteger: 2 });
      assert.deepEqual(viaTyped, viaBase);
    });
    it('add refuses a type the choice does not allow, and a second value', () => {
      fails(() => applyFhirPathPatch({ resourceType: 'Patient' }, params(operation('add', 'Patient', [named('multipleBirth'), value({ valueString: 'two' })]))),
        422, /multipleBirth\[x\] in Patient cannot be String; allowed: Boolean, Integer/);
      fails(() => applyFhirPathPatch({ resourceType: 'Patient', deceasedBoolean: true }, params(operation('add', 'Patient', [named('deceased'), value({ valueDateTime: '2020' })]))),
        422, /"deceasedBoolean" already has a value/);
    });
    it('works inside contained resources', () => {
      const input: Resource = { resourceType: 'Patient', contained: [{ resourceType: 'Observation', id: 'o', status: 'final', code: { text: 'c' }, valueQuantity: { value: 1 } }] };
      const out = applyFhirPathPatch(input, params(operation('replace', 'Patient.contained.ofType(Observation).value', [value({ valueString: 'text now' })])));
      assert.deepEqual(out.contained, [{ resourceType: 'Observation', id: 'o', status: 'final', code: { text: 'c' }, valueString: 'text now' }]);
    });
  });

  describe('primitive id and extensions (the `_name` half of FHIR JSON)', () => {
    const withExt = (): Resource => ({
      resourceType: 'Patient',
      birthDate: '1970-01-01',
      _birthDate: { extension: [{ url: 'http://example.org/a', valueString: 'x' }] },
      name: [{ given: ['A', 'B'], _given: [null, { id: 'g2' }] }],
    });
    it('add extension to a primitive', () => {
      const out = applyFhirPathPatch({ resourceType: 'Patient', gender: 'male' },
        params(operation('add', 'Patient.gender', [named('extension'), value({ valueExtension: { url: 'http://example.org/b', valueCode: 'y' } })])));
      assert.deepEqual(out, { resourceType: 'Patient', gender: 'male', _gender: { extension: [{ url: 'http://example.org/b', valueCode: 'y' }] } });
    });
    it('deleting the last extension drops the `_` object', () => {
      const out = applyFhirPathPatch(withExt(), params(operation('delete', 'Patient.birthDate.extension')));
      assert.equal('_birthDate' in out, false);
      assert.equal(out.birthDate, '1970-01-01');
    });
    it('deleting a primitive deletes its extensions too', () => {
      const out = applyFhirPathPatch(withExt(), params(operation('delete', 'Patient.birthDate')));
      assert.deepEqual(out, { resourceType: 'Patient', name: [{ given: ['A', 'B'], _given: [null, { id: 'g2' }] }] });
    });
    it('list operations keep `given` and `_given` aligned', () => {
      const del = applyFhirPathPatch(withExt(), params(operation('delete', 'Patient.name.given[0]')));
      assert.deepEqual(del.name, [{ given: ['B'], _given: [{ id: 'g2' }] }]);
      const ins = applyFhirPathPatch(withExt(), params(operation('insert', 'Patient.name.given', [value({ valueString: 'Z', _valueString: { id: 'z' } }), int('index', 1)])));
      assert.deepEqual(ins.name, [{ given: ['A', 'Z', 'B'], _given: [null, { id: 'z' }, { id: 'g2' }] }]);
      const mov = applyFhirPathPatch(withExt(), params(operation('move', 'Patient.name.given', [int('source', 1), int('destination', 0)])));
      assert.deepEqual(mov.name, [{ given: ['B', 'A'], _given: [{ id: 'g2' }, null] }]);
      const delId = applyFhirPathPatch(withExt(), params(operation('delete', 'Patient.name.given[1].id')));
      assert.deepEqual(delId.name, [{ given: ['A', 'B'] }]);
    });
  });

  describe('values given as parts', () => {
    it('builds backbone elements, with lists, nested backbones and datatypes', () => {
      const out = applyFhirPathPatch({ resourceType: 'Patient' }, params(operation('add', 'Patient', [named('contact'), value({
        part: [
          { name: 'name', valueHumanName: { text: 'n' } },
          { name: 'telecom', valueContactPoint: { value: '1' } },
          { name: 'telecom', valueContactPoint: { value: '2' } },
          { name: 'period', part: [{ name: 'start', valueDateTime: '2020' }] },
        ],
      })])));
      assert.deepEqual(out.contact, [{ name: { text: 'n' }, telecom: [{ value: '1' }, { value: '2' }], period: { start: '2020' } }]);
    });
    it('follows recursive elements (Questionnaire.item.item)', () => {
      const q: Resource = { resourceType: 'Questionnaire', status: 'draft', item: [{ linkId: '1', type: 'group' }] };
      const out = applyFhirPathPatch(q, params(operation('add', "Questionnaire.item.where(linkId = '1')", [named('item'), value({
        part: [{ name: 'linkId', valueString: '1.1' }, { name: 'type', valueCode: 'group' }, { name: 'item', part: [{ name: 'linkId', valueString: '1.1.1' }, { name: 'type', valueCode: 'display' }] }],
      })])));
      assert.deepEqual(out.item, [{ linkId: '1', type: 'group', item: [{ linkId: '1.1', type: 'group', item: [{ linkId: '1.1.1', type: 'display' }] }] }]);
    });
    it('refuses unknown children and repeats of single elements', () => {
      fails(() => applyFhirPathPatch({ resourceType: 'Patient' }, params(operation('add', 'Patient', [named('contact'), value({ part: [{ name: 'nope', valueString: 'x' }] })]))),
        422, /"nope" is not an element of Patient.contact/);
      fails(() => applyFhirPathPatch({ resourceType: 'Patient' }, params(operation('add', 'Patient', [named('contact'), value({ part: [{ name: 'gender', valueCode: 'male' }, { name: 'gender', valueCode: 'female' }] })]))),
        422, /"gender" is not a repeating element but is given more than once/);
    });
    it('a resource value goes into contained', () => {
      const out = applyFhirPathPatch({ resourceType: 'Patient' }, params(operation('add', 'Patient', [named('contained'), value({ resource: { resourceType: 'Practitioner', id: 'pr' } })])));
      assert.deepEqual(out.contained, [{ resourceType: 'Practitioner', id: 'pr' }]);
    });
  });

  it('accepts Narrative.div although div is a FHIRPath operator', () => {
    const input: Resource = { resourceType: 'Patient', text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">a</div>' } };
    const out = applyFhirPathPatch(input, params(operation('replace', 'Patient.text.div', [value({ valueString: '<div xmlns="http://www.w3.org/1999/xhtml">b</div>' })])));
    assert.deepEqual(out.text, { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">b</div>' });
  });

  it('trace() in a path does not write resource content to the console', () => {
    const original = console.log;
    const logged: unknown[] = [];
    console.log = (...args: unknown[]) => { logged.push(args); };
    try {
      applyFhirPathPatch(patient(), params(operation('delete', "Patient.name.trace('n').family")));
    } finally {
      console.log = original;
    }
    assert.deepEqual(logged, []);
  });

  it('delete on a path that matches nothing changes nothing', () => {
    const out = applyFhirPathPatch(patient(), params(operation('delete', 'Patient.deceased')));
    assert.deepEqual(out, patient());
  });

  it('insert into a list that does not exist yet creates it', () => {
    const out = applyFhirPathPatch({ resourceType: 'Patient' }, params(operation('insert', 'Patient.identifier', [value({ valueIdentifier: { value: 'x' } }), int('index', 0)])));
    assert.deepEqual(out, { resourceType: 'Patient', identifier: [{ value: 'x' }] });
  });

  describe('paths that do not fit the operation are 422', () => {
    const cases: [string, unknown, RegExp][] = [
      ['replace matching nothing', operation('replace', 'Patient.deceased', [value({ valueBoolean: true })]), /no content found at Patient.deceased when replacing/],
      ['replace matching several', operation('replace', 'Patient.name.given', [value({ valueString: 'x' })]), /matches 2 elements; replace needs exactly one/],
      ['delete matching several', operation('delete', 'Patient.identifier'), /matches 2 elements; delete needs exactly one/],
      ['add matching several', operation('add', 'Patient.identifier', [named('use'), value({ valueCode: 'usual' })]), /matches 2 elements; add needs exactly one/],
      ['insert with no container', operation('insert', 'Patient.contact.telecom', [value({ valueContactPoint: { value: '1' } }), int('index', 0)]), /no content found at Patient.contact when inserting/],
      ['insert past the end', operation('insert', 'Patient.identifier', [value({ valueIdentifier: { value: '3' } }), int('index', 3)]), /index 3 is past the end of the list "identifier", which has 2/],
      ['insert into a non-list', operation('insert', 'Patient.birthDate', [value({ valueDate: '2000' }), int('index', 0)]), /"birthDate" is not a list/],
      ['move outside the list', operation('move', 'Patient.identifier', [int('source', 0), int('destination', 2)]), /destination index 2 is outside the list/],
      ['add an unknown element', operation('add', 'Patient', [named('favouriteColour'), value({ valueString: 'blue' })]), /"favouriteColour" is not an element of Patient/],
      ['add a single element that is already there', operation('add', 'Patient', [named('gender'), value({ valueCode: 'male' })]), /"gender" already has a value and does not repeat; use replace/],
      ['add resourceType', operation('add', 'Patient', [named('resourceType'), value({ valueString: 'Practitioner' })]), /"resourceType" is not an element/],
      ['wrong primitive type', operation('replace', 'Patient.active', [value({ valueString: 'yes' })]), /a string value cannot be used for an element of type boolean/],
      ['wrong complex type', operation('replace', 'Patient.name[0]', [value({ valueIdentifier: { value: 'x' } })]), /a Identifier value cannot be used for an element of type HumanName/],
      ['backbone given as value[x]', operation('add', 'Patient', [named('contact'), value({ valueHumanName: { text: 'x' } })]), /backbone element; give its content as nested parts/],
      ['a literal, not an element', operation('replace', "'abc'", [value({ valueString: 'x' })]), /not an element of the resource being patched/],
      ['the resource itself', operation('delete', 'Patient'), /the resource itself/],
      ['an unknown function', operation('delete', 'Patient.frobnicate()'), /evaluating the path failed/],
      ['changing the id', operation('replace', 'Patient.id', [value({ valueId: 'p2' })]), /id is assigned by the server/],
      ['deleting the id', operation('delete', 'Patient.id'), /id is assigned by the server/],
    ];
    for (const [label, op, pattern] of cases) {
      it(label, () => {
        const err = fails(() => applyFhirPathPatch(patient(), params(op)), 422, pattern);
        assert.match(err.message, /^FHIRPath Patch operation 0 \(/);
        assert.deepEqual(err.issues[0].expression, ['Parameters.parameter[0]']);
      });
    }
  });

  describe('malformed Parameters are 400', () => {
    const cases: [string, unknown, RegExp][] = [
      ['not a Parameters', { resourceType: 'Patient' }, /must be a Parameters resource/],
      ['parameter not a list', { resourceType: 'Parameters', parameter: {} }, /must be a list/],
      ['parameter not named operation', params({ name: 'op', part: [] }), /operation 0: each parameter must be named "operation"/],
      ['no parts', params({ name: 'operation' }), /operation has no parts/],
      ['unknown type', params(operation('upsert', 'Patient')), /"type" must be a valueCode of add \| insert/],
      ['missing part', params(operation('insert', 'Patient.identifier', [value({ valueIdentifier: {} })])), /insert needs the "index" part/],
      ['part that does not belong', params(operation('delete', 'Patient.gender', [int('index', 0)])), /part "index" is not used by delete/],
      ['repeated part', params(operation('delete', 'Patient.gender', [{ name: 'path', valueString: 'Patient.active' }])), /part "path" is given more than once/],
      ['invalid FHIRPath', params(operation('delete', 'Patient.name.(')), /path "Patient.name.\(" is not valid FHIRPath/],
      ['negative index', params(operation('insert', 'Patient.identifier', [value({ valueIdentifier: {} }), int('index', -1)])), /"index" must be a valueInteger of 0 or more/],
      ['insert path not naming a list', params(operation('insert', 'Patient.identifier[0]', [value({ valueIdentifier: {} }), int('index', 0)])), /ends with the name of a list element/],
      ['value with two value[x]', params(operation('replace', 'Patient.gender', [value({ valueCode: 'male', valueString: 'male' })])), /exactly one of value\[x\], resource or part/],
      ['value with none', params(operation('replace', 'Patient.gender', [value({})])), /exactly one of value\[x\].*found none/],
      ['value of the wrong JSON type', params(operation('replace', 'Patient.birthDate', [value({ valueDate: 19700101 })])), /a date value must be a JSON string/],
      ['unknown value[x]', params(operation('replace', 'Patient.gender', [value({ valueWhatever: 'x' })])), /valueWhatever does not name a FHIR data type/],
      ['name that is not an element name', params(operation('add', 'Patient', [named('__proto__'), value({ valueString: 'x' })])), /"__proto__" is not a valid element name/],
      ['parts nested without end', params(operation('add', 'Patient', [named('extension'), value(deepExtension(60))])), /nested more than 50 levels deep/],
      ['second operation malformed', params(operation('delete', 'Patient.gender'), operation('move', 'Patient.identifier', [int('source', 0)])), /operation 1: move needs the "destination" part/],
    ];
    for (const [label, body, pattern] of cases) {
      it(label, () => {
        fails(() => applyFhirPathPatch(patient(), body), 400, pattern);
      });
    }
  });

  it('a failure in a later operation names it and applies nothing', () => {
    const resource = patient();
    const err = fails(() => applyFhirPathPatch(resource, params(
      operation('replace', 'Patient.gender', [value({ valueCode: 'male' })]),
      operation('replace', 'Patient.deceased', [value({ valueBoolean: true })]),
    )), 422, /^FHIRPath Patch operation 1 \(replace Patient.deceased\): no content found/);
    assert.deepEqual(err.issues[0].expression, ['Parameters.parameter[1]']);
    assert.equal(resource.gender, 'female');
  });

  it('never mutates the resource or the Parameters, and shares no objects with them', () => {
    const resource = patient();
    const before = structuredClone(resource);
    const body = params(
      operation('add', 'Patient', [named('contact'), value({ part: [{ name: 'name', valueHumanName: { text: 'n' } }] })]),
      operation('add', 'Patient.contact[0].name', [named('family'), value({ valueString: 'F' })]),
      operation('replace', 'Patient.name[0].family', [value({ valueString: 'Other' })]),
      operation('delete', 'Patient.identifier[0]'),
    );
    const bodyBefore = structuredClone(body);
    const out = applyFhirPathPatch(resource, body);
    assert.deepEqual(resource, before);
    assert.deepEqual(body, bodyBefore);
    assert.deepEqual(out.contact, [{ name: { text: 'n', family: 'F' } }]);
    assert.notEqual(out.name, resource.name);
  });
});
