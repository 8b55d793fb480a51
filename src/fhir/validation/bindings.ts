import { readDefinitionFile } from '../definitions.ts';

/**
 * Expansions of the R4 value sets that required bindings point at, computed from the definitions
 * package without a terminology server. Only value sets that expand completely from what the
 * package holds are enforced: a partial expansion would reject valid codes.
 */

interface Concept { code: string; concept?: Concept[] }
interface CodeSystem { resourceType: 'CodeSystem'; url: string; content?: string; concept?: Concept[] }
interface Include {
  system?: string;
  version?: string;
  concept?: { code: string }[];
  filter?: unknown[];
  valueSet?: string[];
}
interface ValueSet { resourceType: 'ValueSet'; url: string; compose?: { include?: Include[]; exclude?: Include[] } }

/** Codes of a value set, by system. */
export interface Expansion {
  readonly bySystem: ReadonlyMap<string, ReadonlySet<string>>;
  /** Every code regardless of system, for `code`-typed elements (which carry no system). */
  readonly codes: ReadonlySet<string>;
}

/**
 * valuesets.json holds the R4 core code systems and value sets; v3-codesystems.json the HL7 v3
 * code systems some of them include (e.g. v3-ActEncounterCode). v2 tables are not needed by any
 * required binding on a `code` element.
 */
const SOURCES = ['valuesets.json', 'v3-codesystems.json'];

let codeSystems: Map<string, CodeSystem> | undefined;
let valueSets: Map<string, ValueSet> | undefined;
const expansions = new Map<string, Expansion | null>();

function load(): void {
  codeSystems = new Map();
  valueSets = new Map();
  for (const file of SOURCES) {
    const bundle = readDefinitionFile<{ entry: { resource: CodeSystem | ValueSet }[] }>(file);
    for (const { resource } of bundle.entry) {
      if (resource.resourceType === 'CodeSystem') {
        if (!codeSystems.has(resource.url)) codeSystems.set(resource.url, resource);
      } else if (resource.resourceType === 'ValueSet' && !valueSets.has(resource.url)) {
        valueSets.set(resource.url, resource);
      }
    }
  }
}

function addAll(into: Set<string>, concepts: Concept[] | undefined): void {
  for (const c of concepts ?? []) {
    into.add(c.code);
    addAll(into, c.concept);
  }
}

/** The codes an include/exclude selects, by system; null when they cannot all be known here. */
function select(part: Include, visiting: Set<string>): Map<string, Set<string>> | null {
  if (part.filter && part.filter.length > 0) return null;
  const out = new Map<string, Set<string>>();
  if (part.valueSet && part.valueSet.length > 0) {
    // An include naming both a system and value sets is their intersection; rare, not worth it.
    if (part.system) return null;
    for (const url of part.valueSet) {
      const sub = expandUrl(url, visiting);
      if (!sub) return null;
      for (const [system, codes] of sub.bySystem) {
        let set = out.get(system);
        if (!set) out.set(system, (set = new Set()));
        for (const code of codes) set.add(code);
      }
    }
    return out;
  }
  if (!part.system) return null;
  const codes = new Set<string>();
  if (part.concept && part.concept.length > 0) {
    for (const c of part.concept) codes.add(c.code);
  } else {
    const cs = codeSystems!.get(part.system);
    if (!cs || cs.content !== 'complete') return null;
    addAll(codes, cs.concept);
  }
  out.set(part.system, codes);
  return out;
}

function expandUrl(url: string, visiting: Set<string>): Expansion | null {
  const bar = url.indexOf('|');
  const key = bar < 0 ? url : url.slice(0, bar);
  const cached = expansions.get(key);
  if (cached !== undefined) return cached;
  if (visiting.has(key)) return null;
  visiting.add(key);
  const result = compute(key, visiting);
  visiting.delete(key);
  expansions.set(key, result);
  return result;
}

function compute(url: string, visiting: Set<string>): Expansion | null {
  const vs = valueSets!.get(url);
  const include = vs?.compose?.include;
  if (!include || include.length === 0) return null;
  const bySystem = new Map<string, Set<string>>();
  for (const part of include) {
    const selected = select(part, visiting);
    if (!selected) return null;
    for (const [system, codes] of selected) {
      let set = bySystem.get(system);
      if (!set) bySystem.set(system, (set = new Set()));
      for (const code of codes) set.add(code);
    }
  }
  for (const part of vs!.compose!.exclude ?? []) {
    const selected = select(part, visiting);
    if (!selected) return null;
    for (const [system, codes] of selected) for (const code of codes) bySystem.get(system)?.delete(code);
  }
  const codes = new Set<string>();
  for (const set of bySystem.values()) for (const code of set) codes.add(code);
  return { bySystem, codes };
}

/** The expansion of a value set (URL with or without `|version`), or null if it cannot be fully expanded. */
export function expandValueSet(url: string): Expansion | null {
  if (!valueSets) load();
  return expandUrl(url, new Set());
}
