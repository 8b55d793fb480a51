/**
 * The query of a search as the audit trail keeps it: the value of every identifier criterion
 * (`identifier=`, `identifier:of-type=`, `subject:identifier=`, `patient.identifier=`) replaced by
 * its keyed blind index, so an SSN searched for is not written into the trail or a SIEM in clear.
 * An investigator holding the key can still tell which value was asked for.
 */
export function redactIdentifierValues(query: string, blind: (value: string) => string): string {
  if (!query.includes('identifier')) return query;
  // A conditional create's If-None-Exist may be written `Patient?identifier=...` or `?identifier=...`.
  const prefix = /^[A-Za-z]*\?/.exec(query)?.[0] ?? '';
  return prefix + query.slice(prefix.length).split('&').map((pair) => {
    const eq = pair.indexOf('=');
    if (eq < 0) return pair;
    const name = decode(pair.slice(0, eq));
    if (!/(^|[.:])identifier($|:)/.test(name)) return pair;
    const values = decode(pair.slice(eq + 1)).split(',').map((v) => blindValuePart(v, blind));
    return `${pair.slice(0, eq)}=${encodeURIComponent(values.join(','))}`;
  }).join('&');
}

/** `system|value` and `type-system|type-code|value`: the part after the last bar is the identifier's value. */
function blindValuePart(token: string, blind: (value: string) => string): string {
  const bar = token.lastIndexOf('|');
  const value = token.slice(bar + 1);
  return value === '' ? token : `${token.slice(0, bar + 1)}${blind(value)}`;
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return text;
  }
}
