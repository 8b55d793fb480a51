import type { StoreReader } from '../store/store.ts';
import type { SearchConstraint, SearchCriterion, SearchRequest, TokenValue } from '../fhir/search/types.ts';
import { FhirError, badRequest } from '../fhir/outcome.ts';
import { ValueSetExpander } from '../fhir/terminology/expand.ts';
import { closure, hierarchyOf } from '../fhir/terminology/hierarchy.ts';
import { packageTerminology } from '../fhir/terminology/package-source.ts';
import { canonicalKey, type CodeSystem, type TerminologySource, type ValueSet } from '../fhir/terminology/types.ts';

/** More codes than this in one criterion is a search the store should not be asked to run. */
export const maxExpandedCodes = 5000;

/**
 * Turns `:in`, `:not-in`, `:below` and `:above` on tokens into plain token criteria listing the
 * codes they stand for, so the store filters by index as for any token. Definitions come from the
 * CodeSystem and ValueSet resources stored here (a deployment's own, or newer versions) and
 * otherwise from those published with FHIR R4. Anything that cannot be expanded completely is
 * refused: a partial expansion would quietly miss resources.
 */
export async function resolveTerminology(request: SearchRequest, reader: StoreReader): Promise<void> {
  const constraints = request.constraints ?? [];
  if (!request.criteria.some(needsTerminology) && !constraints.some(constraintNeedsTerminology)) return;
  const stored = new StoredTerminology(reader);
  // Each round finds which definitions the expansion asks for; those not yet looked up in the
  // store are fetched and the round repeats (value sets include value sets).
  for (let round = 0; round < 10; round++) {
    const expander = new ValueSetExpander(stored);
    const criteria = request.criteria.map((c) => resolve(c, expander, stored));
    const resolvedConstraints = constraints.map((k) => ({ anyOf: k.anyOf.map((c) => resolve(c, expander, stored)) }));
    if (stored.wanted.size === 0) {
      request.criteria = criteria;
      if (request.constraints) request.constraints = resolvedConstraints;
      return;
    }
    await stored.fetchWanted();
  }
  throw badRequest('The value sets of this search include each other too deeply to expand');
}

const constraintsNeeding = new WeakMap<SearchConstraint, boolean>();

/** Constraints are reused from request to request (src/rest/confinement.ts): asked once each. */
function constraintNeedsTerminology(k: SearchConstraint): boolean {
  let needs = constraintsNeeding.get(k);
  if (needs === undefined) constraintsNeeding.set(k, (needs = k.anyOf.some(needsTerminology)));
  return needs;
}

function needsTerminology(c: SearchCriterion): boolean {
  switch (c.kind) {
    case 'token-in': case 'token-subsumes': return true;
    case 'chain': case 'has': case 'for-types': case 'not': return needsTerminology(c.criterion);
    case 'composite': return c.values.some((tuple) => tuple.some(needsTerminology));
    case 'all-of': case 'any-of': return c.criteria.some(needsTerminology);
    default: return false;
  }
}

function resolve(c: SearchCriterion, expander: ValueSetExpander, source: StoredTerminology): SearchCriterion {
  switch (c.kind) {
    case 'token-in':
      return { kind: 'token', code: c.code, negate: c.negate, values: capped(c.code, c.valueSets.flatMap((url) => valueSetCodes(url, expander, source))) };
    case 'token-subsumes':
      return { kind: 'token', code: c.code, negate: false, values: capped(c.code, c.values.flatMap((v) => subsumed(c.code, c.direction, v, source))) };
    case 'chain': case 'has': case 'for-types': case 'not':
      return { ...c, criterion: resolve(c.criterion, expander, source) };
    case 'composite':
      return { ...c, values: c.values.map((tuple) => tuple.map((part) => resolve(part, expander, source))) };
    case 'all-of': case 'any-of':
      return { ...c, criteria: c.criteria.map((part) => resolve(part, expander, source)) };
    default:
      return c;
  }
}

/**
 * The value set's codes as token values. Each code also matches when indexed without a system:
 * `code`-typed elements (Patient.gender) carry only the code of their bound value set.
 */
