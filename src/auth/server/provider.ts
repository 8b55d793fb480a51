import Provider, { errors, interactionPolicy, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import { decodeJwt, type JWK } from 'jose';
import type { TLSSocket } from 'node:tls';
import { acceptsClientCertificates, type Config } from '../../config/config.ts';
import { certificateSubjectMatches, presentedCertificate } from '../client-certificate.ts';
import type { AuthStore } from '../../store/auth-store.ts';
import { narrowScopes, parseScopes } from '../../access/smart-scopes.ts';
import { clientScope } from '../clients.ts';
import { adapterFactory } from './oauth-adapter.ts';
import { ehrLaunchModel, launchContextOf } from './launch-context.ts';
import type { Revocations } from '../revocations.ts';
import type { AuthEvent } from '../auth-events.ts';

/** Bastion's own scope for the provisioning API: only admins can be granted it, only through clients registered for it. */
export const adminScope = 'bastion/admin';

/** OpenID Connect and SMART launch scopes: everything not a resource scope that a client may ask for. */
export const launchScopes = ['openid', 'fhirUser', 'profile', 'offline_access', 'online_access', 'launch', 'launch/patient', 'launch/encounter', adminScope];

export interface ProviderDeps {
  config: Config;
  store: AuthStore;
  signingJwks: { keys: JWK[] };
  /** Secret the session cookies are signed with (the `cookie` data key). */
  cookieSecret: Buffer;
  revocations: Revocations;
  emit: (event: AuthEvent) => void;
}

/**
 * oidc-provider, configured as a SMART on FHIR authorization server: authorization code with
 * PKCE (S256, required for public clients), refresh tokens rotated on each use with reuse
 * detection, client_credentials with private_key_jwt for backend services, introspection and
 * revocation; access tokens are JWTs for the FHIR base URL carrying the SMART launch context.
 */
export function createProvider({ config, store, signingJwks, cookieSecret, revocations, emit }: ProviderDeps): Provider {
  const fhirBase = () => config.baseUrl;
  // Client certificates reach the server only over its own TLS (a proxy terminates them).
  const mtls = acceptsClientCertificates(config);
  const configuration: Configuration = {
    adapter: adapterFactory(store, (grantId) => void revocations.revokeGrant(grantId).catch(() => undefined)),
    jwks: { keys: signingJwks.keys as NonNullable<Configuration['jwks']>['keys'] },
    routes: { authorization: '/authorize' },
    responseTypes: ['code'],
    scopes: launchScopes,
    claims: { fhirUser: ['fhirUser'], profile: ['preferred_username'] },
    extraClientMetadata: {
      properties: ['smart_scope'],
      validator(_ctx, key, value) {
        if (key === 'smart_scope' && value !== undefined && typeof value !== 'string') throw new errors.InvalidClientMetadata('smart_scope must be a string');
      },
    },
    extraParams: {
      aud(_ctx, value) {
        if (value === undefined) throw new errors.InvalidRequest('aud is required: the FHIR base URL the app wants to access');
        if (String(value).replace(/\/+$/, '') !== fhirBase()) throw new errors.InvalidRequest(`aud must be this server's FHIR base URL (${fhirBase()})`);
      },
      async launch(_ctx, value) {
        if (value === undefined) return;
        if (!(await store.oauthFind(ehrLaunchModel, String(value)))) throw new errors.InvalidRequest('launch is not a launch this server created, or it has expired');
      },
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true, allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId },
      revocation: { enabled: true, allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId },
      userinfo: { enabled: false },
      mTLS: {
        enabled: mtls,
        certificateBoundAccessTokens: mtls,
        tlsClientAuth: mtls,
        selfSignedTlsClientAuth: mtls,
        getCertificate: (ctx) => presentedCertificate(ctx.req.socket),
        // A tls_client_auth certificate must chain to the configured client CAs (the configuration requires
        // them, so Node never falls back to the public web roots); self-signed ones are matched by thumbprint.
        certificateAuthorized: (ctx) => (ctx.req.socket as TLSSocket).authorized === true,
        certificateSubjectMatches: (ctx, property, expected) => {
          const cert = presentedCertificate(ctx.req.socket);
          return cert !== undefined && certificateSubjectMatches(cert, property, expected);
        },
      },
      rpInitiatedLogout: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => fhirBase(),
        useGrantedResource: () => true,
        getResourceServerInfo: async (ctx, indicator, client) => {
          if (indicator.replace(/\/+$/, '') !== fhirBase()) throw new errors.InvalidTarget('The only resource served here is the FHIR base URL');
          return { scope: grantableScope(ctx, client), audience: fhirBase(), accessTokenFormat: 'jwt', accessTokenTTL: config.auth.accessTokenTtl, jwt: { sign: { alg: 'ES256' } } };
        },
      },
    },
    clientAuthMethods: ['none', 'client_secret_basic', 'client_secret_post', 'private_key_jwt', ...(mtls ? ['tls_client_auth', 'self_signed_tls_client_auth'] as const : [])],
    enabledJWA: { clientAuthSigningAlgValues: ['RS384', 'ES384', 'RS256', 'ES256'] },
    async assertJwtClientAuthClaimsAndHeader(_ctx, claims) {
      // SMART Backend Services: an assertion lives at most five minutes.
      if (typeof claims.exp !== 'number' || claims.exp - Math.floor(Date.now() / 1000) > 300) {
        throw new errors.InvalidClientAuth('client assertion exp must be no more than 5 minutes in the future');
      }
    },
    pkce: { required: (_ctx, client) => client.clientAuthMethod === 'none' },
    ttl: {
      AccessToken: config.auth.accessTokenTtl,
      ClientCredentials: config.auth.accessTokenTtl,
      AuthorizationCode: 60,
      IdToken: 3600,
      RefreshToken: config.auth.refreshTokenTtl,
      Grant: config.auth.refreshTokenTtl,
      Interaction: 3600,
      // Saved again on every use, so this is an idle timeout, capped by the absolute lifetime.
      Session: (_ctx, session) => {
        const age = Math.floor(Date.now() / 1000) - ((session as { loginTs?: number }).loginTs ?? Math.floor(Date.now() / 1000));
        return Math.max(1, Math.min(config.auth.sessionIdle, config.auth.sessionMax - age));
      },
    },
    rotateRefreshToken: true,
    issueRefreshToken: async (_ctx, client, code) =>
      client.grantTypeAllowed('refresh_token') && (code.scopes.has('offline_access') || code.scopes.has('online_access')),
    async extraTokenClaims(_ctx, token) {
      if (token.kind === 'ClientCredentials') return { role: 'system' };
      const accountId = (token as { accountId?: string }).accountId;
      const user = accountId ? await store.userById(accountId) : undefined;
      if (!user) return undefined;
      const grantId = (token as { grantId?: string }).grantId;
      const launch = await launchContextOf(store, grantId);
      return {
        role: user.role,
        ...(user.fhirUser ? { fhirUser: user.fhirUser } : {}),
        ...(launch?.patient ? { patient: launch.patient } : {}),
        ...(launch?.encounter ? { encounter: launch.encounter } : {}),
        ...(grantId ? { grant_id: grantId } : {}),
      };
    },
    async loadExistingGrant(ctx) {
      // Each authorization gets its own grant (and launch context): nothing is silently re-approved.
      const grantId = ctx.oidc.result?.consent?.grantId;
      return grantId ? ctx.oidc.provider.Grant.find(grantId) : undefined;
    },
    async findAccount(_ctx, sub) {
      const user = await store.userById(sub);
      if (!user || user.disabled) return undefined;
      return {
        accountId: user.id,
        claims: async () => ({
          sub: user.id,
          preferred_username: user.username,
          ...(user.fhirUser ? { fhirUser: `${fhirBase()}/${user.fhirUser}` } : {}),
        }),
      };
    },
    interactions: { url: (_ctx, interaction) => `${new URL(config.auth.issuer).pathname}/interaction/${interaction.uid}`, policy: sessionPolicy(config.auth.sessionMax) },
    cookies: {
      keys: [cookieSecret.toString('base64url')],
      long: { signed: true, httpOnly: true, sameSite: 'lax' },
      short: { signed: true, httpOnly: true, sameSite: 'lax' },
    },
    clientBasedCORS: (_ctx, origin, client) => client.redirectUris?.some((u) => new URL(u).origin === origin) ?? false,
    renderError: (ctx, out) => {
      ctx.type = 'html';
      ctx.body = errorPage(String(out.error ?? 'error'), String(out.error_description ?? ''));
    },
    conformIdTokenClaims: false,
  };
  const provider = new Provider(config.auth.issuer, configuration);
  provider.on('grant.revoked', (ctx: KoaContextWithOIDC, grantId: string) => {
    // A failure to record it must not take the process down; the grant itself is gone either way.
    revocations.revokeGrant(grantId).catch(() => emit({ kind: 'grant-revoked', who: 'unknown', address: ctx.ip, success: false, detail: 'revocation not recorded' }));
    // By reuse detection (token), revocation of a refresh token (revocation), or sign-out (end_session_confirm).
    emit({ kind: 'grant-revoked', who: userOf(ctx) ?? ctx.oidc?.client?.clientId ?? 'unknown', address: ctx.ip, client: ctx.oidc?.client?.clientId, success: true, detail: `${ctx.oidc?.route ?? ''} grant=${grantId}`.trim() });
  });
  provider.on('grant.success', (ctx: KoaContextWithOIDC) => {
    const grantType = String(ctx.oidc.params?.grant_type ?? '');
    const who = userOf(ctx) ?? ctx.oidc.entities.AuthorizationCode?.accountId ?? ctx.oidc.client?.clientId ?? 'unknown';
    const grant = ctx.oidc.entities.Grant?.jti;
    emit({ kind: grantType === 'refresh_token' ? 'token-refreshed' : 'token', who, address: ctx.ip, client: ctx.oidc.client?.clientId, success: true, detail: `${grantType}${grant ? ` grant=${grant}` : ''}` });
  });
  provider.on('grant.error', (ctx: KoaContextWithOIDC, err: OidcError) => {
    const grantType = String(ctx.oidc?.params?.grant_type ?? '');
    if (err.error === 'invalid_client') return emit(clientAuthFailure(ctx, err));
    // oidc-provider revokes the grant when a code or (rotated) refresh token comes back, and so does the adapter on a concurrent redemption.
    const reuse = err.error === 'invalid_grant' && /already (used|consumed)/i.test(err.error_detail ?? '');
    emit({
      kind: reuse ? 'token-reuse' : 'token-failed', who: userOf(ctx) ?? ctx.oidc?.client?.clientId ?? String(ctx.oidc?.params?.client_id ?? 'unknown'), address: ctx.ip, client: ctx.oidc?.client?.clientId, success: false,
      detail: reuse ? `${grantType} ${err.error_detail}: grant revoked` : `${grantType} ${err.error ?? ''} ${err.error_detail ?? ''}`.trim(),
    });
  });
  const introspectionOrRevocationError = (ctx: KoaContextWithOIDC, err: OidcError) => {
    // This server's JWT access tokens are introspected and revoked by smart-middleware.ts after this refusal.
    if (err.error === 'unsupported_token_type') return;
    if (err.error === 'invalid_client') return emit(clientAuthFailure(ctx, err));
    emit({ kind: 'token-failed', who: ctx.oidc?.client?.clientId ?? 'unknown', address: ctx.ip, client: ctx.oidc?.client?.clientId, success: false, detail: `${ctx.oidc?.route ?? ''} ${err.error ?? ''} ${err.error_detail ?? ''}`.trim() });
  };
  provider.on('introspection.error', introspectionOrRevocationError);
  provider.on('revocation.error', introspectionOrRevocationError);
  provider.on('authorization.error', (ctx: KoaContextWithOIDC, err: { error?: string; error_description?: string }) => {
    emit({ kind: 'authorization-refused', who: ctx.oidc?.client?.clientId ?? 'unknown', address: ctx.ip, client: ctx.oidc?.client?.clientId, success: false, detail: `${err.error ?? ''} ${err.error_description ?? ''}`.trim() });
  });
  provider.on('end_session.success', (ctx: KoaContextWithOIDC) => {
    // The whole session (logout=yes), or only the app that asked (its grant revoked); with neither, nothing ended.
    const accountId = ctx.oidc?.session?.accountId;
    const client = ctx.oidc?.client?.clientId;
    const whole = Boolean(ctx.oidc?.params?.logout);
    if (!accountId || (!whole && !client)) return;
    emit({ kind: 'logout', who: accountId, address: ctx.ip, client, success: true, detail: whole ? 'session ended' : 'signed out of this app only' });
  });
  return provider;
}

