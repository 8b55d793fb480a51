import type { SearchConstraint, SearchCriterion } from './types.ts';
import { compartmentParams } from '../compartments.ts';
import type { Resource } from '../types.ts';
import { searchParam } from './params.ts';
import { evaluatorFor } from './evaluate.ts';
import { referenceValues, type ReferenceIndexValue } from './index-values.ts';

/**
 * The constraint that keeps a search inside the compartment of `compartmentType/id`
 * (http.html#vsearch, compartmentdefinition.html): a resource of one of `resourceTypes` is in it
 * when one of its type's membership parameters refers to the focal resource, and the focal
 * resource itself is in its own compartment. Each parameter counts only for the types whose
 * membership rule names it (Observation is in a Patient's compartment by subject or performer,
 * not by any other reference that happens to point at the patient).
 */
export function compartmentConstraint(compartmentType: string, id: string, resourceTypes: readonly string[]): SearchConstraint {
  const anyOf: SearchCriterion[] = [];
  for (const type of resourceTypes) {
    for (const code of compartmentParams(compartmentType, type)) {
      anyOf.push({ kind: 'for-types', code, resourceTypes: [type], criterion: { kind: 'reference', code, values: [{ type: compartmentType, id }] } });
    }
  }
  if (resourceTypes.includes(compartmentType)) {
    anyOf.push({ kind: 'for-types', code: '_id', resourceTypes: [compartmentType], criterion: { kind: 'token', code: '_id', negate: false, values: [{ code: id }] } });
  }
  return { anyOf };
}

/** The ids of the patients whose compartment `resource` is in (its own id for a Patient). */
export function compartmentPatients(resource: Resource): string[] {
  if (resource.resourceType === 'Patient') return resource.id ? [resource.id] : [];
  return compartmentReferences('Patient', resource).filter((r) => r.startsWith('Patient/')).map((r) => r.slice('Patient/'.length));
}

/**
 * The references by which `resource` would be in a `compartmentType` compartment (its type's
 * membership parameters), evaluated on the resource itself: `Type/id` for local references, the
 * reference text otherwise.
 */
export function compartmentReferences(compartmentType: string, resource: Resource): string[] {
  const out: string[] = [];
  for (const code of compartmentParams(compartmentType, resource.resourceType)) {
    const param = searchParam(resource.resourceType, code);
    if (!param) continue;
    const refs: ReferenceIndexValue[] = [];
    for (const value of evaluatorFor(resource.resourceType, param)(resource)) referenceValues(value, refs, []);
    for (const r of refs) {
      if ((r.type !== null && r.type !== compartmentType) || (r.id === null && r.ref === null)) continue;
      out.push(r.id !== null ? `${r.type}/${r.id}` : (r.ref ?? ''));
    }
  }
  return out;
}
