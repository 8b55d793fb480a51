import type { AuthStore } from '../store/auth-store.ts';
import { clockTolerance } from './access-token.ts';

const tokenModel = 'RevokedAccessToken';
const grantModel = 'RevokedGrant';

/**
 * Access tokens are JWTs checked without a lookup, so revoking one (RFC 7009), or the grant it
 * came from (refresh token reuse, authorization code reuse, a revoked refresh token), is recorded
 * here until the tokens would have expired anyway: kept in memory for the per-request check and
 * in the auth store so a restart does not forget it.
 */
export class Revocations {
  /** The auth store models revocations are kept as. */
  static readonly models = [tokenModel, grantModel] as const;
  private readonly tokens = new Map<string, number>();
  private readonly grants = new Map<string, number>();
  private readonly store: AuthStore;
  /** Seconds a revoked grant is remembered: an access token issued just before lives this long. */
  private readonly accessTokenTtl: number;

  constructor(store: AuthStore, accessTokenTtl: number) {
    this.store = store;
    this.accessTokenTtl = accessTokenTtl;
  }

  async load(): Promise<void> {
    const now = Date.now();
    for (const r of await this.store.oauthList(tokenModel)) if (r.expiresAt) this.tokens.set(String(r.payload.jti), r.expiresAt * 1000);
    for (const r of await this.store.oauthList(grantModel)) if (r.expiresAt) this.grants.set(String(r.payload.revokedGrant), r.expiresAt * 1000);
    this.sweep(now);
  }

  /** Revokes one access token until `expiresAt` (epoch seconds) and the clock tolerance after it. */
  async revokeToken(jti: string, expiresAt: number): Promise<void> {
    const until = expiresAt + clockTolerance;
    this.sweep(Date.now());
    this.tokens.set(jti, until * 1000);
    await this.store.oauthUpsert(tokenModel, jti, { jti }, Math.max(1, until - Math.floor(Date.now() / 1000)));
  }

  async revokeGrant(grantId: string): Promise<void> {
    const seconds = this.accessTokenTtl + clockTolerance;
    this.sweep(Date.now());
    this.grants.set(grantId, Date.now() + seconds * 1000);
    await this.store.oauthUpsert(grantModel, `grant:${grantId}`, { revokedGrant: grantId }, seconds);
  }

  isRevoked(jti: string | undefined, grantId: string | undefined): boolean {
    if (this.tokens.size === 0 && this.grants.size === 0) return false;
    const now = Date.now();
    if (jti !== undefined && (this.tokens.get(jti) ?? 0) > now) return true;
    return grantId !== undefined && (this.grants.get(grantId) ?? 0) > now;
  }

  /** Lapsed revocations go (at start and with each new one: revocations are rare, the check is per request). */
  private sweep(now: number): void {
    for (const [k, exp] of this.tokens) if (exp <= now) this.tokens.delete(k);
    for (const [k, exp] of this.grants) if (exp <= now) this.grants.delete(k);
  }
}
