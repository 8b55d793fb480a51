import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ValueSetExpander } from '../../src/fhir/terminology/expand.ts';
import { packageTerminology } from '../../src/fhir/terminology/package-source.ts';
import type { CodeSystem, TerminologySource, ValueSet } from '../../src/fhir/terminology/types.ts';

const cs: CodeSystem = {
  resourceType: 'CodeSystem', url: 'urn:cs', content: 'complete',
  concept: [{ code: 'a', concept: [{ code: 'a1', concept: [{ code: 'a11' }] }, { code: 'a2' }] }, { code: 'b', property: [{ code: 'child', valueCode: 'b1' }] }, { code: 'b1' }],
};

function source(...valueSets: ValueSet[]): TerminologySource {
  return {
    codeSystem: (url) => (url === cs.url ? cs : packageTerminology.codeSystem(url)),
    valueSet: (url) => valueSets.find((v) => v.url === url) ?? packageTerminology.valueSet(url),
  };
}

const vs = (url: string, compose: ValueSet['compose'], expansion?: ValueSet['expansion']): ValueSet => ({ resourceType: 'ValueSet', url, compose, expansion });
const codes = (e: { codes: ReadonlySet<string> } | null) => (e ? [...e.codes].sort() : null);

describe('value set expansion', () => {
  test('hierarchy filters: is-a, descendent-of, is-not-a (by nesting and by child property)', () => {
    const x = new ValueSetExpander(source(
      vs('urn:isa', { include: [{ system: 'urn:cs', filter: [{ property: 'concept', op: 'is-a', value: 'a1' }] }] }),
      vs('urn:desc', { include: [{ system: 'urn:cs', filter: [{ property: 'concept', op: 'descendent-of', value: 'a' }] }] }),
      vs('urn:not', { include: [{ system: 'urn:cs', filter: [{ property: 'concept', op: 'is-not-a', value: 'a' }] }] }),
      vs('urn:child', { include: [{ system: 'urn:cs', filter: [{ property: 'concept', op: 'is-a', value: 'b' }] }] }),
    ));
    assert.deepEqual(codes(x.expand('urn:isa')), ['a1', 'a11']);
    assert.deepEqual(codes(x.expand('urn:desc')), ['a1', 'a11', 'a2']);
    assert.deepEqual(codes(x.expand('urn:not')), ['b', 'b1']);
    assert.deepEqual(codes(x.expand('urn:child')), ['b', 'b1']);
  });

  test('exclude removes codes; a stored expansion serves when there is no compose; versions are ignored', () => {
    const x = new ValueSetExpander(source(
      vs('urn:ex', { include: [{ system: 'urn:cs' }], exclude: [{ system: 'urn:cs', concept: [{ code: 'a11' }, { code: 'b' }] }] }),
      vs('urn:pre', undefined, { contains: [{ system: 'urn:other', code: 'z', contains: [{ system: 'urn:other', code: 'y' }] }] }),
    ));
    assert.deepEqual(codes(x.expand('urn:ex|2.0')), ['a', 'a1', 'a2', 'b1']);
    assert.deepEqual(codes(x.expand('urn:pre')), ['y', 'z']);
  });

  test('anything not fully known gives null, and names what was missing', () => {
    const x = new ValueSetExpander(source(
      vs('urn:regex', { include: [{ system: 'urn:cs', filter: [{ property: 'concept', op: 'regex', value: 'a.*' }] }] }),
      vs('urn:missing', { include: [{ system: 'urn:nowhere' }] }),
      vs('urn:loop', { include: [{ valueSet: ['urn:loop'] }] }),
    ));
    assert.equal(x.expand('urn:regex'), null);
    assert.equal(x.expand('urn:missing'), null);
    assert.equal(x.expand('urn:loop'), null);
    assert.equal(x.expand('urn:absent'), null);
    assert.ok(x.missing.has('urn:nowhere') && x.missing.has('urn:absent'));
  });

  test('R4 value sets with is-a filters over v3 code systems now expand', () => {
    const x = new ValueSetExpander(packageTerminology);
    const e = x.expand('http://terminology.hl7.org/ValueSet/v3-ActEncounterCode');
    assert.ok(e && e.codes.has('AMB') && e.codes.has('IMP'));
  });
});
