/**
 * What the authorization server keeps: users, registered clients, and the protocol state of the
 * OAuth/OIDC core (sessions, grants, codes, refresh tokens, replayed assertion ids). Apart from
 * the FHIR store: its own file (embedded) or tables (PostgreSQL), never FHIR resources.
 */
export interface UserRecord {
  id: string;
  username: string;
  role: Role;
  /** The user's FHIR resource (`Patient/1`, `Practitioner/7`), the `fhirUser` claim. */
  fhirUser?: string;
  /** scrypt parameters, salt and hash (src/auth/passwords.ts). */
  passwordHash?: string;
  /** Base32 TOTP secret once enrolled. */
  totpSecret?: string;
  /** SHA-256 of each unused recovery code. */
  recoveryCodes?: string[];
  /** The TOTP time step last accepted: a code is good once. */
  lastTotpStep?: number;
  /** Signed in with a generated one-time password: must choose their own before anything else. */
  mustChangePassword?: boolean;
  failedLogins: number;
  lockedUntil?: number;
  disabled: boolean;
  created: string;
}

export type Role = 'patient' | 'nurse' | 'physician' | 'lab-technician' | 'billing' | 'researcher' | 'admin' | 'auditor' | 'system';
export const roles: readonly Role[] = ['patient', 'nurse', 'physician', 'lab-technician', 'billing', 'researcher', 'admin', 'auditor', 'system'];

export interface ClientRecord {
  clientId: string;
  /** OAuth client metadata as oidc-provider reads it (redirect_uris, token_endpoint_auth_method, jwks, scope, ...). */
  metadata: Record<string, unknown>;
  created: string;
}

/** A protocol-state record of the OAuth core (model: Session, Grant, AuthorizationCode, RefreshToken, ReplayDetection, ...). */
export interface OAuthRecord {
  payload: Record<string, unknown>;
  /** Epoch seconds; past it the record no longer exists. */
  expiresAt?: number;
  consumed?: number;
}

/** A user name, user id or client id already taken. */
export class DuplicateError extends Error {}

export interface AuthStore {
  addUser(user: UserRecord): Promise<void>;
  updateUser(user: UserRecord): Promise<void>;
  userById(id: string): Promise<UserRecord | undefined>;
  userByName(username: string): Promise<UserRecord | undefined>;
  countUsers(): Promise<number>;

  addClient(client: ClientRecord): Promise<void>;
  client(clientId: string): Promise<ClientRecord | undefined>;

  oauthFind(model: string, id: string): Promise<OAuthRecord | undefined>;
  oauthFindBy(model: string, column: 'uid' | 'user_code', value: string): Promise<OAuthRecord | undefined>;
  oauthUpsert(model: string, id: string, payload: Record<string, unknown>, expiresIn: number | undefined): Promise<void>;
  /** Marks a record used; false when it already was (the caller decides what reuse means). */
  oauthConsume(model: string, id: string): Promise<boolean>;
  oauthDestroy(model: string, id: string): Promise<void>;
  oauthRevokeByGrantId(grantId: string): Promise<void>;
  /** Every live record of a model (for the few small models read whole at start, e.g. revocations). */
  oauthList(model: string): Promise<OAuthRecord[]>;
  /**
   * Calls `onChange(model)` when any process sharing the store (another node on the same
   * database) records a record of one of these models, or when it may have missed one (once as
   * it starts listening, for what was written before; after a lost connection); the returned
   * function stops it. Absent where one process alone serves the store.
   */
  watch?(models: readonly string[], onChange: (model: string) => void): Promise<() => Promise<void>>;
  /**
   * Runs `work` while no other process sharing the store runs work under the same key (a lock
   * across nodes). Absent where one process alone serves the store.
   */
  exclusively?<T>(key: string, work: () => Promise<T>): Promise<T>;

  close(): Promise<void>;
}
