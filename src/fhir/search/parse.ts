import { badRequest, notSupported } from '../outcome.ts';
import { commonSearchParams, componentsOf, isResourceTypeName, searchParam, searchParamsOf, type SearchParam } from './params.ts';
import { normalizeText } from './normalize.ts';
import { fullTextQuery } from './text.ts';
import { soundexWords } from './phonetic.ts';
import {
  parseDateValue, parseNumberValue, parseQuantityValue, parseReferenceValue, parseTokenValue, splitUnescaped, unescapeValue,
} from './parse-values.ts';
import type { IncludeSpec, SearchCriterion, SearchParamType, SearchRequest, SortKey } from './types.ts';

export interface ParseOptions {
  maxCount: number;
  defaultCount: number;
  /** `Prefer: handling=lenient`: unknown parameters and modifiers are skipped and reported, not refused. */
  lenient: boolean;
  /** The current time, for `ap` on dates; tests pin it. */
  now?: number;
  /** This server's base URL: reference values under it are local references. */
  baseUrl?: string;
}

export interface ParsedSearch {
  request: SearchRequest;
  /** Parameters skipped under lenient handling, as the client wrote them. */
  ignored: string[];
  /** `_summary`, `_elements`, `_format`, `_pretty`: for the caller to apply to the response. */
  resultParams: [string, string][];
}

const resultParamNames = new Set(['_summary', '_elements', '_format', '_pretty']);
const notYet = new Set(['_query', '_filter', '_contained', '_containedType', '_score']);
/** Modifiers FHIR defines that this server does not implement yet: refused even when lenient, as ignoring them would change the results. */
const modifiersNotYet = new Set(['iterate', 'code-text', 'text-advanced']);

/** Parses the query parameters of a search into a store-independent SearchRequest. */
export function parseSearch(resourceType: string | undefined, params: [string, string][], options: ParseOptions): ParsedSearch {
  const now = options.now ?? Date.now();
  const ignored: string[] = [];
  const resultParams: [string, string][] = [];
  const types = searchedTypes(resourceType, params);
  const request: SearchRequest = {
    resourceTypes: types, criteria: [], sort: [], count: options.defaultCount, offset: 0, total: 'none', include: [], revinclude: [],
  };
  const seenControl = new Set<string>();
  let totalGiven = false;
  const unknown = (name: string, message: string): void => {
    if (!options.lenient) throw badRequest(message);
    ignored.push(name);
  };

  for (const [name, value] of params) {
    const colon = name.indexOf(':');
    const code = colon < 0 ? name : name.slice(0, colon);
    const modifier = colon < 0 ? undefined : name.slice(colon + 1);
    if (resultParamNames.has(code)) {
      resultParams.push([name, value]);
      continue;
    }
    if (code === '_type') continue;
    if (notYet.has(code)) throw notSupported(`Search parameter '${code}' is not supported yet`);
    if (['_count', '_offset', '_sort', '_total', '_cursor'].includes(code)) {
      if (modifier !== undefined) throw badRequest(`Search parameter '${code}' takes no modifier`);
      if (seenControl.has(code)) throw badRequest(`Search parameter '${code}' may appear only once`);
      seenControl.add(code);
      if (code === '_count') request.count = Math.min(nonNegativeInt(code, value), options.maxCount);
      else if (code === '_offset') request.offset = nonNegativeInt(code, value);
      else if (code === '_cursor') {
        if (!/^[A-Za-z0-9_-]{1,4096}$/.test(value)) throw badRequest('_cursor must be a continuation token from a next or previous link');
        request.cursor = value;
      }
      else if (code === '_total') {
        if (value !== 'none' && value !== 'estimate' && value !== 'accurate') throw badRequest(`_total must be none, estimate or accurate, not '${value}'`);
        request.total = value;
        totalGiven = true;
      } else request.sort = parseSort(value, types, options.lenient, ignored);
      continue;
    }
    if (code === '_include' || code === '_revinclude') {
      const specs = parseInclude(code, modifier, value, types);
      if (typeof specs === 'string') unknown(name, specs);
      else (code === '_include' ? request.include : request.revinclude).push(...specs);
      continue;
    }
    const criterion = parseFilter(types, name, value, now, options.baseUrl);
    if (criterion === undefined) continue;
    if ('unknown' in criterion) {
      unknown(name, criterion.unknown);
      continue;
    }
    request.criteria.push(criterion);
  }
  // `_count=0` asks for the number of matches only.
  if (request.count === 0 && !totalGiven) request.total = 'accurate';
  return { request, ignored, resultParams };
}

