/**
 * String search is case- and accent-insensitive (search.html#string): both the indexed text and
 * the searched text go through this one function, so they always agree.
 */
export function normalizeText(s: string): string {
  // Plain ASCII is by far the common case; skip the Unicode decomposition for it.
  if (/^[\x00-\x7f]*$/.test(s)) return s.toLowerCase().trim();
  return s.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase().trim();
}

/** The greatest code point: `x >= p AND x < p + prefixEnd` selects exactly the strings starting with p. */
export const prefixEnd = '\u{10FFFF}';
