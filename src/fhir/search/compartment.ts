import type { SearchConstraint, SearchCriterion } from './types.ts';
import { compartmentParams } from '../compartments.ts';

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