/** A criterion, nothing (an empty value), or why the parameter is unknown (refused unless lenient). */
type Filter = SearchCriterion | { unknown: string } | undefined;

function parseFilter(types: readonly string[], name: string, value: string, now: number, baseUrl: string | undefined): Filter {
  if (name === '_has' || name.startsWith('_has:')) return parseHas(types, name, value, now, baseUrl);
  if (name === '_text' || name === '_content') {
    if (value === '') return undefined;
    const queries = splitUnescaped(value, ',').map((v) => fullTextQuery(unescapeValue(v)));
    if (queries.some((q) => q === undefined)) throw badRequest(`${name} needs words to search for, not '${value}'`);
    return { kind: 'text', code: name, values: queries as string[] };
  }
  if (name === '_list') {
    if (value === '') return undefined;
    const lists = splitUnescaped(value, ',').map(unescapeValue);
    for (const id of lists) if (!/^[A-Za-z0-9\-.]{1,64}$/.test(id)) throw badRequest(`_list takes the id of a List, not '${id}'`);
    return { kind: 'list', code: '_list', values: lists };
  }
  const dot = name.indexOf('.');
  if (dot >= 0) return parseChain(types, name.slice(0, dot), name.slice(dot + 1), value, now, baseUrl);
  const [code, modifier] = splitModifier(name);
  const param = paramFor(types, code);
  if (!param) return { unknown: `Unknown search parameter '${code}' for ${describe(types)}` };
  if (param.type === 'special') {
    if (code !== 'near') throw notSupported(`Search parameter '${code}' (${param.type}) is not supported yet`);
    if (modifier !== undefined) return { unknown: `Unknown modifier ':${modifier}' for search parameter 'near'` };
    if (value === '') return undefined;
    return { kind: 'near', code, values: splitUnescaped(value, ',').map(parseNear) };
  }
  if (value === '') return undefined; // An empty value constrains nothing.
  if (param.type === 'composite') return parseComposite(param, modifier, value, now, baseUrl);
  const criterion = parseCriterion(param, modifier, value, now, baseUrl);
  if (criterion) return criterion;
  if (modifier !== undefined && modifiersNotYet.has(modifier)) throw notSupported(`Modifier ':${modifier}' on search parameter '${code}' is not supported yet`);
  return { unknown: `Unknown modifier ':${modifier}' for search parameter '${code}' (${param.type})` };
}

/** `subject:Patient.name`, `subject.name`, `subject.organization.name`: the rest applies to the referenced resources. */
function parseChain(types: readonly string[], head: string, rest: string, value: string, now: number, baseUrl: string | undefined): Filter {
  const [code, typeModifier] = splitModifier(head);
  const param = paramFor(types, code);
  if (!param) return { unknown: `Unknown search parameter '${code}' for ${describe(types)}` };
  if (param.type !== 'reference') throw badRequest(`Search parameter '${code}' is a ${param.type}, not a reference, so it cannot be chained`);
  let candidates: readonly string[];
  if (typeModifier !== undefined) {
    if (!isResourceTypeName(typeModifier)) return { unknown: `Unknown modifier ':${typeModifier}' for search parameter '${code}' (reference)` };
    if (param.targets.length > 0 && !param.targets.includes(typeModifier)) throw badRequest(`Search parameter '${code}' cannot refer to ${typeModifier}`);
    candidates = [typeModifier];
  } else {
    if (param.targets.length === 0) throw badRequest(`Chaining '${code}' needs a target type: ${code}:[type].${rest}`);
    candidates = param.targets;
  }
  const nextCode = /^[^.:]*/.exec(rest)![0];
  const targetTypes = candidates.filter((t) => searchParam(t, nextCode) !== undefined);
  if (targetTypes.length === 0) return { unknown: `Unknown search parameter '${nextCode}' for ${describe(candidates)} (in chain '${head}.${rest}')` };
  const inner = parseFilter(targetTypes, rest, value, now, baseUrl);
  if (inner === undefined || 'unknown' in inner) return inner;
  return { kind: 'chain', code, targetTypes, criterion: inner };
}

