import type { ResourceScope } from '../access/smart-scopes.ts';
import type { Role } from '../store/auth-store.ts';

/** Who is asking. Every request carries one, decided before anything else happens. */
export interface Principal {
  /**
   * user: a person through an app; client: a backend service on its own behalf; anonymous: no
   * token, for public resources only; anonymous-local: no token, loopback-only development mode.
   */
  kind: 'user' | 'client' | 'anonymous' | 'anonymous-local';
  /** A stable identifier for the audit trail (the token's subject: user id or client id). */
  id: string;
  role: Role | 'local' | 'anonymous';
  /** Granted scopes as written. */
  scopes: string[];
  /** The resource scopes among them, parsed (absent for the local principal, which may do everything). */
  resourceScopes?: ResourceScope[];
  /** The app acting, when there is one. */
  clientId?: string;
  /** The token's issuer (this server or a trusted external one). */
  issuer?: string;
  /** The access token's id, for revocation and the audit. */
  tokenId?: string;
  /** The authorization (grant) the token came from: revoking it revokes the token. */
  grantId?: string;
  /** Launch context: the patient in context (`patient/` scopes are confined to its compartment). */
  patient?: string;
  encounter?: string;
  /** The user's own FHIR resource, e.g. `Practitioner/7`. */
  fhirUser?: string;
  /** Purposes of use the token states (`system|code`, e.g. v3-ActReason BTG), beyond what the role implies. */
  purposeOfUse?: string[];
  /** Break-the-glass asked for by the token itself (purpose of use BTG with a patient and a reason). */
  breakGlassClaim?: { patient: string; reason: string };
  /** Patients this user holds break-the-glass access to, now (see access/break-glass.ts). */
  breakGlass?: readonly string[];
  /** The network address the request came from. */
  address: string;
  /** RFC 8705: the token is bound to the client certificate with this SHA-256 thumbprint (`cnf.x5t#S256`). */
  certificateBound?: string;
}
