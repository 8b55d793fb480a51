import { readDefinitionFile } from './definitions.ts';

interface CompartmentDefinition {
  code: string;
  resource: { code: string; param?: string[] }[];
}

/** Compartment type -> resource type -> the reference parameters that put a resource in it. */
let compartments: Map<string, Map<string, string[]>> | undefined;

/**
 * The compartments this server knows the R4 membership rules of: those whose CompartmentDefinition
 * ships with the definitions package (Patient). Read once.
 */
function known(): Map<string, Map<string, string[]>> {
  if (!compartments) {
    compartments = new Map();
    const def = readDefinitionFile<CompartmentDefinition>('compartmentdefinition-patient.json');
    const members = new Map<string, string[]>();
    for (const r of def.resource) if (r.param && r.param.length > 0) members.set(r.code, r.param);
    compartments.set(def.code, members);
  }
  return compartments;
}

export function isKnownCompartment(compartmentType: string): boolean {
  return known().has(compartmentType);
}

/** The parameters by which resources of `resourceType` belong to a `compartmentType` compartment; empty: they never do. */
export function compartmentParams(compartmentType: string, resourceType: string): readonly string[] {
  return known().get(compartmentType)?.get(resourceType) ?? [];
}

/** The resource types that can be in a `compartmentType` compartment. */
export function compartmentMemberTypes(compartmentType: string): string[] {
  return [...(known().get(compartmentType)?.keys() ?? [])];
}
