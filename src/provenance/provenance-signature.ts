import { createHash } from 'node:crypto';
import { CompactSign, compactVerify, importJWK, type JWK } from 'jose';
import type { StoredResource } from '../store/store.ts';

/** What a Provenance's signature covers: each target version and the SHA-256 of its stored bytes. */
export interface SignedTargets {
  recorded: string;
  targets: { reference: string; sha256: string }[];
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
  private privateKey: CryptoKey | Uint8Array | undefined;
  private publicKey: CryptoKey | Uint8Array | undefined;

  constructor(privateJwk: JWK, publicJwk: JWK) {
    this.privateJwk = privateJwk;
    this.publicJwk = publicJwk;
  }

  get keyId(): string | undefined {
    return this.publicJwk.kid;
  }

  async sign(payload: SignedTargets): Promise<string> {
    this.privateKey ??= await importJWK(this.privateJwk, 'ES256');
    return new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
      .setProtectedHeader({ alg: 'ES256', kid: this.privateJwk.kid, cty: 'bastion-provenance-targets' })
      .sign(this.privateKey);
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
