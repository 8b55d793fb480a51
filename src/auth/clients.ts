import { randomBytes, randomUUID, X509Certificate } from 'node:crypto';
import type { AuthStore } from '../store/auth-store.ts';
import { parseScopes } from '../access/smart-scopes.ts';

/**
 * The registry of client applications. public: a browser or native app (PKCE, no secret);
 * confidential: a server-side app with a client secret (client_secret_basic or _post);
 * backend: a service with no user (client_credentials, private_key_jwt with its JWKS).
 */
export type ClientType = 'public' | 'confidential' | 'backend';

export interface ClientRegistration {
  name: string;
  type: ClientType;
  redirectUris?: string[];
  /** The client's public keys (backend), inline... */
  jwks?: { keys: Record<string, unknown>[] };
  /** ...or where to fetch them. */
  jwksUri?: string;
  /** The most this client may be granted, as SMART scopes. */
  scope: string;
  /** For confidential clients: how they send their secret. */
  secretMethod?: 'client_secret_basic' | 'client_secret_post';
  /** Backend clients authenticating with a CA-issued client certificate (RFC 8705 tls_client_auth): its subject DN. */
  tlsSubjectDn?: string;
  /** Backend clients authenticating with a self-signed client certificate (RFC 8705 self_signed_tls_client_auth): its PEM. */
  certificate?: string;
  /** Access tokens bound to the client certificate (RFC 8705 3); on by default for certificate-authenticated clients. */
  certificateBound?: boolean;
  clientId?: string;
}

export class ClientRegistrationError extends Error {}

/** Launch and identity scopes any user-facing client may ask for besides its resource scopes. */
const userFacingScopes = ['openid', 'fhirUser', 'profile', 'launch', 'launch/patient', 'launch/encounter', 'offline_access', 'online_access', 'bastion/admin'];

export async function registerClient(store: AuthStore, reg: ClientRegistration): Promise<{ clientId: string; clientSecret?: string }> {
  if (!reg.name.trim()) throw new ClientRegistrationError('A client needs a name');
  const scopes = parseScopes(reg.scope);
  const unknown = scopes.other.filter((s) => !userFacingScopes.includes(s));
  if (unknown.length > 0) throw new ClientRegistrationError(`Not SMART scopes: ${unknown.join(' ')}`);
  if (scopes.resource.length === 0 && !scopes.other.includes('bastion/admin')) throw new ClientRegistrationError('A client needs at least one resource scope (e.g. patient/*.rs)');
  const redirectUris = reg.redirectUris ?? [];
  for (const uri of redirectUris) {
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      throw new ClientRegistrationError(`Not a redirect URI: ${uri}`);
    }
    if (url.hash) throw new ClientRegistrationError(`A redirect URI may not have a fragment: ${uri}`);
  }
  const clientId = reg.clientId ?? randomUUID();
  const metadata: Record<string, unknown> = { client_id: clientId, client_name: reg.name, smart_scope: reg.scope };
  let clientSecret: string | undefined;
  switch (reg.type) {
    case 'public':
    case 'confidential':
      if (redirectUris.length === 0) throw new ClientRegistrationError(`A ${reg.type} client needs at least one redirect URI`);
      if (scopes.resource.some((s) => s.context === 'system')) throw new ClientRegistrationError('system/ scopes are for backend clients');
      Object.assign(metadata, { redirect_uris: redirectUris, grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'] });
      if (reg.type === 'public') metadata.token_endpoint_auth_method = 'none';
      else {
        clientSecret = randomBytes(32).toString('base64url');
        Object.assign(metadata, { token_endpoint_auth_method: reg.secretMethod ?? 'client_secret_basic', client_secret: clientSecret });
      }
      break;
    case 'backend':
      if ([reg.jwks, reg.jwksUri, reg.tlsSubjectDn, reg.certificate].filter((v) => v !== undefined).length !== 1) {
        throw new ClientRegistrationError('A backend client needs one way to authenticate: a JWKS, a JWKS URL, a certificate subject DN or a self-signed certificate');
      }
      if (scopes.resource.some((s) => s.context !== 'system')) throw new ClientRegistrationError('A backend client acts on its own: system/ scopes only');
      Object.assign(metadata, { grant_types: ['client_credentials'], response_types: [], redirect_uris: [], ...backendAuthentication(reg) });
      break;
    default:
      throw new ClientRegistrationError(`Client type must be public, confidential or backend, not '${reg.type as string}'`);
  }
  await store.addClient({ clientId, metadata, created: new Date().toISOString() });
  return { clientId, ...(clientSecret ? { clientSecret } : {}) };
}

/** How a backend client proves who it is: a signed JWT (private_key_jwt) or its TLS client certificate (RFC 8705). */
function backendAuthentication(reg: ClientRegistration): Record<string, unknown> {
  const bound = (byDefault: boolean) => ((reg.certificateBound ?? byDefault) ? { tls_client_certificate_bound_access_tokens: true } : {});
  if (reg.tlsSubjectDn !== undefined) {
    if (!/^\s*[A-Za-z][\w.-]*\s*=/.test(reg.tlsSubjectDn)) throw new ClientRegistrationError('The certificate subject must be a distinguished name such as "CN=lab-feed,O=Example Lab"');
    return { token_endpoint_auth_method: 'tls_client_auth', tls_client_auth_subject_dn: reg.tlsSubjectDn.trim(), ...bound(true) };
  }
  if (reg.certificate !== undefined) {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(reg.certificate);
    } catch {
      throw new ClientRegistrationError('The client certificate must be one PEM certificate');
    }
    if (cert.ca) throw new ClientRegistrationError('The client certificate must be the client\'s own, not a CA certificate');
    const jwk = { ...cert.publicKey.export({ format: 'jwk' }), use: 'sig', x5c: [cert.raw.toString('base64')] };
    return { token_endpoint_auth_method: 'self_signed_tls_client_auth', jwks: { keys: [jwk] }, ...bound(true) };
  }
  if (reg.jwksUri && !/^https?:\/\//.test(reg.jwksUri)) throw new ClientRegistrationError('The JWKS URL must be http(s)');
  if (reg.jwks && (!Array.isArray(reg.jwks.keys) || reg.jwks.keys.length === 0 || reg.jwks.keys.some((k) => 'd' in k))) {
    throw new ClientRegistrationError('The JWKS must hold public keys only');
  }
  return { token_endpoint_auth_method: 'private_key_jwt', ...(reg.jwks ? { jwks: reg.jwks } : { jwks_uri: reg.jwksUri }), ...bound(false) };
}

/** The scopes a client was registered with. */
export function clientScope(metadata: { smart_scope?: unknown }): string {
  return typeof metadata.smart_scope === 'string' ? metadata.smart_scope : '';
}
