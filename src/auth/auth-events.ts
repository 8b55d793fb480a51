import { randomUUID } from 'node:crypto';
import type { AuditRecordFacts } from '../audit/audit-record.ts';
import type { AuthStore } from '../store/auth-store.ts';

/**
 * Every authentication, authorization-server and administrative event goes through `emit` (one
 * place, so none is forgotten): sign-ins and their failures, second factors, lockouts, enrolment,
 * approvals and refusals, tokens issued and refreshed, code and refresh token reuse, client
 * authentication failures, introspections and revocations, launches created, sign-outs, sessions
 * expired, break-the-glass, users, clients and keys created. Each becomes an audit record; nothing
 * here carries a password, code, secret, assertion or token: references only.
 */
export type AuthEventKind =
  // sign-in and sessions
  | 'login' | 'login-failed' | 'locked-out' | 'mfa-verified' | 'mfa-failed' | 'mfa-enrolled' | 'recovery-code-used' | 'password-changed'
  | 'logout' | 'session-expired'
  // authorization
  | 'consent' | 'consent-denied' | 'authorization-refused' | 'launch-created' | 'patient-search' | 'break-glass' | 'break-glass-refused'
  // tokens
  | 'token' | 'token-refreshed' | 'token-failed' | 'token-reuse' | 'client-auth-failed' | 'token-introspected' | 'token-revoked' | 'grant-revoked'
  | 'token-rejected'
  // administration
  | 'user-created' | 'client-registered' | 'key-created' | 'config-loaded'
  // keys (envelope encryption)
  | 'keys-unwrapped' | 'key-rotated' | 'keys-rewrapped' | 'store-rekeyed' | 'reencrypted' | 'key-retired'
  // backups, and the move of an embedded deployment to PostgreSQL (`bastion migrate`)
  | 'backup' | 'restore' | 'migrated';

export interface AuthEvent {
  kind: AuthEventKind;
  /** The user (id) or, without one, the username tried or the client id; `console` for the CLI, `system` for the server itself. */
  who: string;
  address: string;
  /** The client application involved (for an admin action: the app the admin acted through). */
  client?: string;
  success: boolean;
  /** References and outcomes (`user=<id> role=nurse`), never content or secrets. */
  detail?: string;
  /** Access-decision reasons the event stands for (`break-the-glass`: rendered as purpose of use BTG). */
  reasons?: string[];
}

export type AuthEventSink = (facts: AuditRecordFacts) => void;

export function authEventFacts(event: AuthEvent, at = new Date().toISOString()): AuditRecordFacts {
  return {
    at,
    do: 'authn',
    ev: event.kind,
    st: event.success ? 200 : 401,
    who: event.who,
    ip: event.address,
    ...(event.client ? { app: event.client } : {}),
    ...(event.detail ? { why: event.detail } : {}),
    ...(event.reasons && event.reasons.length > 0 ? { rs: event.reasons } : {}),
    ...patientOf(event.detail),
  };
}

/** The patient an event names (`patient=Patient/<id>`), so the trail finds it by patient. */
function patientOf(detail: string | undefined): { pt?: string[] } {
  const m = detail ? /(?:^|\s)patient=Patient\/([A-Za-z0-9\-.]{1,64})(?=\s|$)/.exec(detail) : null;
  return m ? { pt: [m[1]] } : {};
}

export function authEventEmitter(sink: AuthEventSink): (event: AuthEvent) => void {
  return (event) => sink(authEventFacts(event));
}

/** What an admin or the console created: references and settings, never the password or TOTP secret. */
export function userCreatedDetail(user: { id: string; role: string; fhirUser?: string; totpSecret?: string }, generatedPassword: boolean): string {
  return [`user=${user.id}`, `role=${user.role}`, ...(user.fhirUser ? [`fhirUser=${user.fhirUser}`] : []),
    generatedPassword ? 'password=one-time' : 'password=set', ...(user.totpSecret ? ['totp=provisioned'] : [])].join(' ');
}

/** A client registered: its id, type and registered scopes, never its secret. */
export function clientRegisteredDetail(clientId: string, type: string, scope: string): string {
  return `client=${clientId} type=${type} scope=${scope}`;
}

/** Who the console (bastion users / clients) is in the audit trail, and where it acts from. */
export const consoleActor = { who: 'console', address: 'local-cli' } as const;

/**
 * Audit records the console made while the server ran: the trail has one writer (the server), so
 * the console leaves them in the auth store, which both may write, and the server appends them
 * (`takeHandedOver`) within seconds.
 */
const handOverModel = 'AuditHandOver';

export async function handOver(store: AuthStore, facts: AuditRecordFacts): Promise<void> {
  const id = randomUUID();
  await store.oauthUpsert(handOverModel, id, { id, facts: facts as unknown as Record<string, unknown> }, undefined);
}

/** The records handed over, oldest first; `done` removes them once they are in the trail. */
export async function takeHandedOver(store: AuthStore): Promise<{ facts: AuditRecordFacts[]; done: () => Promise<void> }> {
  const held = (await store.oauthList(handOverModel))
    .map((r) => r.payload as { id?: unknown; facts?: AuditRecordFacts })
    .filter((p): p is { id: string; facts: AuditRecordFacts } => typeof p.id === 'string' && p.facts?.do === 'authn' && typeof p.facts.at === 'string')
    .sort((a, b) => (a.facts.at < b.facts.at ? -1 : a.facts.at > b.facts.at ? 1 : 0));
  return {
    facts: held.map((p) => p.facts),
    done: async () => {
      for (const p of held) await store.oauthDestroy(handOverModel, p.id);
    },
  };
}
