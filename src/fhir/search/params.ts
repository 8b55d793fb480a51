import { createHash } from 'node:crypto';
import model from 'fhirpath/fhir-context/r4';
import { searchParameterByUrl, searchParameterDefinitions, type SearchParameterDefinition } from '../definitions.ts';
import type { SearchParamType } from './types.ts';

/** One search parameter as it applies to one resource type. */
export interface SearchParam {
  code: string;
  type: SearchParamType;
  /** `Resource` for the parameters every type has (`_id`, `_tag`, ...), else the resource type. */
  base: string;
  /** Reference targets, when the definition lists them. */
  targets: readonly string[];
  /** The part of the definition's expression that concerns this type; undefined: nothing to index. */
  expression: string | undefined;
  definition: SearchParameterDefinition;
}

/** Types that are not DomainResources, so lack the DomainResource-level parameters. */
const plainResources = new Set(['Bundle', 'Binary', 'Parameters']);

const byType = new Map<string, ReadonlyMap<string, SearchParam>>();

/** Every search parameter of `resourceType`, by code; empty for a type that does not exist. */
export function searchParamsOf(resourceType: string): ReadonlyMap<string, SearchParam> {
  let params = byType.get(resourceType);
  if (!params) {
    params = isResourceTypeName(resourceType) ? collect(resourceType) : new Map();
    byType.set(resourceType, params);
  }
  return params;
}

export function searchParam(resourceType: string, code: string): SearchParam | undefined {
  return searchParamsOf(resourceType).get(code);
}

let common: ReadonlyMap<string, SearchParam> | undefined;

/** The parameters every resource type has (`_id`, `_lastUpdated`, `_tag`, ...): all a system-wide search may use. */
export function commonSearchParams(): ReadonlyMap<string, SearchParam> {
  return (common ??= collect(undefined));
}

function collect(resourceType: string | undefined): Map<string, SearchParam> {
  const defs = searchParameterDefinitions();
  const out = new Map<string, SearchParam>();
  const levels: [string, string][] = [['Resource', 'Resource']];
  if (resourceType === undefined || !plainResources.has(resourceType)) levels.push(['DomainResource', 'Resource']);
  if (resourceType !== undefined) levels.push([resourceType, resourceType]);
  for (const [defBase, base] of levels) {
    for (const [code, def] of defs.get(defBase) ?? []) {
      out.set(code, {
        code,
        type: def.type as SearchParamType,
        base,
        targets: def.target ?? [],
        expression: def.expression === undefined ? undefined : expressionFor(def.expression, defBase, resourceType ?? defBase),
        definition: def,
      });
    }
  }
  return out;
}

/**
 * R4 expressions cover every base at once (`Patient.name | Person.name`); the parts for other
 * types would never match this type's resources, so only this type's parts are kept. A part that
 * starts with no type name at all (InsurancePlan `name | alias`) is relative to the resource.
 */
export function expressionFor(expression: string, defBase: string, resourceType: string): string | undefined {
  const parts = splitUnion(expression).filter((part) => {
    const head = /^\(*([A-Za-z]+)/.exec(part)?.[1];
    if (head === undefined) return false;
    if (head === resourceType || head === defBase) return true;
    return !isTypeName(head);
  });
  return parts.length === 0 ? undefined : parts.join(' | ');
}

/** Splits a FHIRPath expression on its top-level `|` operators. */
export function splitUnion(expression: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < expression.length; i++) {
    const ch = expression[i];
    if (ch === '\\' && quoted) i++;
    else if (ch === "'") quoted = !quoted;
    else if (quoted) continue;
    else if (ch === '(') depth++;
    else if (ch === ')') depth--;
    else if (ch === '|' && depth === 0) {
      parts.push(expression.slice(start, i).trim());
      start = i + 1;
    }
  }
  parts.push(expression.slice(start).trim());
  return parts.filter((p) => p.length > 0);
}

const typeParents = (model as unknown as { type2Parent: Record<string, string> }).type2Parent;

function isTypeName(name: string): boolean {
  return name in typeParents || name === 'Resource';
}

/** Concrete R4 resource types, from the FHIRPath model (cheap, unlike the full StructureDefinitions). */
export function isResourceTypeName(name: string): boolean {
  if (name === 'DomainResource' || name === 'Resource') return false;
  const parent = typeParents[name];
  return parent === 'DomainResource' || parent === 'Resource';
}

const keys = new Map<string, number>();