/**
 * `_has:[type]:[reference parameter]:[parameter]`: the last part is any filter on `[type]`,
 * modifiers, chains and further `_has` included.
 */
function parseHas(types: readonly string[], name: string, value: string, now: number, baseUrl: string | undefined): Filter {
  const [, sourceType, code, ...rest] = name.split(':');
  const inner = rest.join(':');
  if (!sourceType || !code || !inner) throw badRequest(`_has must be written _has:[type]:[reference parameter]:[parameter], not '${name}'`);
  if (!isResourceTypeName(sourceType)) throw badRequest(`${name}: '${sourceType}' is not a resource type`);
  const param = searchParam(sourceType, code);
  if (!param) return { unknown: `${name}: unknown search parameter '${code}' for ${sourceType}` };
  if (param.type !== 'reference') throw badRequest(`${name}: '${code}' is a ${param.type} parameter of ${sourceType}, not a reference`);
  if (types.length > 0 && param.targets.length > 0 && !types.some((t) => param.targets.includes(t))) {
    throw badRequest(`${name}: ${sourceType}.${code} cannot refer to ${describe(types)}`);
  }
  const criterion = parseFilter([sourceType], inner, value, now, baseUrl);
  if (criterion === undefined || 'unknown' in criterion) return criterion;
  return { kind: 'has', code, sourceType, criterion };
}

/**
 * `a$b,c$d`: a tuple of part values per OR'd value, `$` between parts (escaped `\$` is literal);
 * each part is read as its own parameter type would read it (prefixes, systems, units).
 */
function parseComposite(param: SearchParam, modifier: string | undefined, value: string, now: number, baseUrl: string | undefined): Filter {
  if (modifier === 'missing') throw notSupported(`:missing on composite parameter '${param.code}' is not supported yet; use :missing on one of its parts' own parameters`);
  if (modifier !== undefined) return { unknown: `Unknown modifier ':${modifier}' for search parameter '${param.code}' (composite)` };
  const parts = componentsOf(param);
  if (parts.length === 0) throw notSupported(`Search parameter '${param.code}' (composite) is not supported: its definition names an unknown part`);
  const values = splitUnescaped(value, ',').map((tuple) => {
    const pieces = splitUnescaped(tuple, '$');
    if (pieces.length !== parts.length) {
      throw badRequest(`Search parameter '${param.code}' takes ${parts.length} values joined by '$' (e.g. ${parts.map((p) => p.type).join('$')}), not '${tuple}'`);
    }
    return pieces.map((piece, i) => {
      if (piece === '') throw badRequest(`Search parameter '${param.code}': part ${i + 1} of '${tuple}' is empty`);
      const partParam: SearchParam = { ...param, type: parts[i].type, targets: [] };
      // Unescaped commas were split on above: the piece is one value of the part's type.
      const criterion = parseCriterion(partParam, undefined, piece, now, baseUrl);
      if (!criterion) throw badRequest(`Search parameter '${param.code}': part ${i + 1} (${parts[i].type}) cannot be searched`);
      return criterion;
    });
  });
  return { kind: 'composite', code: param.code, values };
}

