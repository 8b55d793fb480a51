import type { Resource } from '../types.ts';

/**
 * What `_text` and `_content` search (search.html#text): the narrative as plain text, and all of
 * the resource's text, narrative included. Identifiers of the resource itself (id, meta) and
 * machine strings (systems, URLs, references) are not content a person searches for.
 */
export function narrativeText(resource: Resource): string {
  const div = (resource.text as { div?: unknown } | undefined)?.div;
  return typeof div === 'string' ? htmlToText(div) : '';
}

export function contentText(resource: Resource): string {
  const out: string[] = [];
  for (const [key, value] of Object.entries(resource)) {
    if (key === 'resourceType' || key === 'id' || key === 'meta' || key === 'text') continue;
    collect(value, out);
  }
  return out.join(' ');
}

const machineKeys = new Set(['system', 'url', 'reference', 'id', 'div', 'contentType', 'data']);

function collect(value: unknown, out: string[]): void {
  if (typeof value === 'string') {
    out.push(value);
  } else if (Array.isArray(value)) {
    for (const v of value) collect(v, out);
  } else if (typeof value === 'object' && value !== null) {
    for (const [key, v] of Object.entries(value)) if (!machineKeys.has(key) && !key.startsWith('_')) collect(v, out);
  }
}

const entities: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

function htmlToText(html: string): string {
  return html
    .replace(/<[^>]*>/g, ' ')
    .replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (all, e: string) => {
      if (e[0] === '#') {
        const code = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
        return Number.isFinite(code) && code > 0 && code < 0x110000 ? String.fromCodePoint(code) : ' ';
      }
      return entities[e.toLowerCase()] ?? all;
    })
    .replace(/\s+/g, ' ')
    .trim();
}

/**
 * A `_text` / `_content` value as a full-text query: every word must occur (as a word or the start
 * of one); `"quoted words"` must occur together. Only letters and digits reach the engine, so no
 * value can be read as query syntax.
 */
export function fullTextQuery(value: string): string | undefined {
  const parts: string[] = [];
  const phrase = /"([^"]*)"|(\S+)/g;
  for (let m = phrase.exec(value); m; m = phrase.exec(value)) {
    const words = (m[1] ?? m[2]).normalize('NFKC').match(/[\p{L}\p{N}]+/gu) ?? [];
    if (words.length === 0) continue;
    parts.push(m[1] !== undefined ? `"${words.join(' ')}"` : words.map((w) => `"${w}"*`).join(' AND '));
  }
  return parts.length === 0 ? undefined : parts.join(' AND ');
}
