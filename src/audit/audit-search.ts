import type { AuditRecordFacts } from './audit-record.ts';
import { actionOfRecord, eventTypeOf, outcomeOf, subtypesOf } from './audit-event.ts';
import { entityOf } from './audit-index.ts';
import { badRequest } from '../fhir/outcome.ts';
import { parseDateValue, parseReferenceValue, parseTokenValue, splitUnescaped, unescapeValue } from '../fhir/search/parse-values.ts';
import type { DateValue, TokenValue } from '../fhir/search/types.ts';

/**
 * A search of the audit trail (AuditEvent's R4 search parameters), as the store answers it: the
 * index keys and time range that narrow the candidates, and the tests every candidate must pass.
 * The keys only find a superset; each criterion is tested on the record itself.
 */
export interface AuditSearch {
  /** Candidates carry one of these keys (the most selective criterion's); absent: any record. */
  keys?: string[];
  from?: string;
  to?: string;
  tests: ((facts: AuditRecordFacts, seq: number) => boolean)[];
  descending: boolean;
  count: number;
  /** Continue past this position (the `_cursor` of a next link). */
  after?: number;
  /** The parameters that define the result, for paging links. */
  used: [string, string][];
}

type Test = (facts: AuditRecordFacts, seq: number) => boolean;

interface Parsed {
  test: Test;
  keys?: string[];
  from?: number;
  to?: number;
}

/** The AuditEvent search parameters served (besides _count, _sort, _cursor). */
export const auditSearchParams = ['_id', 'date', 'agent', 'altid', 'agent-role', 'address', 'entity', 'patient', 'type', 'subtype', 'action', 'outcome', 'source'];

const paging = new Set(['_count', '_sort', '_cursor']);
/** Shape and format parameters the HTTP layer applies; they select nothing. */
const passThrough = new Set(['_format', '_pretty', '_elements', '_summary']);

export function parseAuditSearch(params: [string, string][], limits: { defaultCount: number; maxCount: number }, baseUrl: string, now = Date.now()): AuditSearch {
  const search: AuditSearch = { tests: [], descending: true, count: limits.defaultCount, used: [] };
  let narrowest: string[] | undefined;
  let from = -Infinity;
  let to = Infinity;
  for (const [name, value] of params) {
    if (passThrough.has(name)) continue;
    if (paging.has(name)) {
      pagingParam(search, name, value, limits.maxCount);
      continue;
    }
    search.used.push([name, value]);
    if (value === '') continue;
    const parsed = criterion(name, value, baseUrl, now);
    search.tests.push(parsed.test);
    if (parsed.keys && (!narrowest || parsed.keys.length < narrowest.length)) narrowest = parsed.keys;
    if (parsed.from !== undefined) from = Math.max(from, parsed.from);
    if (parsed.to !== undefined) to = Math.min(to, parsed.to);
  }
  if (narrowest) search.keys = narrowest;
  if (from > -Infinity) search.from = new Date(from).toISOString();
  if (to < Infinity) search.to = new Date(to).toISOString();
  return search;
}

function pagingParam(search: AuditSearch, name: string, value: string, maxCount: number): void {
  if (name === '_count') {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0) throw badRequest(`_count must be a non-negative integer, not '${value}'`);
    search.count = Math.min(n, maxCount);
  } else if (name === '_sort') {
    if (value !== 'date' && value !== '-date' && value !== '_id' && value !== '-_id') throw badRequest(`AuditEvent searches sort by date or -date (newest first, the default), not '${value}'`);
    search.descending = value.startsWith('-');
  } else {
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < 0) throw badRequest(`Invalid _cursor '${value}'`);
    search.after = n;
  }
}

