import { normalizeText } from '../../fhir/search/normalize.ts';

/**
 * Full text on PostgreSQL (tsvector, the 'simple' configuration: no stemming, no stop words), made
 * to behave as the embedded store's FTS5 index does: words are runs of letters and digits, case-
 * and accent-insensitive. The words are found and normalised here, in one way for what is indexed
 * and what is searched, so PostgreSQL's own parser only ever sees plain words separated by spaces.
 */
export function indexedWords(text: string): string {
  const words = text.normalize('NFKC').match(/[\p{L}\p{N}]+/gu) ?? [];
  return words.map(normalizeText).filter((w) => w !== '').join(' ');
}

/**
 * A tsquery for the FTS5 query text.ts fullTextQuery made: `"w"*` is a word or the start of one,
 * `"a b"` a phrase, parts joined by AND. Only words travel (each one a run of letters and digits),
 * so nothing a client sends is read as tsquery syntax.
 */
export function tsQuery(ftsQuery: string): string {
  const parts: string[] = [];
  for (const m of ftsQuery.matchAll(/"([^"]*)"(\*)?/g)) {
    const words = indexedWords(m[1]).split(' ').filter((w) => w !== '');
    if (words.length === 0) continue;
    if (m[2]) parts.push(words.map((w) => `${w}:*`).join(' & '));
    else parts.push(words.length === 1 ? words[0] : `(${words.join(' <-> ')})`);
  }
  // A query whose words all normalise away matches nothing (as FTS5 finds nothing for it).
  return parts.length === 0 ? '' : parts.join(' & ');
}
