/**
 * Where Bastion's key-encryption keys (KEKs) live. Bastion's own data keys (the store file's key,
 * the resource-body and identifier keys, the blind-index key, ...) are random 256-bit keys kept only
 * wrapped by a KEK (envelope encryption): the KEK never leaves its provider (Vault Transit, AWS KMS,
 * an HSM) except for the local keyring, where it is itself encrypted under a master key.
 *
 * Data keys are unwrapped once, at start; nothing on the request path calls a provider.
 */
export interface KeyProvider {
  /** `local`, `vault-transit`, `aws-kms`, `pkcs11`: recorded with every wrapped key. */
  readonly kind: string;
  /**
   * Wraps a data key under the current KEK version. `context` (e.g. `bastion:data-key:resource-body.2`)
   * is bound to the result (AAD, encryption context): the wrapped key cannot be unwrapped as another key.
   */
  wrap(dataKey: Buffer, context: string): Promise<WrappedKey>;
  /** The data key back; throws KeyProviderError when the KEK is unknown, the context differs or the bytes were altered. */
  unwrap(wrapped: WrappedKey, context: string): Promise<Buffer>;
  /** Makes a new KEK version current; earlier versions still unwrap what they wrapped. */
  rotate(): Promise<KekVersion>;
  /** Every KEK version with its creation time (the compliance checks read the current one's age). */
  versions(): Promise<KekVersion[]>;
  close?(): Promise<void>;
}

/** A data key as a provider wrapped it. */
export interface WrappedKey {
  /** The provider kind that wrapped it. */
  provider: string;
  /** The KEK version that wrapped it (provider-specific: `local:3`, `vault:bastion:v2`, a KMS key ARN). */
  kek: string;
  /** The wrapped bytes, base64 (or the provider's own text form, e.g. `vault:v2:...`). */
  ciphertext: string;
}

export interface KekVersion {
  /** As in WrappedKey.kek. */
  id: string;
  /** ISO-8601 UTC. */
  created: string;
  current: boolean;
}

/** A key operation that failed for a reason an operator must see (wrong master key, unknown KEK, altered bytes, provider unreachable). */
export class KeyProviderError extends Error {}