/** `[type system]|[type code]|[value]`; the type system may be empty (any). */
function parseOfType(code: string, piece: string): { typeSystem?: string; typeCode: string; value: string } {
  const parts = splitUnescaped(piece, '|').map(unescapeValue);
  if (parts.length !== 3 || parts[1] === '' || parts[2] === '') {
    throw badRequest(`${code}:of-type takes [type system]|[type code]|[value], e.g. http://terminology.hl7.org/CodeSystem/v2-0203|MR|12345, not '${piece}'`);
  }
  return { ...(parts[0] ? { typeSystem: parts[0] } : {}), typeCode: parts[1], value: parts[2] };
}

const kmPer: Record<string, number> = { km: 1, m: 0.001, mi: 1.609344, '[mi_i]': 1.609344, mi_i: 1.609344 };
/** Without a distance, "near" is this far (the server's discretion, search.html#special). */
const defaultNearKm = 10;

/** `lat|long[|distance[|units]]`: degrees, and a distance in km (default), m or miles. */
function parseNear(piece: string): { latitude: number; longitude: number; km: number } {
  const parts = splitUnescaped(piece, '|').map(unescapeValue);
  const [lat, lon, distance, units] = parts;
  const num = (s: string | undefined) => (s !== undefined && /^-?\d+(\.\d+)?$/.test(s) ? Number(s) : NaN);
  const latitude = num(lat);
  const longitude = num(lon);
  if (parts.length < 2 || parts.length > 4 || !(Math.abs(latitude) <= 90) || !(Math.abs(longitude) <= 180)) {
    throw badRequest(`near takes latitude|longitude|distance|units (degrees, e.g. 42.256|-83.694|11.2|km), not '${piece}'`);
  }
  const d = distance === undefined || distance === '' ? defaultNearKm : num(distance.replace(/^eq|^le|^lt/, ''));
  const factor = units === undefined || units === '' ? 1 : kmPer[units];
  if (!(d >= 0) || factor === undefined) throw badRequest(`near: the distance must be a number of km, m or [mi_i], not '${distance ?? ''}${units ? ' ' + units : ''}'`);
  return { latitude, longitude, km: d * factor };
}

function splitModifier(name: string): [string, string | undefined] {
  const colon = name.indexOf(':');
  return colon < 0 ? [name, undefined] : [name.slice(0, colon), name.slice(colon + 1)];
}

/**
 * `Type:param[:targetType]`, with `:iterate`; a string says why it is not understood. The
 * parameter may be `*`, every reference parameter of the type; `_include=*` is every reference
 * parameter of the searched types.
 */
function parseInclude(code: string, modifier: string | undefined, value: string, searched: readonly string[]): IncludeSpec[] | string {
  if (modifier !== undefined && modifier !== 'iterate') return `Unknown modifier ':${modifier}' for ${code}`;
  const iterate = modifier === 'iterate';
  if (value === '*') {
    if (code === '_revinclude') throw badRequest('_revinclude=* would take every reference to the matches from every type: name the type, e.g. _revinclude=Provenance:*');
    if (searched.length === 0) throw badRequest('_include=* needs the searched types: search a type, or give _type');
    return searched.flatMap((type) => everyReference(type, iterate));
  }
  const parts = value.split(':');
  if (parts.length < 2 || parts.length > 3) throw badRequest(`${code} must be [type]:[parameter] or [type]:[parameter]:[target type], not '${value}'`);
  const [sourceType, paramCode, targetType] = parts;
  if (!isResourceTypeName(sourceType)) throw badRequest(`${code}: '${sourceType}' is not a resource type`);
  if (targetType !== undefined && !isResourceTypeName(targetType)) throw badRequest(`${code}: '${targetType}' is not a resource type`);
  if (paramCode === '*') {
    return everyReference(sourceType, iterate)
      .filter((spec) => targetType === undefined || canReferTo(spec, targetType))
      .map((spec) => (targetType === undefined ? spec : { ...spec, targetType }));
  }
  const param = searchParam(sourceType, paramCode);
  if (!param) return `${code}: unknown search parameter '${paramCode}' for ${sourceType}`;
  if (param.type !== 'reference') throw badRequest(`${code}: '${paramCode}' is a ${param.type} parameter, not a reference`);
  if (targetType !== undefined && param.targets.length > 0 && !param.targets.includes(targetType)) {
    throw badRequest(`${code}: ${sourceType}.${paramCode} cannot refer to ${targetType}`);
  }
  const spec: IncludeSpec = { sourceType, code: paramCode, iterate };
  if (targetType !== undefined) spec.targetType = targetType;
  return [spec];
}