function valueSetCodes(url: string, expander: ValueSetExpander, source: StoredTerminology): TokenValue[] {
  const expansion = expander.expand(url);
  if (!expansion) {
    if (source.wanted.size > 0) return []; // the next round fetches what was not looked up yet
    if (expander.missing.has(canonicalKey(url))) throw badRequest(`Unknown value set '${url}'`);
    throw new FhirError(400, `Value set '${url}' cannot be expanded completely on this server (it uses a filter or a code system it does not hold)`, 'not-supported');
  }
  const values: TokenValue[] = [];
  for (const [system, codes] of expansion.bySystem) for (const code of codes) values.push({ system, code });
  for (const code of expansion.codes) values.push({ system: null, code });
  return values;
}

function subsumed(param: string, direction: 'below' | 'above', v: { system: string; code: string }, source: StoredTerminology): TokenValue[] {
  const cs = source.codeSystem(v.system);
  if (!cs) {
    if (source.wanted.size > 0) return [];
    throw new FhirError(400, `${param}:${direction} needs the code system '${v.system}', which this server does not hold`, 'not-supported');
  }
  if (cs.content !== 'complete') {
    throw new FhirError(400, `${param}:${direction} needs the hierarchy of '${v.system}', which this server does not hold completely`, 'not-supported');
  }
  return [...closure(hierarchyOf(cs), v.code, direction)].map((code) => ({ system: v.system, code }));
}

function capped(param: string, values: TokenValue[]): TokenValue[] {
  if (values.length > maxExpandedCodes * 2) {
    throw new FhirError(400, `${param} would match more than ${maxExpandedCodes} codes; narrow the value set`, 'too-costly');
  }
  return values;
}

/**
 * Code systems and value sets stored on this server, looked up by canonical URL (or `ValueSet/<id>`),
 * each once per search; the R4 publication answers for those not stored. A lookup not yet made
 * answers from the publication for now and is remembered in `wanted`, to be fetched for the next round.
 */
class StoredTerminology implements TerminologySource {
  readonly wanted = new Set<string>();
  private readonly found = new Map<string, CodeSystem | ValueSet | null>();
  private readonly reader: StoreReader;

  constructor(reader: StoreReader) {
    this.reader = reader;
  }

  codeSystem(url: string): CodeSystem | undefined {
    const stored = this.lookup(`CodeSystem ${url}`);
    if (stored === undefined) return packageTerminology.codeSystem(url);
    return (stored as CodeSystem | null) ?? packageTerminology.codeSystem(url);
  }

  valueSet(url: string): ValueSet | undefined {
    const stored = this.lookup(`ValueSet ${url}`);
    if (url.startsWith('ValueSet/')) return (stored as ValueSet | null | undefined) ?? undefined;
    return (stored as ValueSet | null | undefined) ?? packageTerminology.valueSet(url);
  }

  async fetchWanted(): Promise<void> {
    const keys = [...this.wanted];
    this.wanted.clear();
    await Promise.all(keys.map(async (key) => this.found.set(key, await this.fetch(key))));
  }

  private lookup(key: string): CodeSystem | ValueSet | null | undefined {
    const stored = this.found.get(key);
    if (stored === undefined) this.wanted.add(key);
    return stored;
  }

  private async fetch(key: string): Promise<CodeSystem | ValueSet | null> {
    const space = key.indexOf(' ');
    const type = key.slice(0, space);
    const url = key.slice(space + 1);
    if (url.startsWith('ValueSet/')) {
      const r = await this.reader.read('ValueSet', url.slice('ValueSet/'.length));
      return r?.json ? (JSON.parse(r.json) as ValueSet) : null;
    }
    const result = await this.reader.search({
      resourceTypes: [type], criteria: [{ kind: 'uri', code: 'url', match: 'exact', values: [url] }],
      sort: [{ code: '_lastUpdated', type: 'date', descending: true }], count: 1, offset: 0, total: 'none', include: [], revinclude: [],
    });
    const r = result.matches[0];
    return r?.json ? (JSON.parse(r.json) as CodeSystem | ValueSet) : null;
  }
}
