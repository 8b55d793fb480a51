import { parseDateRange } from '../datetime.ts';
import { normalizeText } from './normalize.ts';
import { parseTypeAndId, type TypedValue } from './path.ts';

/**
 * How each FHIR data type becomes index values for each search parameter type
 * (search.html, "Search Parameter Types" tables). Values of a type a parameter type cannot
 * use produce nothing.
 */

/** Open ends of periods and ranges: the limits of a JS Date, and of a double. */
export const dateMin = -8_640_000_000_000_000;
export const dateMax = 8_640_000_000_000_000;
export const numberMin = -Number.MAX_VALUE;
export const numberMax = Number.MAX_VALUE;

export interface StringValue { norm: string; exact: string }
export interface TokenIndexValue { system: string | null; code: string | null; text: string | null }
export interface ReferenceIndexValue { type: string | null; id: string | null; ref: string | null }
export interface RangeValue { lo: number; hi: number }
export interface QuantityIndexValue extends RangeValue { system: string | null; code: string | null; unit: string | null }

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | null => (typeof v === 'string' && v.length > 0 ? v : null);
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string' && x.length > 0) : []);

const nameParts = ['family', 'given', 'prefix', 'suffix', 'text'];
const addressParts = ['line', 'city', 'district', 'state', 'postalCode', 'country', 'text'];

export function stringValues({ type, value }: TypedValue, out: StringValue[]): void {
  if (typeof value === 'string') {
    if (value.length > 0) out.push({ norm: normalizeText(value), exact: value });
    return;
  }
  if (!isObj(value)) return;
  // Names and addresses match on any one part (search.html#string).
  const parts = type === 'HumanName' ? nameParts : type === 'Address' ? addressParts : undefined;
  if (parts) {
    for (const part of parts) {
      const v = value[part];
      for (const s of typeof v === 'string' ? [v] : strings(v)) if (s.length > 0) out.push({ norm: normalizeText(s), exact: s });
    }
    return;
  }
  collectStrings(value, out);
}

/** Any other complex type: its text content, without ids, extensions or codes of its own. */
function collectStrings(value: Obj, out: StringValue[]): void {
  for (const [k, v] of Object.entries(value)) {
    if (k === 'id' || k === 'extension' || k === 'system' || k === 'use' || k.startsWith('_')) continue;
    for (const item of Array.isArray(v) ? v : [v]) {
      if (typeof item === 'string' && item.length > 0) out.push({ norm: normalizeText(item), exact: item });
      else if (isObj(item)) collectStrings(item, out);
    }
  }
}

export function tokenValues({ type, value }: TypedValue, out: TokenIndexValue[]): void {
  if (typeof value === 'boolean') {
    out.push({ system: null, code: String(value), text: null });
    return;
  }
  if (typeof value === 'string') {
    if (value.length > 0) out.push({ system: null, code: value, text: null });
    return;
  }
  if (!isObj(value)) return;
  switch (type) {
    case 'CodeableConcept': {
      if (Array.isArray(value.coding)) for (const c of value.coding) if (isObj(c)) coding(c, out);
      const text = str(value.text);
      if (text) out.push({ system: null, code: null, text: normalizeText(text) });
      return;
    }
    case 'Coding':
      coding(value, out);
      return;
    case 'Identifier': {
      const typeText = isObj(value.type) ? str(value.type.text) : null;
      const code = str(value.value);
      if (code || typeText) out.push({ system: str(value.system), code, text: typeText && normalizeText(typeText) });
      return;
    }
    case 'ContactPoint': {
      const code = str(value.value);
      if (code) out.push({ system: str(value.system), code, text: null });
      return;
    }
  }
}

/**
 * `identifier:of-type` rows: an Identifier's value under each coding of its type, the coding as
 * `system|code` in the system column (search.html#token, of-type).
 */
export function identifierTypeValues({ type, value }: TypedValue, out: TokenIndexValue[]): void {
  if (type !== 'Identifier' || !isObj(value) || !isObj(value.type) || !Array.isArray(value.type.coding)) return;
  const v = str(value.value);
  if (!v) return;
  for (const c of value.type.coding) {
    if (!isObj(c) || !str(c.code)) continue;
    out.push({ system: `${str(c.system) ?? ''}|${c.code}`, code: v, text: null });
  }
}

