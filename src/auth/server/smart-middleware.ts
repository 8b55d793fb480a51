import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { AuthStore } from '../../store/auth-store.ts';
import type { Revocations } from '../revocations.ts';
import { InvalidTokenError, type TokenVerifier } from '../access-token.ts';
import { launchContextOf } from './launch-context.ts';
import type { AuthEvent } from '../auth-events.ts';

/**
 * The SMART parts oidc-provider has no option for, as Koa middleware around its routes:
 * - the authorization request may be POSTed (SMART authorize-post): it is turned into the same
 *   request by GET with a 303, because a cross-site POST would not carry the SameSite=Lax
 *   session cookie (oidc-provider's own POST support needs SameSite=None), while the top-level
 *   GET that follows does;
 * - `offline_access` survives without `prompt=consent` (OpenID Connect drops it otherwise; SMART
 *   apps do not send that prompt, and every authorization here asks for approval anyway);
 * - token responses carry the launch context (patient, encounter, need_patient_banner, ...);
 * - this server's JWT access tokens can be introspected (RFC 7662) and revoked (RFC 7009), by the
 *   client they were issued to, which oidc-provider refuses for structured tokens.
 */
export function useSmartMiddleware(provider: Provider, store: AuthStore, verifier: TokenVerifier, revocations: Revocations, emit: (event: AuthEvent) => void): void {
  provider.use(async (ctx, next) => {
    if (ctx.path === '/authorize' && ctx.method === 'POST') return redirectPostedAuthorization(ctx, `${new URL(provider.issuer).pathname.replace(/\/+$/, '')}/authorize`);
    if (ctx.path === '/authorize' && ctx.method === 'GET') keepOfflineAccess(ctx);
    await next();
    const oidc = (ctx as KoaContextWithOIDC).oidc;
    if (!oidc) return;
    if (oidc.route === 'token' && ctx.status === 200) await addLaunchContext(ctx as KoaContextWithOIDC, store);
    else if ((oidc.route === 'introspection' || oidc.route === 'revocation') && isStructuredTokenRefusal(ctx)) {
      await handleJwt(ctx as KoaContextWithOIDC, verifier, revocations, emit);
    }
    // Every answered introspection, of this server's JWTs or the provider's own tokens: who asked, and whether the token was active.
    if (oidc.route === 'introspection' && ctx.status === 200) recordIntrospection(ctx as KoaContextWithOIDC, emit);
  });
}

function recordIntrospection(ctx: KoaContextWithOIDC, emit: (event: AuthEvent) => void): void {
  const client = ctx.oidc.client?.clientId;
  const body = (ctx.body ?? {}) as { active?: unknown; sub?: unknown };
  const detail = body.active === true ? `active${typeof body.sub === 'string' ? ` sub=${body.sub}` : ''}` : 'inactive';
  emit({ kind: 'token-introspected', who: client ?? 'unknown', address: ctx.ip, ...(client ? { client } : {}), success: true, detail });
}

const maxAuthorizationForm = 16 * 1024;

async function redirectPostedAuthorization(ctx: { req: NodeJS.ReadableStream; get(h: string): string; status: number; body: unknown; set(h: string, v: string): void }, target: string): Promise<void> {
  if (!ctx.get('content-type').toLowerCase().startsWith('application/x-www-form-urlencoded')) {
    ctx.status = 415;
    ctx.body = { error: 'invalid_request', error_description: 'An authorization request by POST is a form (application/x-www-form-urlencoded)' };
    return;
  }
  let form = '';
  for await (const chunk of ctx.req) {
    form += chunk.toString();
    if (form.length > maxAuthorizationForm) {
      ctx.status = 413;
      ctx.body = { error: 'invalid_request', error_description: 'The authorization request is too large' };
      return;
    }
  }
  const params = new URLSearchParams(form);
  ctx.status = 303;
  ctx.set('location', `${target}?${params}`);
  ctx.set('cache-control', 'no-store');
  ctx.body = '';
}

function keepOfflineAccess(ctx: { query: Record<string, unknown> }): void {
  const { scope, prompt } = ctx.query;
  if (typeof scope === 'string' && scope.split(' ').includes('offline_access') && prompt === undefined) {
    ctx.query = { ...ctx.query, prompt: 'consent' };
  }
}

async function addLaunchContext(ctx: KoaContextWithOIDC, store: AuthStore): Promise<void> {
  const body = ctx.body as Record<string, unknown> | undefined;
  if (!body?.access_token) return;
  const context = await launchContextOf(store, ctx.oidc.entities.Grant?.jti);
  if (!context) return;
  for (const [k, v] of Object.entries(context)) if (!(k in body) && v !== undefined) body[k] = v;
}

function isStructuredTokenRefusal(ctx: { status: number; body: unknown }): boolean {
  return ctx.status === 400 && (ctx.body as { error?: string } | undefined)?.error === 'unsupported_token_type';
}

async function handleJwt(ctx: KoaContextWithOIDC, verifier: TokenVerifier, revocations: Revocations, emit: (event: AuthEvent) => void): Promise<void> {
  const provider = ctx.oidc.provider;
  const token = String(ctx.oidc.params?.token ?? '');
  const client = ctx.oidc.client;
  let claims: Record<string, unknown> | undefined;
  try {
    claims = await verifier.claims(token);
  } catch (err) {
    if (!(err instanceof InvalidTokenError)) throw err;
  }
  // Only this server's own tokens, and only by the client they were issued to.
  const mine = claims !== undefined && client !== undefined && claims.iss === provider.issuer && claims.client_id === client.clientId;
  if (ctx.oidc.route === 'revocation') {
    // RFC 7009 2.2: an invalid token, or one not the caller's to revoke, still gets a 200.
    if (mine && typeof claims!.jti === 'string' && typeof claims!.exp === 'number') {
      await revocations.revokeToken(claims!.jti, claims!.exp);
      emit({ kind: 'token-revoked', who: String(claims!.sub ?? client!.clientId), address: ctx.ip, client: client!.clientId, success: true, detail: `jti=${claims!.jti}` });
    }
    ctx.status = 200;
    ctx.body = '';
    return;
  }
  const active = mine && !revocations.isRevoked(claims!.jti as string | undefined, claims!.grant_id as string | undefined);
  ctx.status = 200;
  ctx.body = active
    ? { active: true, token_type: 'Bearer', ...pick(claims!, ['scope', 'client_id', 'sub', 'exp', 'iat', 'iss', 'aud', 'jti', 'patient', 'encounter', 'fhirUser', 'cnf']) }
    : { active: false };
}

function pick(o: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => o[k] !== undefined).map((k) => [k, o[k]]));
}
