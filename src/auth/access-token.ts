import { createLocalJWKSet, createRemoteJWKSet, errors, jwtVerify, type JWK, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { narrowScopes, parseScopes } from '../access/smart-scopes.ts';
import { roleScopeCeiling } from '../access/role-scope-ceiling.ts';
import { roles, type Role } from '../store/auth-store.ts';
import type { Principal } from './principal.ts';

/** Signature algorithms accepted on access tokens: asymmetric only (no `none`, no HS* keyed with a public key). */
export const accessTokenAlgorithms = ['ES256', 'ES384', 'RS256', 'RS384', 'PS256', 'PS384'];

/** An issuer whose access tokens the FHIR API accepts. */
export interface TrustedIssuer {
  issuer: string;
  keys: JWTVerifyGetKey;
  /** The audience its tokens must name: this server's FHIR base URL. */
  audience: string;
  /** The JWT `typ` its access tokens carry, when it is known (this server's: at+jwt, RFC 9068). */
  typ?: string;
  /** Claims -> who. For this server's own tokens the claims are its own; external issuers are mapped by configuration. */
  toPrincipal(claims: JWTPayload): Omit<Principal, 'address' | 'resourceScopes'>;
}

export class InvalidTokenError extends Error {}

/** Seconds of clock skew allowed on exp / nbf / iat; revocations last this much past a token's expiry. */
export const clockTolerance = 30;

/**
 * This server's own tokens: verified against its own public keys, claims as it writes them. The
 * issuer and audience are read from the config when used (a server on port 0 learns its URLs on listen).
 */
export function ownIssuer(config: { baseUrl: string; auth: { issuer: string } }, publicJwks: { keys: JWK[] }): TrustedIssuer {
  return {
    get issuer() { return config.auth.issuer; },
    get audience() { return config.baseUrl; },
    keys: createLocalJWKSet(publicJwks),
    // An ID token (typ JWT) is signed with the same keys: it must never pass for an access token.
    typ: 'at+jwt',
    toPrincipal: ownClaims,
  };
}

export interface ExternalIssuerConfig {
  issuer: string;
  jwksUri: string;
  /** Claim holding the role (default `role`), and an optional map from its values to Bastion roles. */
  roleClaim?: string;
  roleMap?: Record<string, Role>;
  /** Role when the claim is absent (otherwise such tokens are refused). */
  defaultRole?: Role;
  patientClaim?: string;
  fhirUserClaim?: string;
}

/** A trusted external issuer (an EHR's or a company IdP's), its keys fetched from its JWKS and cached by jose. */
export function externalIssuer(config: ExternalIssuerConfig, server: { baseUrl: string }): TrustedIssuer {
  const keys = createRemoteJWKSet(new URL(config.jwksUri), { cooldownDuration: 30_000, timeoutDuration: 5_000 });
  return {
    issuer: config.issuer,
    keys,
    get audience() { return server.baseUrl; },
    toPrincipal(claims) {
      const raw = claims[config.roleClaim ?? 'role'];
      // With a role map, only the values it lists count: an IdP role that merely shares a name with one of ours does not.
      const mapped = typeof raw === 'string' ? (config.roleMap ? config.roleMap[raw] : raw) : config.defaultRole;
      if (!mapped || !roles.includes(mapped as Role)) throw new InvalidTokenError('The token carries no role this server recognises');
      const base = common(claims);
      return {
        ...base,
        // Another issuer's scopes are held to the same role ceiling as this server's own grants.
        scopes: narrowScopes(base.scopes.join(' '), roleScopeCeiling(mapped as Role)),
        role: mapped as Role,
        patient: stringClaim(claims[config.patientClaim ?? 'patient']),
        fhirUser: stringClaim(claims[config.fhirUserClaim ?? 'fhirUser']),
      };
    },
  };
}

function ownClaims(claims: JWTPayload): Omit<Principal, 'address' | 'resourceScopes'> {
  const role = claims.role;
  if (typeof role !== 'string' || !roles.includes(role as Role)) throw new InvalidTokenError('The token carries no role');
  return {
    ...common(claims),
    role: role as Role,
    patient: stringClaim(claims.patient),
    encounter: stringClaim(claims.encounter),
    fhirUser: stringClaim(claims.fhirUser),
  };
}

function common(claims: JWTPayload): Pick<Principal, 'kind' | 'id' | 'scopes' | 'clientId' | 'issuer' | 'tokenId' | 'grantId' | 'purposeOfUse' | 'breakGlassClaim' | 'certificateBound'> {
  const clientId = stringClaim(claims.client_id) ?? stringClaim(claims.azp);
  const sub = claims.sub ?? clientId;
  if (!sub) throw new InvalidTokenError('The token names no subject');
  const scope = typeof claims.scope === 'string' ? claims.scope : Array.isArray(claims.scp) ? claims.scp.join(' ') : '';
  return {
    // A token whose subject is the client itself is a backend service acting on its own behalf.
    kind: clientId !== undefined && sub === clientId ? 'client' : 'user',
    id: sub,
    scopes: scope.split(' ').filter(Boolean),
    clientId,
    issuer: claims.iss,
    tokenId: claims.jti,
    grantId: stringClaim(claims.grant_id),
    ...purposeClaims(claims),
    ...certificateBinding(claims),
  };
}

const actReason = 'http://terminology.hl7.org/CodeSystem/v3-ActReason';

/**
 * `purpose_of_use` (a code, a `system|code`, or a list of them; bare codes are v3-ActReason), and
 * with BTG among them, emergency access to the patient of `break_glass_patient` (or the launch
 * `patient`) for the reason in `break_glass_reason`: an EHR that broke the glass says so in its token.
 */
function purposeClaims(claims: JWTPayload): Pick<Principal, 'purposeOfUse' | 'breakGlassClaim'> {
  const raw = claims.purpose_of_use;
  const list = (Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(' ') : []).filter((v): v is string => typeof v === 'string' && v !== '');
  if (list.length === 0) return {};
  const purposeOfUse = list.map((v) => (v.includes('|') ? v : `${actReason}|${v}`));
  if (!purposeOfUse.includes(`${actReason}|BTG`)) return { purposeOfUse };
  const patient = stringClaim(claims.break_glass_patient) ?? stringClaim(claims.patient);
  return patient ? { purposeOfUse, breakGlassClaim: { patient, reason: stringClaim(claims.break_glass_reason) ?? '' } } : { purposeOfUse };
}

/** RFC 8705 3.1: `cnf: {"x5t#S256": ...}`; a cnf this server cannot check (another method) is refused rather than ignored. */
function certificateBinding(claims: JWTPayload): Pick<Principal, 'certificateBound'> {
  const cnf = claims.cnf;
  if (cnf === undefined) return {};
  const thumbprint = typeof cnf === 'object' && cnf !== null ? (cnf as Record<string, unknown>)['x5t#S256'] : undefined;
  if (typeof thumbprint !== 'string' || thumbprint === '') throw new InvalidTokenError('The token is bound to a key by a confirmation method this server does not support');
  return { certificateBound: thumbprint };
}

function stringClaim(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

interface Cached {
  /** The whole token: the cache is keyed by its tail only, so a hit is confirmed by comparing all of it. */
  token: string;
  principal: Omit<Principal, 'address'>;
  /** Epoch ms after which the token is expired. */
  expires: number;
}

/**
 * Bearer token -> Principal, on every FHIR request. A verified token is remembered until it
 * expires (bounded), so a client's next request costs a map lookup rather than a signature check;
 * revocation is consulted on every use, cached or not.
 */
export class TokenVerifier {
  private readonly issuers: TrustedIssuer[];
  private readonly cache = new Map<string, Cached>();
  private readonly isRevoked: (jti: string | undefined, grantId: string | undefined) => boolean;
  private readonly maxCached: number;

  constructor(issuers: TrustedIssuer[], isRevoked: (jti: string | undefined, grantId: string | undefined) => boolean = () => false, maxCached = 10_000) {
    this.issuers = issuers;
    this.isRevoked = isRevoked;
    this.maxCached = maxCached;
  }

  /** The token's verified claims, for introspection (throws InvalidTokenError as verify does). */
  async claims(token: string): Promise<JWTPayload> {
    const iss = unverifiedIssuer(token);
    const issuer = this.issuers.find((i) => i.issuer === iss);
    if (!issuer) throw new InvalidTokenError('The token is not from an issuer this server trusts');
    return verifyWith(token, issuer);
  }

  /** Synchronous when the token was verified before (the usual case), a promise when it must be checked now. */
  verify(token: string, address: string): Principal | Promise<Principal> {
    // Keyed by the last characters (signature bytes): hashing a whole 600-byte token on every
    // request costs more than comparing it once found.
    const key = token.length > 32 ? token.slice(-32) : token;
    const entry = this.cache.get(key);
    if (entry && entry.token === token && entry.expires > Date.now()) return this.admit(entry, address);
    if (!/^[A-Za-z0-9\-_.]+$/.test(token)) throw new InvalidTokenError('The token is not a JWT');
    return this.check(token).then((checked) => {
      if (this.cache.size >= this.maxCached) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(key, checked);
      return this.admit(checked, address);
    });
  }

  /** Revocation is consulted on every use, cached or not. */
  private admit(entry: Cached, address: string): Principal {
    if (this.isRevoked(entry.principal.tokenId, entry.principal.grantId)) throw new InvalidTokenError('The token has been revoked');
    return { ...entry.principal, address };
  }

  private async check(token: string): Promise<Cached> {
    const iss = unverifiedIssuer(token);
    const issuer = this.issuers.find((i) => i.issuer === iss);
    if (!issuer) throw new InvalidTokenError('The token is not from an issuer this server trusts');
    const payload = await verifyWith(token, issuer);
    const principal = issuer.toPrincipal(payload);
    return { token, principal: { ...principal, resourceScopes: parseScopes(principal.scopes.join(' ')).resource }, expires: payload.exp! * 1000 };
  }
}

async function verifyWith(token: string, issuer: TrustedIssuer): Promise<JWTPayload> {
  try {
    const { payload } = await jwtVerify(token, issuer.keys, {
      issuer: issuer.issuer, audience: issuer.audience, algorithms: accessTokenAlgorithms, clockTolerance, requiredClaims: ['exp'],
      ...(issuer.typ ? { typ: issuer.typ } : {}),
    });
    return payload;
  } catch (err) {
    throw new InvalidTokenError(reason(err));
  }
}

/** The `iss` claim before verification, only to pick the keys to verify with. */
function unverifiedIssuer(token: string): string {
  const parts = token.split('.');
  if (parts.length !== 3) throw new InvalidTokenError('The token is not a JWT');
  try {
    const claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as { iss?: unknown };
    if (typeof claims.iss !== 'string') throw new Error();
    return claims.iss;
  } catch {
    throw new InvalidTokenError('The token is not a JWT');
  }
}

function reason(err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'The token has expired';
  if (err instanceof errors.JWTClaimValidationFailed) return `The token's ${err.claim} claim is not acceptable`;
  if (err instanceof errors.JOSEAlgNotAllowed) return 'The token is signed with an algorithm this server does not accept';
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'The token signature does not verify';
  return 'The token is not valid';
}
