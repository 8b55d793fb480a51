import { closure, hierarchyOf } from './hierarchy.ts';
import { canonicalKey, type CodeSystem, type Contained, type Expansion, type Filter, type Include, type TerminologySource, type ValueSet } from './types.ts';

type Codes = Map<string, Set<string>>;

/**
 * Expands value sets from their definitions (compose.include / exclude, concept lists, whole code
 * systems, is-a style filters; a stored expansion when there is no compose) without a terminology
 * server. An expansion is all or nothing: null when any part cannot be known here, because a
 * partial one would wrongly reject codes (validation) or miss resources (search).
 */
export class ValueSetExpander {
  /** Canonical URLs of code systems and value sets asked for but not in the source. */
  readonly missing = new Set<string>();
  private readonly cache = new Map<string, Expansion | null>();
  private readonly source: TerminologySource;

  constructor(source: TerminologySource) {
    this.source = source;
  }

  /** The expansion of a value set (URL with or without `|version`), or null if it cannot be fully expanded. */
  expand(url: string): Expansion | null {
    return this.expandUrl(canonicalKey(url), new Set());
  }

  private expandUrl(key: string, visiting: Set<string>): Expansion | null {
    const cached = this.cache.get(key);
    if (cached !== undefined) return cached;
    if (visiting.has(key)) return null;
    visiting.add(key);
    const vs = this.source.valueSet(key);
    if (!vs) this.missing.add(key);
    const codes = vs ? this.compute(vs, visiting) : null;
    visiting.delete(key);
    const result = codes && expansionOf(codes);
    this.cache.set(key, result);
    return result;
  }

  private compute(vs: ValueSet, visiting: Set<string>): Codes | null {
    const include = vs.compose?.include;
    if (!include || include.length === 0) return vs.expansion?.contains ? fromContains(vs.expansion.contains, new Map()) : null;
    const out: Codes = new Map();
    for (const part of include) {
      const selected = this.select(part, visiting);
      if (!selected) return null;
      addCodes(out, selected);
    }
    for (const part of vs.compose!.exclude ?? []) {
      const selected = this.select(part, visiting);
      if (!selected) return null;
      for (const [system, codes] of selected) for (const code of codes) out.get(system)?.delete(code);
    }
    return out;
  }

  /** The codes an include/exclude selects, by system; null when they cannot all be known here. */
  private select(part: Include, visiting: Set<string>): Codes | null {
    if (part.valueSet && part.valueSet.length > 0) {
      // An include naming both a system and value sets is their intersection; rare, not worth it.
      if (part.system) return null;
      const out: Codes = new Map();
      for (const url of part.valueSet) {
        const sub = this.expandUrl(canonicalKey(url), visiting);
        if (!sub) return null;
        addCodes(out, sub.bySystem);
      }
      return out;
    }
    if (!part.system) return null;
    let codes: Set<string> | null;
    if (part.concept && part.concept.length > 0) codes = new Set(part.concept.map((c) => c.code));
    else {
      const cs = this.codeSystem(part.system);
      if (!cs) return null;
      if (part.filter && part.filter.length > 0) codes = filtered(cs, part.filter);
      else codes = complete(cs) ? new Set(hierarchyOf(cs).codes) : null;
    }
    return codes && new Map([[part.system, codes]]);
  }

  private codeSystem(url: string): CodeSystem | undefined {
    const cs = this.source.codeSystem(url);
    if (!cs) this.missing.add(url);
    return cs;
  }
}

/** Only a code system that lists all its codes can be expanded whole or filtered by hierarchy. */
function complete(cs: CodeSystem): boolean {
  return cs.content === 'complete';
}

/** The codes of `cs` that pass every filter (they are ANDed); null for a filter not understood here. */
function filtered(cs: CodeSystem, filters: Filter[]): Set<string> | null {
  if (!complete(cs)) return null;
  const h = hierarchyOf(cs);
  let result: Set<string> | undefined;
  for (const f of filters) {
    if (f.property !== 'concept' && f.property !== 'code') return null;
    let pass: Set<string>;
    switch (f.op) {
      case 'is-a': pass = closure(h, f.value, 'below'); break;
      case 'descendent-of': pass = closure(h, f.value, 'below'); pass.delete(f.value); break;
      case 'is-not-a': {
        const below = closure(h, f.value, 'below');
        pass = new Set([...h.codes].filter((c) => !below.has(c)));
        break;
      }
      case '=': pass = new Set([f.value]); break;
      case 'in': pass = new Set(f.value.split(',').map((s) => s.trim())); break;
      default: return null;
    }
    for (const c of pass) if (!h.codes.has(c)) pass.delete(c);
    result = result === undefined ? pass : new Set([...result].filter((c) => pass.has(c)));
  }
  return result ?? null;
}

function fromContains(contains: Contained[], out: Codes): Codes {
  for (const c of contains) {
    if (c.system && c.code) addCodes(out, new Map([[c.system, new Set([c.code])]]));
    if (c.contains) fromContains(c.contains, out);
  }
  return out;
}

function addCodes(into: Codes, from: ReadonlyMap<string, ReadonlySet<string>>): void {
  for (const [system, codes] of from) {
    let set = into.get(system);
    if (!set) into.set(system, (set = new Set()));
    for (const code of codes) set.add(code);
  }
}

function expansionOf(bySystem: Codes): Expansion {
  const codes = new Set<string>();
  for (const set of bySystem.values()) for (const code of set) codes.add(code);
  return { bySystem, codes };
}
