import type { Principal } from '../auth/principal.ts';
import type { Interaction } from './interaction.ts';

/** The operation on Patient that gives the accounting of disclosures (HIPAA §164.528) from the audit trail. */
export const accountingOperation = 'accounting-of-disclosures';

/**
 * Audit trail readers: admins and auditors, and nobody else, search and read the audit trail
 * (AuditEvent), whatever a deployment's role table or a token's scopes say; a patient may have the
 * accounting of disclosures of their own record. Nobody writes the trail through the API: the
 * server alone appends to it (the router answers 405 to writes).
 */
export const auditTrailReaders: readonly string[] = ['admin', 'auditor'];

export function auditTrailRule(principal: Principal, interaction: Interaction): { permit: boolean; reason: string } {
  if (auditTrailReaders.includes(principal.role)) return { permit: true, reason: `the ${principal.role} role reads the audit trail` };
  const patient = interaction.compartment?.type === 'Patient' ? interaction.compartment.id : undefined;
  if (interaction.operation === accountingOperation && patient !== undefined && principal.role === 'patient' && ownPatient(principal) === patient) {
    return { permit: true, reason: 'a patient has the accounting of disclosures of their own record' };
  }
  return { permit: false, reason: `the audit trail is read by ${auditTrailReaders.join(' and ')} only` };
}

function ownPatient(principal: Principal): string | undefined {
  if (principal.patient) return principal.patient;
  return principal.fhirUser?.startsWith('Patient/') ? principal.fhirUser.slice('Patient/'.length) : undefined;
}
