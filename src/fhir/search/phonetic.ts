/**
 * The `phonetic` parameters (Patient, Practitioner, RelatedPerson, Person: "a portion of either
 * family or given name using some kind of phonetic matching algorithm") use American Soundex:
 * simple, deterministic and what most FHIR servers use, so `Smyth` finds `Smith`. Written here
 * because the algorithm is a dozen lines with no edge a library would handle better.
 */
const codes: Record<string, string> = {
  b: '1', f: '1', p: '1', v: '1',
  c: '2', g: '2', j: '2', k: '2', q: '2', s: '2', x: '2', z: '2',
  d: '3', t: '3', l: '4', m: '5', n: '5', r: '6',
};

/** The Soundex code of a word (letters only, accents folded), e.g. R163 for Robert; undefined without letters. */
export function soundex(word: string): string | undefined {
  const letters = word.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase().replace(/[^a-z]/g, '');
  if (letters.length === 0) return undefined;
  let out = letters[0].toUpperCase();
  let last = codes[letters[0]] ?? '';
  for (let i = 1; i < letters.length && out.length < 4; i++) {
    const ch = letters[i];
    const code = codes[ch];
    if (code && code !== last) out += code;
    // h and w do not separate letters with the same code; vowels do.
    if (ch !== 'h' && ch !== 'w') last = code ?? '';
  }
  return out.padEnd(4, '0');
}

/** The Soundex codes of each word of a name part. */
export function soundexWords(text: string): string[] {
  const out: string[] = [];
  for (const word of text.split(/[\s\-]+/)) {
    const code = soundex(word);
    if (code) out.push(code);
  }
  return out;
}
