/**
 * FHIR R4 primitive types: their JSON representation and value rules, from
 * https://hl7.org/fhir/R4/datatypes.html and the `regex` extensions on each `<type>.value` element.
 */

export type JsonKind = 'string' | 'number' | 'boolean';

export interface PrimitiveType {
  readonly kind: 'primitive';
  readonly name: string;
  readonly json: JsonKind;
  /** A problem with a value of the right JSON kind, or undefined when the value is valid. */
  readonly check: (value: never) => string | undefined;
}

// The spec's regexes, anchored. Dates also get a calendar check below because the regexes
// accept days up to 31 in every month.
const YEAR = '([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)';
const TIME = '([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\\.[0-9]+)?';
const ZONE = '(Z|(\\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))';
const DATE_RE = new RegExp(`^${YEAR}(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?$`);
const DATETIME_RE = new RegExp(`^${YEAR}(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])(T${TIME}${ZONE})?)?)?$`);
const INSTANT_RE = new RegExp(`^${YEAR}-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])T${TIME}${ZONE}$`);
const TIME_RE = new RegExp(`^${TIME}$`);
const CODE_RE = /^[^\s]+(\s[^\s]+)*$/;
const ID_RE = /^[A-Za-z0-9\-.]{1,64}$/;
const OID_RE = /^urn:oid:[0-2](\.(0|[1-9][0-9]*))+$/;
const UUID_RE = /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const URI_RE = /^\S*$/;
// The published R4 regex for base64Binary leaves out '/', which RFC 4648 (cited by the spec) includes.
const BASE64_COMPACT_RE = /^[A-Za-z0-9+/]*={0,2}$/;
const WHITESPACE_RE = /\s+/g;

/** datatypes.html: "FHIR strings SHALL NOT exceed 1MB in size" (string.value maxLength). */
const MAX_STRING_LENGTH = 1024 * 1024;
const INT_MIN = -2147483648;
const INT_MAX = 2147483647;

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** Assumes the regex passed, so positions 0-3, 5-6 and 8-9 are digits when present. */
function calendarProblem(v: string): string | undefined {
  if (v.length < 10) return undefined;
  const year = Number(v.slice(0, 4));
  const month = Number(v.slice(5, 7));
  const day = Number(v.slice(8, 10));
  return day > daysInMonth(year, month) ? `'${v}' is not a calendar date (${year}-${v.slice(5, 7)} has ${daysInMonth(year, month)} days)` : undefined;
}

function nonEmpty(v: string): string | undefined {
  if (v.length === 0) return 'must not be an empty string';
  if (v.length > MAX_STRING_LENGTH) return `is longer than the 1 MB allowed for a FHIR string (${v.length} characters)`;
  return undefined;
}

function pattern(re: RegExp, what: string): (v: string) => string | undefined {
  return (v) => (v.length === 0 ? 'must not be an empty string' : re.test(v) ? undefined : `'${clip(v)}' is not a valid ${what}`);
}

function integer(min: number, what: string): (v: number) => string | undefined {
  return (v) => {
    if (!Number.isInteger(v)) return `${v} is not an integer`;
    if (v < min || v > INT_MAX) return `${v} is out of range for ${what} (${min}..${INT_MAX})`;
    return undefined;
  };
}

function base64(v: string): string | undefined {
  if (v.length === 0) return 'must not be an empty string';
  // Whitespace is allowed between groups; the common case has none and avoids a copy.
  const compact = BASE64_COMPACT_RE.test(v) ? v : v.replace(WHITESPACE_RE, '');
  if (!BASE64_COMPACT_RE.test(compact) || compact.length % 4 !== 0) return 'is not valid base64 (RFC 4648)';
  return undefined;
}

/** Keeps diagnostics short when someone sends a megabyte of garbage. */
export function clip(v: string): string {
  return v.length > 64 ? `${v.slice(0, 61)}...` : v;
}

function define(name: string, json: JsonKind, check: (v: never) => string | undefined): PrimitiveType {
  return { kind: 'primitive', name, json, check };
}

const str = (fn: (v: string) => string | undefined) => fn as (v: never) => string | undefined;
const num = (fn: (v: number) => string | undefined) => fn as (v: never) => string | undefined;

export const PRIMITIVES: ReadonlyMap<string, PrimitiveType> = new Map(
  [
    define('boolean', 'boolean', () => undefined),
    define('integer', 'number', num(integer(INT_MIN, 'integer'))),
    define('positiveInt', 'number', num(integer(1, 'positiveInt'))),
    define('unsignedInt', 'number', num(integer(0, 'unsignedInt'))),
    define('decimal', 'number', num((v) => (Number.isFinite(v) ? undefined : `${v} is not a decimal`))),
    define('string', 'string', str(nonEmpty)),
    define('markdown', 'string', str(nonEmpty)),
    // Narrative.div: its content rules (txt-1, txt-2) are invariants, not part of the type.
    define('xhtml', 'string', str(nonEmpty)),
    define('uri', 'string', str(pattern(URI_RE, 'uri (no whitespace allowed)'))),
    define('url', 'string', str(pattern(URI_RE, 'url (no whitespace allowed)'))),
    define('canonical', 'string', str(pattern(URI_RE, 'canonical (no whitespace allowed)'))),
    define('code', 'string', str(pattern(CODE_RE, 'code (no leading, trailing or repeated whitespace)'))),
    define('id', 'string', str(pattern(ID_RE, 'id (1-64 of A-Z a-z 0-9 - .)'))),
    define('oid', 'string', str(pattern(OID_RE, 'oid (urn:oid:...)'))),
    define('uuid', 'string', str(pattern(UUID_RE, 'uuid (urn:uuid: and lower-case hex)'))),
    define('base64Binary', 'string', str(base64)),
    define('time', 'string', str(pattern(TIME_RE, 'time (hh:mm:ss)'))),
    define('date', 'string', str((v) => pattern(DATE_RE, 'date (YYYY, YYYY-MM or YYYY-MM-DD)')(v) ?? calendarProblem(v))),
    define('dateTime', 'string', str((v) =>
      pattern(DATETIME_RE, 'dateTime (YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss+zz:zz; a time needs a time zone)')(v) ?? calendarProblem(v))),
    define('instant', 'string', str((v) =>
      pattern(INSTANT_RE, 'instant (YYYY-MM-DDThh:mm:ss[.sss]+zz:zz, time zone required)')(v) ?? calendarProblem(v))),
  ].map((p) => [p.name, p]),
);

/** Checks a JSON value against a primitive type; returns a problem description or undefined. */
export function checkPrimitive(type: PrimitiveType, value: unknown): string | undefined {
  if (typeof value !== type.json) return `must be a JSON ${type.json} (FHIR ${type.name}), found ${describe(value)}`;
  return type.check(value as never);
}

/** How a JSON value reads in a diagnostic. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a JSON ${typeof value}`;
}
