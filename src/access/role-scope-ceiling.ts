import type { Role } from '../store/auth-store.ts';

/**
 * Role scope ceiling: the most a user of each role can be granted, whatever the app asks for and
 * was registered with. A patient acts only within a patient compartment (their own, bound at
 * launch); staff may also act as themselves across patients (user/), which the access engine's
 * role and relationship rules narrow further. Backend services hold system/ scopes through their
 * client registration (system/ scopes in a user's token are refused by the scope rule anyway).
 */
const ceilings: Record<Role, string> = {
  patient: 'patient/*.cruds',
  nurse: 'patient/*.cruds user/*.cruds',
  physician: 'patient/*.cruds user/*.cruds',
  'lab-technician': 'patient/*.cruds user/*.cruds',
  billing: 'patient/*.cruds user/*.cruds',
  researcher: 'user/*.rs',
  // bastion/admin: the provisioning API (users, clients), for admins only.
  admin: 'user/*.cruds bastion/admin',
  // The audit trail and the provenance of records, nothing clinical (access/audit-trail-access.ts).
  auditor: 'user/AuditEvent.rs user/Provenance.rs',
  // For tokens of external issuers mapped to the system role (a backend service acting on its own).
  system: 'system/*.cruds',
};

/** Launch and identity scopes: granted to any user who is asked for them (and whose client may ask). */
const identityScopes = 'openid fhirUser profile launch launch/patient launch/encounter offline_access online_access';

export function roleScopeCeiling(role: Role): string {
  return `${ceilings[role]} ${identityScopes}`;
}
