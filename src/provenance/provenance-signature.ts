import { createHash, createPrivateKey, sign, type JsonWebKey, type KeyObject } from 'node:crypto';
import { compactVerify, importJWK, type JWK } from 'jose';
import type { StoredResource } from '../store/store.ts';

/**
 * What a Provenance's signature covers: the Provenance itself (the SHA-256 of its canonical JSON
 * without `meta` and `signature`: who, when, what activity, which targets) and each target
 * version with the SHA-256 of its stored bytes.
 */
export interface SignedTargets {
  recorded: string;
  provenance: string;
  targets: { reference: string; sha256: string }[];
}

/** The SHA-256 (base64url) of a Provenance as signed: canonical JSON (keys sorted) without meta and signature. */
export function provenanceDigest(provenance: Record<string, unknown>): string {
  const { meta: _m, signature: _s, ...signed } = provenance;
  return createHash('sha256').update(canonicalJson(signed)).digest('base64url');
}

/** JSON with object keys sorted at every level, so equal content hashes alike whatever its key order. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** `Type/id/_history/v` of a stored version. */
export function versionReference(stored: StoredResource): string {
  return `${stored.resourceType}/${stored.id}/_history/${stored.versionId}`;
}

/** The SHA-256 (base64url) of a version exactly as stored; a deletion marker hashes as empty. */
export function versionDigest(stored: StoredResource): string {
  return createHash('sha256').update(stored.json ?? '').digest('base64url');
}

/**
 * Signs and checks Provenance signatures: a JWS (ES256) whose payload names each target version
 * with the hash of its stored bytes, so any later change to a signed version, or a signature
 * moved onto other targets, no longer verifies. The key is the data dir's provenance key.
 */
export class ProvenanceSigner {
  private readonly privateJwk: JWK;
  private readonly publicJwk: JWK;
  private privateKey: KeyObject | undefined;
  private publicKey: CryptoKey | Uint8Array | undefined;

  constructor(privateJwk: JWK, publicJwk: JWK) {
    this.privateJwk = privateJwk;
    this.publicJwk = publicJwk;
  }

  get keyId(): string | undefined {
    return this.publicJwk.kid;
  }

  /**
   * The compact JWS, made synchronously: signing happens inside the write's transaction, and an
   * asynchronous signer (WebCrypto, as jose uses) held the store's write lock over a thread-pool
   * round trip per write, which more than halved the update rate. The JWS is three base64url
   * parts (RFC 7515 §7.1) around node's ECDSA in its JOSE encoding (r || s); jose verifies it.
   */
  sign(payload: SignedTargets): string {
    this.privateKey ??= createPrivateKey({ key: this.privateJwk as JsonWebKey, format: 'jwk' });
    const header = Buffer.from(JSON.stringify({ alg: 'ES256', kid: this.privateJwk.kid, cty: 'bastion-provenance-targets' })).toString('base64url');
    const body = Buffer.from(JSON.stringify(payload)).toString('base64url');
    const signature = sign('sha256', Buffer.from(`${header}.${body}`), { key: this.privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url');
    return `${header}.${body}.${signature}`;
  }

  /** The signed payload, or undefined when the JWS was not made with this key or was altered. */
  async verify(jws: string): Promise<SignedTargets | undefined> {
    this.publicKey ??= await importJWK(this.publicJwk, 'ES256');
    try {
      const { payload } = await compactVerify(jws, this.publicKey, { algorithms: ['ES256'] });
      return JSON.parse(new TextDecoder().decode(payload)) as SignedTargets;
    } catch {
      return undefined;
    }
  }
}
