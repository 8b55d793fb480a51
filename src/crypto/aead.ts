import { createCipheriv, createDecipheriv, randomFillSync } from 'node:crypto';

/**
 * Random nonces are cut from a pool filled from the CSPRNG 4 KiB at a time: a `randomBytes(12)`
 * call per sealed version cost more than the encryption itself. Each nonce is used once.
 */
const pool = Buffer.alloc(4096);
let poolAt = pool.length;

function freshNonce(): Buffer {
  if (poolAt + 12 > pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  const nonce = Buffer.from(pool.subarray(poolAt, poolAt + 12));
  poolAt += 12;
  return nonce;
}

/** AES-256-GCM with a fresh 96-bit random nonce: `nonce | ciphertext | tag`. Throws if the bytes or the AAD differ. */
export function aesGcmSeal(key: Buffer, plaintext: Buffer, aad: Buffer): Buffer {
  const nonce = freshNonce();
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(aad);
  const body = cipher.update(plaintext);
  const last = cipher.final();
  return Buffer.concat([nonce, body, last, cipher.getAuthTag()]);
}

export function aesGcmOpen(key: Buffer, sealed: Buffer, aad: Buffer): Buffer {
  if (sealed.length < 28) throw new Error('sealed bytes are truncated');
  const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, 12));
  decipher.setAAD(aad);
  decipher.setAuthTag(sealed.subarray(sealed.length - 16));
  return Buffer.concat([decipher.update(sealed.subarray(12, sealed.length - 16)), decipher.final()]);
}

/** The first byte of a versioned ciphertext: stored text (JSON) never starts with it. */
const magic = 0xb5;
const headerLength = 6;

/**
 * A ciphertext that names its key: `0xB5, format 1, key version (uint32), nonce | ciphertext | tag`.
 * The version is the data key's (`resource-body.<version>`), so every ciphertext stays readable
 * after rotation, and the re-encryption job finds the ones still under an old key.
 */
export function sealVersioned(key: Buffer, version: number, plaintext: Buffer, aad: Buffer): Buffer {
  const header = versionedHeader(version);
  return Buffer.concat([header, aesGcmSeal(key, plaintext, Buffer.concat([header, aad]))]);
}

/** The header every ciphertext sealed under key `version` starts with. */
export function versionedHeader(version: number): Buffer {
  const header = Buffer.alloc(headerLength);
  header[0] = magic;
  header[1] = 1;
  header.writeUInt32BE(version, 2);
  return header;
}

/** The key version a versioned ciphertext was sealed with; undefined when the bytes are not one. */
export function sealedVersion(sealed: Uint8Array): number | undefined {
  if (sealed.length < headerLength + 28 || sealed[0] !== magic || sealed[1] !== 1) return undefined;
  return Buffer.from(sealed.buffer, sealed.byteOffset, sealed.length).readUInt32BE(2);
}

/** The header is authenticated too: a ciphertext relabelled with another key version does not open. */
export function openVersioned(key: Buffer, sealed: Buffer, aad: Buffer): Buffer {
  return aesGcmOpen(key, sealed.subarray(headerLength), Buffer.concat([sealed.subarray(0, headerLength), aad]));
}
