import type { AuditRecordFacts } from '../audit/audit-record.ts';

/**
 * Every authentication and authorization-server event goes through `emit` (one place, so none is
 * forgotten): sign-ins and their failures, second factors, lockouts, enrolment, approvals and
 * refusals, tokens issued, refresh reuse, revocations, launches created. Each becomes an audit
 * record; nothing here carries a password, code or token.
 */
export type AuthEventKind =
  | 'login' | 'login-failed' | 'locked-out' | 'mfa-failed' | 'mfa-enrolled' | 'recovery-code-used' | 'password-changed' | 'user-created' | 'client-registered'
  | 'consent' | 'consent-denied' | 'authorization-refused' | 'token' | 'token-failed' | 'grant-revoked' | 'token-revoked' | 'launch-created' | 'patient-search' | 'break-glass' | 'logout';

export interface AuthEvent {
  kind: AuthEventKind;
  /** The user (id) or, without one, the username tried or the client id. */
  who: string;
  address: string;
  client?: string;
  success: boolean;
  detail?: string;
}

export type AuthEventSink = (facts: AuditRecordFacts) => void;

export function authEventEmitter(sink: AuthEventSink): (event: AuthEvent) => void {
  return (event) => sink({
    at: new Date().toISOString(),
    do: 'authn',
    ev: event.kind,
    st: event.success ? 200 : 401,
    who: event.who,
    ip: event.address,
    ...(event.client ? { app: event.client } : {}),
    ...(event.detail ? { why: event.detail } : {}),
  });
}