function coding(c: Obj, out: TokenIndexValue[]): void {
  const code = str(c.code);
  const display = str(c.display);
  if (code || display) out.push({ system: str(c.system), code, text: display && normalizeText(display) });
}

/**
 * Local references (`Type/id`, as the server stores them) are indexed by type and id; anything
 * else (absolute URLs to other servers, canonicals, `urn:`, `#contained`) by its text, so it can
 * only match the same text and never a local resource that happens to share the type and id.
 * A Reference yields a row even when it holds only an identifier or a display, so `:missing` sees
 * it; its identifier is indexed as a token under the same parameter (`:identifier`).
 */
export function referenceValues({ type, value }: TypedValue, out: ReferenceIndexValue[], identifiers: TokenIndexValue[]): void {
  if (typeof value === 'string') {
    if (value.length > 0) out.push({ type: null, id: null, ref: value });
    return;
  }
  if (!isObj(value) || type !== 'Reference') return;
  const reference = str(value.reference);
  const local = reference !== null ? localReference(reference) : undefined;
  out.push({
    type: str(value.type) ?? local?.type ?? (reference !== null ? parseTypeAndId(reference)?.type ?? null : null),
    id: local?.id ?? null,
    ref: local ? null : reference,
  });
  if (isObj(value.identifier)) tokenValues({ type: 'Identifier', value: value.identifier }, identifiers);
}

/** `Type/id` or `Type/id/_history/v`: a reference to a resource on this server. */
export function localReference(reference: string): { type: string; id: string } | undefined {
  return reference.includes(':') ? undefined : parseTypeAndId(reference);
}

export function dateValues({ type, value }: TypedValue, out: RangeValue[]): void {
  if (typeof value === 'string') {
    const r = parseDateRange(value);
    if (r) out.push({ lo: r.start, hi: r.end });
    return;
  }
  if (!isObj(value)) return;
  if (type === 'Period') period(value, out);
  else if (type === 'Timing') {
    // Only the outer limits of a schedule are searchable: its events and its bounds.
    for (const e of strings(value.event)) dateValues({ type: 'dateTime', value: e }, out);
    if (isObj(value.repeat) && isObj(value.repeat.boundsPeriod)) period(value.repeat.boundsPeriod, out);
  }
}

function period(p: Obj, out: RangeValue[]): void {
  const start = typeof p.start === 'string' ? parseDateRange(p.start) : undefined;
  const end = typeof p.end === 'string' ? parseDateRange(p.end) : undefined;
  if (!start && !end) return;
  out.push({ lo: start?.start ?? dateMin, hi: end?.end ?? dateMax });
}

export function numberValues({ type, value }: TypedValue, out: RangeValue[]): void {
  if (typeof value === 'number') {
    out.push({ lo: value, hi: value });
    return;
  }
  if (!isObj(value)) return;
  if (type === 'Range') {
    const lo = isObj(value.low) && typeof value.low.value === 'number' ? value.low.value : undefined;
    const hi = isObj(value.high) && typeof value.high.value === 'number' ? value.high.value : undefined;
    if (lo !== undefined || hi !== undefined) out.push({ lo: lo ?? numberMin, hi: hi ?? numberMax });
  } else if (typeof value.value === 'number') {
    out.push({ lo: value.value, hi: value.value });
  }
}

export function quantityValues({ type, value }: TypedValue, out: QuantityIndexValue[]): void {
  if (!isObj(value)) return;
  if (type === 'Range') {
    const low = isObj(value.low) ? value.low : undefined;
    const high = isObj(value.high) ? value.high : undefined;
    const lo = typeof low?.value === 'number' ? low.value : undefined;
    const hi = typeof high?.value === 'number' ? high.value : undefined;
    if (lo === undefined && hi === undefined) return;
    const unitOf = (lo !== undefined ? low : high)!;
    out.push({ lo: lo ?? numberMin, hi: hi ?? numberMax, system: str(unitOf.system), code: str(unitOf.code), unit: str(unitOf.unit) });
    return;
  }
  if (typeof value.value !== 'number') return;
  if (type === 'Money') {
    out.push({ lo: value.value, hi: value.value, system: 'urn:iso:std:iso:4217', code: str(value.currency), unit: null });
    return;
  }
  out.push({ lo: value.value, hi: value.value, system: str(value.system), code: str(value.code), unit: str(value.unit) });
}

export function uriValues({ value }: TypedValue, out: string[]): void {
  if (typeof value === 'string' && value.length > 0) out.push(value);
}
