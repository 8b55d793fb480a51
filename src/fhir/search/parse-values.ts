import { parseDateRange } from '../datetime.ts';
import { badRequest } from '../outcome.ts';
import { isResourceTypeName } from './params.ts';
import type { DateValue, NumberValue, Prefix, QuantityValue, ReferenceValue, TokenValue } from './types.ts';

/**
 * Parsers for one search value of each parameter type. Input still carries the search escapes
 * (`\,` `\|` `\$` `\\`, search.html#escaping) so the separators can be told from literal
 * characters; output is unescaped.
 */

/** Splits on `sep` where it is not escaped; the pieces keep their escapes. */
export function splitUnescaped(value: string, sep: string): string[] {
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    if (value[i] === '\\') i++;
    else if (value[i] === sep) {
      out.push(value.slice(start, i));
      start = i + 1;
    }
  }
  out.push(value.slice(start));
  return out;
}

export function unescapeValue(value: string): string {
  return value.replace(/\\([,|$\\])/g, '$1');
}

const prefixPattern = /^(eq|ne|gt|lt|ge|le|sa|eb|ap)(?=[-+.\d])/;

export function splitPrefix(value: string): { prefix: Prefix; rest: string } {
  const m = prefixPattern.exec(value);
  return m ? { prefix: m[1] as Prefix, rest: value.slice(2) } : { prefix: 'eq', rest: value };
}

export function parseDateValue(code: string, raw: string, now: number): DateValue {
  const { prefix, rest } = splitPrefix(raw);
  const range = parseDateRange(rest);
  if (!range) throw badRequest(`Invalid date '${raw}' for search parameter '${code}' (expected [prefix]YYYY[-MM[-DD[Thh:mm[:ss[.sss]][Z|+hh:mm]]]])`);
  let { start, end } = range;
  if (prefix === 'ap') {
    // search.html#prefix leaves "approximately" to the server: 10% of the distance from now, in
    // whole milliseconds (the index holds instants as integers: PostgreSQL refuses a fraction there).
    const slack = Math.ceil(Math.abs(now - start) * 0.1);
    start -= slack;
    end += slack;
  }
  return { prefix, start, end };
}

const decimalPattern = /^([-+]?)(\d+)(?:\.(\d+))?(?:[eE]([-+]?\d+))?$/;

/**
 * A number and the range its precision implies: `100` is [99.5, 100.5), `100.00` is
 * [99.995, 100.005). Bounds are computed from the decimal digits, not by float subtraction, so
 * a boundary like 5.35 for `5.4` is exactly the double nearest 5.35.
 */
export function parseNumberValue(code: string, raw: string): NumberValue {
  const { prefix, rest } = splitPrefix(raw);
  const m = decimalPattern.exec(rest);
  if (!m) throw badRequest(`Invalid number '${raw}' for search parameter '${code}'`);
  const [, sign, int, frac = '', exp = '0'] = m;
  const value = Number(rest);
  const mantissa = BigInt(sign + int + frac);
  const scale = Number(exp) - frac.length;
  const twice = (n: bigint): number => Number(`${n}e${scale}`) / 2;
  let low = twice(mantissa * 2n - 1n);
  let high = twice(mantissa * 2n + 1n);
  if (prefix === 'ap' && value !== 0) {
    low = value - Math.abs(value) * 0.1;
    high = value + Math.abs(value) * 0.1;
  }
  return { prefix, value, low, high };
}

/** `[prefix]number|system|code`, `[prefix]number||code` or `[prefix]number`. */
export function parseQuantityValue(code: string, raw: string): QuantityValue {
  const parts = splitUnescaped(raw, '|');
  if (parts.length !== 1 && parts.length !== 3) {
    throw badRequest(`Invalid quantity '${unescapeValue(raw)}' for search parameter '${code}' (expected [prefix]number[|system|code])`);
  }
  const number = parseNumberValue(code, unescapeValue(parts[0]));
  const out: QuantityValue = { ...number };
  if (parts.length === 3) {
    const system = unescapeValue(parts[1]);
    const unit = unescapeValue(parts[2]);
    if (system) out.system = system;
    if (unit) out.code = unit;
  }
  return out;
}

/** `code`, `system|code`, `|code` (no system) or `system|` (any code in the system). */
export function parseTokenValue(code: string, raw: string): TokenValue {
  const parts = splitUnescaped(raw, '|');
  if (parts.length > 2) throw badRequest(`Invalid token '${unescapeValue(raw)}' for search parameter '${code}': more than one unescaped '|'`);
  if (parts.length === 1) return { code: unescapeValue(raw) };
  const system = unescapeValue(parts[0]);
  const value = unescapeValue(parts[1]);
  if (!system && !value) throw badRequest(`Invalid token '|' for search parameter '${code}'`);
  const out: TokenValue = { system: system || null };
  if (value) out.code = value;
  return out;
}

const idPattern = /^[A-Za-z0-9\-.]{1,64}$/;

/**
 * `Type/id`, a bare `id` (of the single target type, or of any type when there are several),
 * or a URL. A URL under `baseUrl` (this server) is a local reference; any other URL matches
 * references with exactly that text. `typeModifier` is `subject:Patient=...`.
 */
export function parseReferenceValue(
  code: string, value: string, targets: readonly string[], typeModifier?: string, baseUrl?: string,
): ReferenceValue {
  if (typeModifier !== undefined) {
    const id = value.startsWith(`${typeModifier}/`) ? value.slice(typeModifier.length + 1) : value;
    if (!idPattern.test(id)) throw badRequest(`Invalid reference '${value}' for search parameter '${code}:${typeModifier}' (expected an id)`);
    return { type: typeModifier, id };
  }
  if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(value)) {
    const base = baseUrl?.replace(/\/+$/, '');
    if (base && value.startsWith(`${base}/`)) return parseReferenceValue(code, value.slice(base.length + 1), targets);
    return { url: value };
  }
  const relative = /^([A-Za-z]+)\/([^/]+)(?:\/_history\/[^/]+)?$/.exec(value);
  if (relative) {
    if (!isResourceTypeName(relative[1])) throw badRequest(`Invalid reference '${value}' for search parameter '${code}': ${relative[1]} is not a resource type`);
    if (!idPattern.test(relative[2])) throw badRequest(`Invalid reference '${value}' for search parameter '${code}': invalid id`);
    return { type: relative[1], id: relative[2] };
  }
  if (idPattern.test(value)) return targets.length === 1 ? { type: targets[0], id: value } : { id: value };
  throw badRequest(`Invalid reference '${value}' for search parameter '${code}' (expected Type/id, an id or a URL)`);
}