function everyReference(sourceType: string, iterate: boolean): IncludeSpec[] {
  return [...searchParamsOf(sourceType).values()].filter((p) => p.type === 'reference').map((p) => ({ sourceType, code: p.code, iterate }));
}

function canReferTo(spec: IncludeSpec, targetType: string): boolean {
  const targets = searchParam(spec.sourceType, spec.code)?.targets ?? [];
  return targets.length === 0 || targets.includes(targetType);
}

function searchedTypes(resourceType: string | undefined, params: [string, string][]): string[] {
  const typeParams = params.filter(([name]) => name === '_type');
  if (resourceType !== undefined) {
    if (!isResourceTypeName(resourceType)) throw badRequest(`'${resourceType}' is not a resource type`);
    if (typeParams.length > 0) throw badRequest('_type is only allowed in a search across all types');
    return [resourceType];
  }
  const types = new Set<string>();
  for (const [, value] of typeParams) {
    for (const t of value.split(',').map((s) => s.trim()).filter(Boolean)) {
      if (!isResourceTypeName(t)) throw badRequest(`_type: '${t}' is not a resource type`);
      types.add(t);
    }
  }
  return [...types];
}

/** The parameter, when every searched type has it with the same type (all types: the shared ones). */
function paramFor(types: readonly string[], code: string): SearchParam | undefined {
  if (types.length === 0) return commonSearchParams().get(code);
  let found: SearchParam | undefined;
  for (const type of types) {
    const p = searchParam(type, code);
    if (!p || (found && found.type !== p.type)) return undefined;
    found ??= p;
  }
  return found;
}

function describe(types: readonly string[]): string {
  return types.length === 0 ? 'a search across all types' : types.join(', ');
}

function nonNegativeInt(code: string, value: string): number {
  if (!/^\d{1,9}$/.test(value)) throw badRequest(`${code} must be a non-negative integer, not '${value}'`);
  return Number(value);
}

function parseSort(value: string, types: readonly string[], lenient: boolean, ignored: string[]): SortKey[] {
  const keys: SortKey[] = [];
  for (const item of value.split(',').map((s) => s.trim()).filter(Boolean)) {
    const descending = item.startsWith('-');
    const code = descending ? item.slice(1) : item;
    const param = paramFor(types, code);
    if (!param) {
      if (!lenient) throw badRequest(`Cannot sort by '${code}': not a search parameter of ${describe(types)}`);
      ignored.push(`_sort=${item}`);
      continue;
    }
    if (param.type === 'composite' || param.type === 'special') throw notSupported(`Sorting by '${code}' (${param.type}) is not supported yet`);
    keys.push({ code, type: param.type, descending });
  }
  return keys;
}