interface OidcError { error?: string; error_detail?: string }

/** The user a token endpoint, revocation or sign-out event concerns, when there is one. */
function userOf(ctx: KoaContextWithOIDC): string | undefined {
  const e = ctx.oidc?.entities;
  return e?.Account?.accountId ?? e?.RefreshToken?.accountId ?? e?.AccessToken?.accountId ?? ctx.oidc?.session?.accountId ?? undefined;
}

/**
 * A failed client authentication (bad secret, bad or replayed assertion, unknown client): the
 * client by its id only, never the secret or assertion. An id no registered client has is
 * recorded as claimed, and names no app.
 */
function clientAuthFailure(ctx: KoaContextWithOIDC, err: OidcError): AuthEvent {
  const known = ctx.oidc?.client?.clientId;
  return {
    kind: 'client-auth-failed', who: known ?? `unknown-client:${claimedClientId(ctx)}`, address: ctx.ip, ...(known ? { client: known } : {}), success: false,
    detail: `${ctx.oidc?.route ?? ''} ${err.error_detail ?? err.error ?? ''}`.trim(),
  };
}

function claimedClientId(ctx: KoaContextWithOIDC): string {
  const params = (ctx.oidc?.params ?? {}) as Record<string, unknown>;
  if (typeof params.client_id === 'string') return clip(params.client_id);
  const basic = /^basic\s+(\S+)$/i.exec(ctx.get('authorization') ?? '');
  if (basic) {
    // client_id:client_secret: only what comes before the colon.
    const pair = Buffer.from(basic[1], 'base64').toString('utf8');
    const colon = pair.indexOf(':');
    if (colon > 0) {
      try {
        return clip(decodeURIComponent(pair.slice(0, colon)));
      } catch {
        return 'unreadable';
      }
    }
  }
  if (typeof params.client_assertion === 'string') {
    try {
      const { sub } = decodeJwt(params.client_assertion);
      if (typeof sub === 'string') return clip(sub);
    } catch {
      return 'unreadable';
    }
  }
  return 'none';
}

