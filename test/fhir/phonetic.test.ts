import { test } from 'node:test';
import assert from 'node:assert/strict';
import { soundex, soundexWords } from '../../src/fhir/search/phonetic.ts';

test('Soundex: the reference examples', () => {
  // The examples of the US National Archives' description of the coding rules.
  for (const [name, code] of [
    ['Robert', 'R163'], ['Rupert', 'R163'], ['Rubin', 'R150'], ['Ashcraft', 'A261'], ['Ashcroft', 'A261'],
    ['Tymczak', 'T522'], ['Pfister', 'P236'], ['Honeyman', 'H555'], ['Smith', 'S530'], ['Smyth', 'S530'], ['Lee', 'L000'],
  ]) {
    assert.equal(soundex(name), code, name);
  }
  assert.equal(soundex('Müller'), soundex('Muller'));
  assert.equal(soundex('123'), undefined);
  assert.deepEqual(soundexWords("Mary-Ann O'Neil"), ['M600', 'A500', 'O540']);
});
