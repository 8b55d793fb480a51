/** The parts of CodeSystem and ValueSet that expansion and subsumption read. */

export interface Concept {
  code: string;
  display?: string;
  concept?: Concept[];
  property?: { code: string; valueCode?: string; valueString?: string; valueBoolean?: boolean }[];
}

export interface CodeSystem {
  resourceType: 'CodeSystem';
  url: string;
  content?: string;
  hierarchyMeaning?: string;
  concept?: Concept[];
}

export interface Filter {
  property: string;
  op: string;
  value: string;
}

export interface Include {
  system?: string;
  version?: string;
  concept?: { code: string }[];
  filter?: Filter[];
  valueSet?: string[];
}

export interface ValueSet {
  resourceType: 'ValueSet';
  url: string;
  compose?: { include?: Include[]; exclude?: Include[] };
  expansion?: { contains?: Contained[] };
}

export interface Contained {
  system?: string;
  code?: string;
  contains?: Contained[];
}

/** Where definitions come from: each lookup by canonical URL (without `|version`), or undefined when unknown. */
export interface TerminologySource {
  codeSystem(url: string): CodeSystem | undefined;
  valueSet(url: string): ValueSet | undefined;
}

/** Codes of a value set, by system. */
export interface Expansion {
  readonly bySystem: ReadonlyMap<string, ReadonlySet<string>>;
  /** Every code regardless of system, for `code`-typed elements (which carry no system). */
  readonly codes: ReadonlySet<string>;
}

/** A canonical URL without its `|version`. */
export function canonicalKey(url: string): string {
  const bar = url.indexOf('|');
  return bar < 0 ? url : url.slice(0, bar);
}