/** undefined: the modifier is not one this parameter type accepts. */
function parseCriterion(
  param: SearchParam, modifier: string | undefined, value: string, now: number, baseUrl: string | undefined,
): SearchCriterion | undefined {
  const { code } = param;
  if (modifier === 'missing') {
    if (value !== 'true' && value !== 'false') throw badRequest(`${code}:missing must be true or false, not '${value}'`);
    return { kind: 'missing', code, paramType: param.type as SearchParamType, missing: value === 'true' };
  }
  const pieces = splitUnescaped(value, ',');
  const plain = (): string[] => pieces.map(unescapeValue);
  switch (param.type) {
    case 'string':
      if (code === 'phonetic') {
        // Soundex codes of the words searched for; a name matches when it has any one of them.
        if (modifier !== undefined) return undefined;
        const sounds = plain().flatMap(soundexWords);
        if (sounds.length === 0) throw badRequest(`phonetic needs a name to compare, not '${value}'`);
        return { kind: 'string', code, match: 'exact', values: [...new Set(sounds)] };
      }
      if (modifier === undefined || modifier === 'contains') {
        return { kind: 'string', code, match: modifier === 'contains' ? 'contains' : 'prefix', values: plain().map(normalizeText) };
      }
      if (modifier === 'exact') return { kind: 'string', code, match: 'exact', values: plain() };
      return undefined;
    case 'token':
      if (code === '_id' && modifier !== undefined && modifier !== 'not') return undefined;
      if (modifier === 'text') return { kind: 'token-text', code, values: plain().map(normalizeText) };
      if (modifier === 'of-type') return { kind: 'token-of-type', code, values: pieces.map((p) => parseOfType(code, p)) };
      if (modifier === 'in' || modifier === 'not-in') {
        return { kind: 'token-in', code, negate: modifier === 'not-in', valueSets: plain().map((v) => valueSetReference(code, v)) };
      }
      if (modifier === 'below' || modifier === 'above') {
        return { kind: 'token-subsumes', code, direction: modifier, values: pieces.map((p) => subsumptionConcept(code, modifier, p)) };
      }
      if (modifier !== undefined && modifier !== 'not') return undefined;
      if (code === '_id') return { kind: 'token', code, negate: modifier === 'not', values: plain().map((id) => ({ code: id })) };
      return { kind: 'token', code, negate: modifier === 'not', values: pieces.map((p) => parseTokenValue(code, p)) };
    case 'reference': {
      if (modifier === 'identifier') return { kind: 'reference-identifier', code, values: pieces.map((p) => parseTokenValue(code, p)) };
      if (modifier !== undefined && !isResourceTypeName(modifier)) return undefined;
      if (modifier !== undefined && param.targets.length > 0 && !param.targets.includes(modifier)) {
        throw badRequest(`Search parameter '${code}' cannot refer to ${modifier}`);
      }
      return { kind: 'reference', code, values: plain().map((v) => parseReferenceValue(code, v, param.targets, modifier, baseUrl)) };
    }
    case 'date':
      if (modifier !== undefined) return undefined;
      return { kind: 'date', code, values: plain().map((v) => parseDateValue(code, v, now)) };
    case 'number':
      if (modifier !== undefined) return undefined;
      return { kind: 'number', code, values: plain().map((v) => parseNumberValue(code, v)) };
    case 'quantity':
      if (modifier !== undefined) return undefined;
      return { kind: 'quantity', code, values: pieces.map((p) => parseQuantityValue(code, p)) };
    case 'uri':
      if (modifier === undefined || modifier === 'below' || modifier === 'above') {
        return { kind: 'uri', code, match: modifier ?? 'exact', values: plain() };
      }
      return undefined;
    default:
      return undefined;
  }
}

/** A value set to search in: an absolute canonical URL or a `ValueSet/<id>` reference on this server. */
function valueSetReference(code: string, value: string): string {
  if (/^ValueSet\/[A-Za-z0-9\-.]{1,64}$/.test(value) || /^(https?|urn):\S+$/.test(value)) return value;
  throw badRequest(`${code}:in takes a value set's canonical URL or ValueSet/<id>, not '${value}'`);
}

/** Subsumption is defined within one code system: the value must name it (`system|code`). */
function subsumptionConcept(code: string, modifier: string, piece: string): { system: string; code: string } {
  const v = parseTokenValue(code, piece);
  if (!v.system || v.code === undefined) throw badRequest(`${code}:${modifier} takes system|code, not '${unescapeValue(piece)}'`);
  return { system: v.system, code: v.code };
}