/** One parameter (comma-separated values: any of them) as a test, with the keys or times that narrow it. */
function criterion(name: string, value: string, baseUrl: string, now: number): Parsed {
  const colon = name.indexOf(':');
  const code = colon < 0 ? name : name.slice(0, colon);
  const modifier = colon < 0 ? undefined : name.slice(colon + 1);
  const values = splitUnescaped(value, ',');
  if (modifier !== undefined && !(code === 'address' && modifier === 'exact')) throw badRequest(`Modifier ':${modifier}' is not supported on AuditEvent '${code}'`);
  switch (code) {
    case '_id': {
      const ids = new Set(values.map(unescapeValue));
      return { test: (_f, seq) => ids.has(String(seq)) };
    }
    case 'date':
      return dateCriterion(values.map((v) => parseDateValue(code, v, now)));
    case 'agent':
      return agentCriterion(values.map((v) => referenceText(code, v, baseUrl)));
    case 'altid': {
      const tokens = values.map((v) => parseTokenValue(code, v));
      return { test: (f) => tokens.some((t) => t.code === f.who), keys: tokens.map((t) => `a|${t.code ?? ''}`) };
    }
    case 'agent-role': {
      const tokens = values.map((v) => parseTokenValue(code, v));
      return { test: (f) => f.rl !== undefined && tokens.some((t) => t.code === f.rl) };
    }
    case 'address': {
      const wanted = values.map((v) => unescapeValue(v).toLowerCase());
      return modifier === 'exact'
        ? { test: (f) => wanted.includes(f.ip.toLowerCase()) }
        : { test: (f) => wanted.some((w) => f.ip.toLowerCase().startsWith(w)) };
    }
    case 'entity':
      return entityCriterion(values.map((v) => referenceText(code, v, baseUrl)));
    case 'patient':
      return patientCriterion(values.map((v) => referenceText(code, v, baseUrl, 'Patient')));
    case 'type':
      return tokenCriterion(code, values, (f) => [eventTypeOf(f)]);
    case 'subtype':
      return tokenCriterion(code, values, subtypesOf);
    case 'action':
      return tokenCriterion(code, values, (f) => [{ system: 'http://hl7.org/fhir/audit-event-action', code: actionOfRecord(f) }]);
    case 'outcome':
      return tokenCriterion(code, values, (f) => [{ system: 'http://hl7.org/fhir/audit-event-outcome', code: outcomeOf(f) }]);
    case 'source': {
      // One observer: this server. Any other source matches nothing.
      const ours = values.some((v) => /^bastion$/i.test(unescapeValue(v)));
      return { test: () => ours };
    }
    default:
      throw badRequest(`Unknown or unsupported search parameter '${code}' for AuditEvent (${auditSearchParams.join(', ')})`);
  }
}

function dateCriterion(values: DateValue[]): Parsed {
  const test: Test = (f) => {
    const t = Date.parse(f.at);
    return values.some((v) => dateMatches(v, t));
  };
  // Only a single value narrows the time range (several are alternatives).
  if (values.length !== 1) return { test };
  const [v] = values;
  const from = v.prefix === 'eq' || v.prefix === 'ap' ? v.start : v.prefix === 'ge' ? v.start : v.prefix === 'gt' || v.prefix === 'sa' ? v.end : undefined;
  const to = v.prefix === 'eq' || v.prefix === 'ap' ? v.end : v.prefix === 'le' ? v.end : v.prefix === 'lt' || v.prefix === 'eb' ? v.start : undefined;
  return { test, ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}) };
}

/** An instant against a search date's range (search.html#prefix). */
function dateMatches(v: DateValue, t: number): boolean {
  switch (v.prefix) {
    case 'eq': case 'ap': return t >= v.start && t < v.end;
    case 'ne': return t < v.start || t >= v.end;
    case 'lt': case 'eb': return t < v.start;
    case 'le': return t < v.end;
    case 'gt': case 'sa': return t >= v.end;
    case 'ge': return t >= v.start;
  }
}

/** A reference search value as the text the trail holds: `Type/id`, or a bare id (a user or client id). */
function referenceText(code: string, value: string, baseUrl: string, onlyType?: string): string {
  const ref = parseReferenceValue(code, unescapeValue(value), onlyType ? [onlyType] : [], undefined, baseUrl);
  if ('url' in ref && ref.url) return ref.url;
  if (onlyType && ref.type && ref.type !== onlyType) throw badRequest(`'${code}' refers to a ${onlyType}, not a ${ref.type}`);
  return ref.type ? `${ref.type}/${ref.id}` : String(ref.id);
}

/** Who acted: the user's fhirUser or id, a backend client's id, or the application a user acted through. */
function agentCriterion(refs: string[]): Parsed {
  return {
    test: (f) => refs.some((r) => r === f.who || r === f.fu || r === f.app),
    keys: refs.map((r) => `a|${r}`),
  };
}

function entityCriterion(refs: string[]): Parsed {
  const patientIds = refs.filter((r) => r.startsWith('Patient/')).map((r) => r.slice('Patient/'.length));
  return {
    test: (f) => (f.what ?? []).some((w) => refs.includes(entityOf(w))) || patientIds.some((id) => f.pt?.includes(id)),
    keys: refs.map((r) => (r.startsWith('Patient/') ? `p|${r.slice('Patient/'.length)}` : `e|${r}`)),
  };
}

function patientCriterion(refs: string[]): Parsed {
  const ids = refs.map((r) => r.slice(r.lastIndexOf('/') + 1));
  return {
    test: (f) => ids.some((id) => f.pt?.includes(id) || (f.what ?? []).some((w) => entityOf(w) === `Patient/${id}`)),
    keys: ids.map((id) => `p|${id}`),
  };
}

function tokenCriterion(code: string, values: string[], codings: (f: AuditRecordFacts) => { system: string; code: string }[]): Parsed {
  const tokens = values.map((v) => parseTokenValue(code, v));
  return { test: (f) => codings(f).some((c) => tokens.some((t) => tokenMatches(t, c))) };
}

function tokenMatches(t: TokenValue, c: { system: string; code: string }): boolean {
  if (t.system !== undefined && t.system !== c.system) return false;
  return t.code === undefined || t.code === c.code;
}
