import type { Principal } from '../auth/principal.ts';

/**
 * Relationship rule: a clinician reaches a patient's record only through a care relationship,
 * each kind switchable by the deployment:
 *   care-team             an active CareTeam of the patient lists them as a participant
 *   encounter             they participate in an Encounter of the patient
 *   general-practitioner  they are the patient's generalPractitioner
 * It is an obligation, turned into constraints in the query (src/rest/confinement.ts), so
 * searches, counts and includes see only the related patients' records.
 */
export type RelationshipKind = 'care-team' | 'encounter' | 'general-practitioner';
export const relationshipKinds: readonly RelationshipKind[] = ['care-team', 'encounter', 'general-practitioner'];

/** Roles that act on patients' records as clinicians, and so need a relationship. */
export const clinicalRoles: readonly string[] = ['physician', 'nurse', 'lab-technician'];

export interface RelationshipObligation {
  /** The clinician, as a reference (`Practitioner/7`); undefined: the user has none, so no patient is reachable. */
  practitioner?: string;
  kinds: RelationshipKind[];
}

let enabled: RelationshipKind[] = [...relationshipKinds];

/** The deployment's choice of relationship kinds (config relationships). */
export function configureRelationships(kinds: RelationshipKind[]): void {
  enabled = [...kinds];
}

export function relationshipObligation(principal: Principal): RelationshipObligation | undefined {
  if (principal.kind !== 'user' || !clinicalRoles.includes(principal.role)) return undefined;
  const practitioner = principal.fhirUser && /^(Practitioner|PractitionerRole)\/[A-Za-z0-9\-.]{1,64}$/.test(localPart(principal.fhirUser)) ? localPart(principal.fhirUser) : undefined;
  return { ...(practitioner ? { practitioner } : {}), kinds: enabled };
}

/** `Practitioner/7` from `https://server/fhir/Practitioner/7` or `Practitioner/7`. */
function localPart(ref: string): string {
  const m = /([A-Za-z]+\/[A-Za-z0-9\-.]{1,64})$/.exec(ref);
  return m ? m[1] : ref;
}
