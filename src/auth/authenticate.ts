import type { Principal } from './principal.ts';
import { FhirError } from '../fhir/outcome.ts';
import { InvalidTokenError, type TokenVerifier } from './access-token.ts';

export interface Credentials {
  authorization?: string;
  address: string;
  /** The request is for something served to anyone (the CapabilityStatement). */
  publicResource: boolean;
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
export function bearerAuthenticator(verifier: TokenVerifier, realm: string): Authenticator {
  return {
    authenticate({ authorization, address, publicResource }) {
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
      try {
        const verified = verifier.verify(token, address);
        return verified instanceof Promise ? verified.catch(refuse) : verified;
      } catch (err) {
        return refuse(err);
      }
    },
  };
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