/**
 * The integer that identifies a parameter in the index tables. It is derived from the name
 * (`Resource._tag`, `Observation.code`) rather than assigned from a table, so it is the same in
 * every store and every process, needs no lookup on write, and cannot go stale when a transaction
 * that would have assigned it rolls back. 48 bits: exact in a JS number; collisions among a few
 * thousand names are vanishingly unlikely.
 */
export function paramKey(base: string, code: string): number {
  const name = `${base}.${code}`;
  let key = keys.get(name);
  if (key === undefined) {
    key = createHash('sha256').update(name).digest().readUIntBE(0, 6);
    keys.set(name, key);
  }
  return key;
}

/** The index keys of `code` across the searched types (all types: only Resource-level parameters). */
export function paramKeys(resourceTypes: readonly string[], code: string): number[] {
  if (resourceTypes.length === 0) {
    return commonSearchParams().has(code) ? [paramKey('Resource', code)] : [];
  }
  return keysAcross(resourceTypes, code, (p) => paramKey(p.base, code));
}

/** The distinct keys `keyOf` gives `code` on each searched type that has it (undefined: none on that type). */
function keysAcross(resourceTypes: readonly string[], code: string, keyOf: (p: SearchParam) => number | undefined): number[] {
  const out = new Set<number>();
  for (const type of resourceTypes) {
    const p = searchParam(type, code);
    const key = p && keyOf(p);
    if (key !== undefined) out.add(key);
  }
  return [...out];
}

/** One part of a composite parameter: its type, and its expression relative to each base node. */
export interface CompositeComponent {
  type: SearchParamType;
  expression: string;
}

/** The parts of a composite parameter, in order; empty when its definition names an unknown component. */
export function componentsOf(param: SearchParam): CompositeComponent[] {
  const parts = param.definition.component ?? [];
  const out: CompositeComponent[] = [];
  for (const part of parts) {
    const def = searchParameterByUrl(part.definition);
    if (!def) return [];
    out.push({ type: def.type as SearchParamType, expression: part.expression });
  }
  return out;
}

/**
 * The index key of part `index` of a composite parameter. Parts are indexed in the ordinary
 * tables under keys of their own, rows of one base node sharing a group number.
 */
export function componentKey(base: string, code: string, index: number): number {
  return paramKey(base, `${code}$${index}`);
}

/** The index keys of part `index` of composite `code` (or of `near`'s latitude, longitude) across the searched types. */
export function componentKeys(resourceTypes: readonly string[], code: string, index: number): number[] {
  return keysAcross(resourceTypes, code, (p) => (p.type === 'composite' || p.type === 'special' ? componentKey(p.base, code, index) : undefined));
}

const aliasCache = new Map<string, string[] | null>();

/**
 * The composite parameters a composite parameter is exactly the union of, or undefined. R4's
 * `combo-code-value-quantity` (`Observation | Observation.component`, parts code and value) is
 * `code-value-quantity` (`Observation`) together with `component-code-value-quantity`
 * (`Observation.component`): it needs no index rows of its own, only a search over both.
 */
export function compositeUnionOf(resourceType: string, param: SearchParam): string[] | undefined {
  const cacheKey = `${resourceType}.${param.code}`;
  let found = aliasCache.get(cacheKey);
  if (found === undefined) {
    found = null;
    const parts = param.expression === undefined ? [] : splitUnion(param.expression);
    if (parts.length > 1) {
      const same = (q: SearchParam) => q.type === 'composite' && q.code !== param.code && sameComponents(q, param);
      const others = [...searchParamsOf(resourceType).values()].filter(same);
      const codes = parts.map((part) => others.find((q) => q.expression === part)?.code);
      if (codes.every((c) => c !== undefined)) found = codes as string[];
    }
    aliasCache.set(cacheKey, found);
  }
  return found ?? undefined;
}

function sameComponents(a: SearchParam, b: SearchParam): boolean {
  const x = a.definition.component ?? [];
  const y = b.definition.component ?? [];
  return x.length === y.length && x.every((c, i) => c.definition === y[i].definition && c.expression === y[i].expression);
}

/** The index key of a token parameter's `:of-type` rows (identifier type and value). */
export function ofTypeKey(base: string, code: string): number {
  return paramKey(base, `${code}:of-type`);
}

export function ofTypeKeys(resourceTypes: readonly string[], code: string): number[] {
  return keysAcross(resourceTypes, code, (p) => (p.type === 'token' ? ofTypeKey(p.base, code) : undefined));
}