const clip = (s: string) => s.slice(0, 128).replace(/[^\x21-\x7e]/g, '?');

/**
 * The scopes the resource server lets through for this request: the SMART scopes asked for (or
 * held by the code / refresh token being redeemed), within what the client is registered for.
 * The user's role ceiling is applied when the user approves (interactions), where the user is known.
 */
function grantableScope(ctx: KoaContextWithOIDC, client: { [key: string]: unknown }): string {
  const asked = [
    ctx.oidc.params?.scope, ctx.oidc.entities.AuthorizationCode?.scope, ctx.oidc.entities.RefreshToken?.scope,
  ].filter((s): s is string => typeof s === 'string').join(' ');
  const registered = clientScope(client as { smart_scope?: unknown });
  // Launch and identity scopes too only as registered: a client registered without offline_access gets no long-lived refresh token.
  const granted = narrowScopes(asked, registered);
  if (ctx.oidc.route === 'token' && ctx.oidc.params?.grant_type === 'client_credentials' && parseScopes(granted.join(' ')).resource.length === 0) {
    throw new errors.InvalidScope('None of the requested scopes is registered for this client', String(ctx.oidc.params?.scope ?? ''));
  }
  return granted.join(' ');
}

/** The standard prompts, with one more reason to sign in again: the session outlived its absolute lifetime. */
function sessionPolicy(maxSeconds: number): interactionPolicy.DefaultPolicy {
  const policy = interactionPolicy.base();
  policy.get('login')!.checks.add(new interactionPolicy.Check('session_too_old', 'the session has reached its absolute lifetime', (ctx) => {
    const loginTs = ctx.oidc.session?.loginTs;
    return loginTs !== undefined && Math.floor(Date.now() / 1000) - loginTs >= maxSeconds ? interactionPolicy.Check.REQUEST_PROMPT : interactionPolicy.Check.NO_NEED_TO_PROMPT;
  }));
  return policy;
}

export function errorPage(error: string, description: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Authorization error</title></head>` +
    `<body><h1>Authorization error</h1><p><strong>${escapeHtml(error)}</strong></p><p>${escapeHtml(description)}</p></body></html>`;
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
