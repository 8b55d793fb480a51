import { createCipheriv, createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';

/**
 * Keyed, reversible pseudonyms for resource ids in the de-identified (researcher) view.
 *
 * A pseudonym must be stable, so the same patient links across resources, searches and sessions;
 * it must be reversible by the server alone, so a researcher's `Patient/x...` reference or `_id`
 * search can be mapped back to the stored row without a lookup table; and it must be unforgeable,
 * so nobody can mint the pseudonym of an id they guessed. That is deterministic authenticated
 * encryption: an SIV-style construction where an HMAC of (type, id) is both the authentication tag
 * and the CTR IV. Deterministic encryption leaks only equality (wanted: linkage) and the length of
 * the id (FHIR ids are short, server-assigned, and carry no meaning in their length).
 */

/** FHIR ids are [A-Za-z0-9\-\.]{1,64}: base64 with '-' and '.' for the two extra symbols. */
const reversiblePrefix = 'x';
/** Not decodable: ids too long to carry their own ciphertext inside 64 characters. */
const hashedPrefix = 'h';
const tagBytes = 8;
const maxIdLength = 64;
const typePattern = /^[A-Z][A-Za-z]*$/;

const referencePattern = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[A-Za-z0-9\-.]{1,64})?$/;
const absolutePattern = /^https?:\/\/[^?#\s]+?\/([A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64}(?:\/_history\/[A-Za-z0-9\-.]{1,64})?)$/;

export class Pseudonyms {
  readonly #macKey: Buffer;
  readonly #encKey: Buffer;

  constructor(key: Buffer) {
    if (key.length < 32) throw new Error('pseudonym key: at least 32 bytes of secret are required');
    // Separate keys for the tag and the cipher: reusing one key in HMAC and AES voids both proofs.
    this.#macKey = derive(key, 'bastion pseudonym mac v1');
    this.#encKey = derive(key, 'bastion pseudonym enc v1');
  }

  encode(resourceType: string, id: string): string {
    if (!typePattern.test(resourceType)) throw new Error(`pseudonym: "${resourceType}" is not a resource type`);
    const plaintext = Buffer.from(id, 'utf8');
    const tag = this.#tag(resourceType, plaintext);
    const pseudonym = reversiblePrefix + toFhirBase64(Buffer.concat([tag, this.#crypt(tag, plaintext)]));
    if (pseudonym.length <= maxIdLength) return pseudonym;
    // A longer id cannot carry its ciphertext within FHIR's 64 characters. A mapping table would
    // make this transform stateful (and a store of real ids in its own right), so such ids get a
    // one-way keyed hash instead: still stable and linkable, but the server cannot resolve it back.
    const digest = createHmac('sha256', this.#macKey).update(`${hashedPrefix}\0${resourceType}\0`).update(plaintext).digest();
    return hashedPrefix + toFhirBase64(digest.subarray(0, 16));
  }

  /** The real id, or undefined for anything this key did not issue for this type. */
  decode(resourceType: string, pseudonym: string): string | undefined {
    if (!typePattern.test(resourceType) || !pseudonym.startsWith(reversiblePrefix)) return undefined;
    const bytes = fromFhirBase64(pseudonym.slice(1));
    if (!bytes || bytes.length <= tagBytes) return undefined;
    const tag = bytes.subarray(0, tagBytes);
    const plaintext = this.#crypt(tag, bytes.subarray(tagBytes));
    if (!timingSafeEqual(tag, this.#tag(resourceType, plaintext))) return undefined;
    const id = plaintext.toString('utf8');
    // Only ids that round-trip exactly (no replacement characters from invalid UTF-8).
    return Buffer.from(id, 'utf8').equals(plaintext) ? id : undefined;
  }

  /**
   * A reference as the de-identified view shows it: `Type/pseudonym`. Versions are dropped (a
   * version count is a side channel on the record's edit history) and so is the base of an
   * absolute URL (it names the source system). Contained `#x` anchors are local and kept. Anything
   * else (urn:uuid/urn:oid, conditional `Type?identifier=...`, logical oddities) may carry an
   * identifier the view cannot vouch for: undefined, and the caller drops it.
   */
  rewriteReference(reference: string): string | undefined {
    if (reference.startsWith('#')) return reference;
    const relative = absolutePattern.exec(reference)?.[1] ?? reference;
    const m = referencePattern.exec(relative);
    return m ? `${m[1]}/${this.encode(m[1], m[2])}` : undefined;
  }

  /**
   * A keyed stand-in for an OID-shaped unique identifier (DICOM study/series/instance UIDs, Safe
   * Harbor kind R), as DICOM PS3.15 does it: a `2.25.` UID from a version 8 (custom) UUID.
   */
  uid(value: string): string {
    const bytes = createHmac('sha256', this.#macKey).update(`uid\0${value}`).digest().subarray(0, 16);
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    return `2.25.${BigInt(`0x${bytes.toString('hex')}`).toString(10)}`;
  }

  #tag(resourceType: string, plaintext: Buffer): Buffer {
    // Binding the type into the tag makes Patient/1 and Observation/1 unrelated pseudonyms, and a
    // Patient pseudonym useless as an Observation id.
    return createHmac('sha256', this.#macKey).update(`${resourceType}\0`).update(plaintext).digest().subarray(0, tagBytes);
  }

  #crypt(tag: Buffer, data: Buffer): Buffer {
    const iv = Buffer.alloc(16);
    tag.copy(iv);
    const cipher = createCipheriv('aes-256-ctr', this.#encKey, iv);
    return Buffer.concat([cipher.update(data), cipher.final()]);
  }
}

function derive(key: Buffer, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), info, 32));
}

function toFhirBase64(bytes: Buffer): string {
  return bytes.toString('base64url').replaceAll('_', '.');
}

/** Strict: Buffer's own decoder skips invalid characters, so only canonical encodings are accepted. */
function fromFhirBase64(text: string): Buffer | undefined {
  if (!/^[A-Za-z0-9\-.]+$/.test(text)) return undefined;
  const bytes = Buffer.from(text.replaceAll('.', '_'), 'base64url');
  return toFhirBase64(bytes) === text ? bytes : undefined;
}
