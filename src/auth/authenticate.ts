import type { Principal } from './principal.ts';
import { FhirError } from '../fhir/outcome.ts';
import { InvalidTokenError, type TokenVerifier } from './access-token.ts';
import { breakGlassRefusal, type BreakGlassRequest } from '../access/break-glass.ts';

export interface Credentials {
  authorization?: string;
  address: string;
  /** The request is for something served to anyone (the CapabilityStatement). */
  publicResource: boolean;
  /** Emergency access asked for with this request (X-Break-Glass-Patient and X-Break-Glass-Reason). */
  breakGlass?: BreakGlassRequest;
  /** The SHA-256 thumbprint (base64url) of the client certificate this connection presented, if any. */
  certificateThumbprint?: () => string | undefined;
}

/** Emergency access: who holds it now, and how a request for it is granted (recorded, alerted). */
export interface BreakGlassGate {
  patientsOf(user: string): readonly string[] | undefined;
  grant(principal: Principal, request: BreakGlassRequest): Promise<void>;
  /** A request for it that is refused (recorded as well). */
  refused?(principal: Principal, request: BreakGlassRequest, refusal: string): void;
}

/** Decides who is asking from the request's credentials, before anything else happens. */
export interface Authenticator {
  authenticate(credentials: Credentials): Promise<Principal> | Principal;
}

/**
 * auth=off: there are no tokens to check; the server only listens on loopback (see
 * config/assertLoopback) and every caller is the local principal.
 */
export const localAuthenticator: Authenticator = {
  authenticate: ({ address }) => ({ kind: 'anonymous-local', id: 'local', role: 'local', scopes: ['system/*.*'], address }),
};

/** The operator at the console (bastion import, reindex): has the data dir and its keys already. */
export function consolePrincipal(): Principal {
  return { kind: 'anonymous-local', id: 'local-cli', role: 'local', scopes: ['system/*.*'], address: 'local-cli' };
}

/**
 * auth=smart: a Bearer access token on every request (RFC 6750), except for public resources
 * asked for without one. A missing or bad token is a 401 with a WWW-Authenticate challenge.
 */
export function bearerAuthenticator(verifier: TokenVerifier, realm: string, breakGlass?: BreakGlassGate): Authenticator {
  const withEmergencyAccess = (principal: Principal, credentials: Credentials): Principal | Promise<Principal> => {
    const asked = credentials.breakGlass;
    assertPresentedCertificate(principal, credentials, realm);
    if (!breakGlass) return principal;
    // A token stating purpose of use BTG asks once: while its access lasts, requests just use it.
    const claimed = principal.breakGlassClaim;
    const request = asked ?? (claimed && !breakGlass.patientsOf(principal.id)?.includes(claimed.patient) ? claimed : undefined);
    if (request) {
      const refusal = breakGlassRefusal(principal, request);
      if (refusal) {
        breakGlass.refused?.(principal, request, refusal);
        throw new FhirError(403, refusal, 'forbidden');
      }
      return breakGlass.grant(principal, request).then(() => ({ ...principal, breakGlass: breakGlass.patientsOf(principal.id) ?? [] }));
    }
    const patients = breakGlass.patientsOf(principal.id);
    return patients ? { ...principal, breakGlass: patients } : principal;
  };
  return {
    authenticate(credentials) {
      const { authorization, address, publicResource } = credentials;
      if (authorization === undefined || authorization === '') {
        if (publicResource) return { kind: 'anonymous', id: 'anonymous', role: 'anonymous', scopes: [], address };
        throw unauthorized(realm, 'This request needs a Bearer access token');
      }
      const token = bearerToken(authorization);
      if (token === undefined) throw unauthorized(realm, 'The Authorization header must be "Bearer <access token>"', 'invalid_request');
      const refuse = (err: unknown): never => {
        if (err instanceof InvalidTokenError) throw unauthorized(realm, err.message, 'invalid_token');
        throw err;
      };
      let verified: Principal | Promise<Principal>;
      try {
        verified = verifier.verify(token, address);
      } catch (err) {
        return refuse(err);
      }
      return verified instanceof Promise ? verified.catch(refuse).then((p) => withEmergencyAccess(p, credentials)) : withEmergencyAccess(verified, credentials);
    },
  };
}

/**
 * RFC 8705 3: a certificate-bound access token is honoured only on a connection that presented that
 * same certificate, so a stolen token is useless without the client's private key.
 */
function assertPresentedCertificate(principal: Principal, credentials: Credentials, realm: string): void {
  if (principal.certificateBound === undefined) return;
  const presented = credentials.certificateThumbprint?.();
  if (presented !== principal.certificateBound) {
    throw unauthorized(realm, presented === undefined
      ? 'The access token is bound to a client certificate, and this connection presented none'
      : 'The access token is bound to another client certificate than the one this connection presented', 'invalid_token');
  }
}

/** The token of `Bearer <token>` (RFC 6750 2.1: the scheme is case-insensitive); its characters are checked when it is verified. */
function bearerToken(authorization: string): string | undefined {
  if (authorization.length < 8 || authorization.charCodeAt(6) !== 32 || authorization.slice(0, 6).toLowerCase() !== 'bearer') return undefined;
  const token = authorization.slice(7).trim();
  return token === '' ? undefined : token;
}

function unauthorized(realm: string, message: string, error?: 'invalid_request' | 'invalid_token'): FhirError {
  const challenge = error ? `Bearer realm="${realm}", error="${error}", error_description="${message.replace(/"/g, "'")}"` : `Bearer realm="${realm}"`;
  return new FhirError(401, message, 'login', { 'www-authenticate': challenge });
}
