import { createHmac } from 'node:crypto';
import type { Resource } from '../fhir/types.ts';
import type { SearchCriterion, SearchRequest, TokenValue } from '../fhir/search/types.ts';
import type { DataKeys } from '../crypto/data-keys.ts';
import { FhirError } from '../fhir/outcome.ts';
import { openVersioned, sealedVersion, sealVersioned, versionedHeader } from '../crypto/aead.ts';
import { SensitiveIdentifiers, type IdentifierElement } from './sensitive-identifiers.ts';

/** The extension a sensitive identifier's value is kept in, encrypted, in place of `value`. */
export const encryptedValueUrl = 'urn:bastion:encrypted-identifier';

/** What a resource version becomes in the store. */
export interface Encoded {
  /** The stored column: JSON text, or sealed bytes with app-level body encryption. */
  content: string | Buffer;
  /** What clients are served: the resource as written. */
  json: string;
  /** What the search index is built from: sensitive identifier values replaced by their blind index. */
  indexed: Resource;
}

export class UnreadableContentError extends Error {}

/**
 * Turns resources into what the store keeps and back. Sensitive identifiers (SSN, MRN, ...) are
 * encrypted inside the JSON under the `identifier` key and indexed only by a keyed blind index
 * (HMAC-SHA-256 under the `blind-index` key), so neither their text nor an unkeyed hash reaches an
 * index table; with `encryptBodies` the whole JSON is sealed too (AES-256-GCM under the
 * `resource-body` key, a fresh nonce per version, the type, id and version as AAD). Reading
 * accepts any mix (text, sealed under any live key version), so turning encryption on or rotating
 * keys never makes stored data unreadable.
 */
export class ResourceCodec {
  private readonly keys: DataKeys | undefined;
  private readonly sensitive: SensitiveIdentifiers;
  readonly encryptBodies: boolean;

  constructor(keys: DataKeys | undefined, options: { encryptBodies?: boolean; sensitiveIdentifiers?: readonly string[] } = {}) {
    this.keys = keys;
    this.encryptBodies = keys !== undefined && options.encryptBodies === true;
    // Without keys (tests of the bare store) nothing can be encrypted, so nothing is looked for.
    this.sensitive = new SensitiveIdentifiers(keys ? options.sensitiveIdentifiers : []);
  }

  encode(resource: Resource & { id: string }, version: number): Encoded {
    const json = JSON.stringify(resource);
    // The server's own marker: a client's copy of it would make the resource unreadable (or pass off its bytes as ours).
    if (json.includes(encryptedValueUrl)) throw new FhirError(422, `The extension ${encryptedValueUrl} is reserved to the server: it marks identifiers it encrypted`, 'invalid');
    let text = json;
    let indexed: Resource = resource;
    if (this.sensitive.mayHold(json)) {
      const forStorage = JSON.parse(json) as Resource;
      const secrets = this.sensitive.find(forStorage);
      if (secrets.length > 0) {
        indexed = JSON.parse(json) as Resource;
        for (const identifier of this.sensitive.find(indexed)) this.blindInPlace(identifier);
        for (const identifier of secrets) this.encryptInPlace(identifier, resource.resourceType, resource.id);
        text = JSON.stringify(forStorage);
      }
    }
    const content = this.encryptBodies ? this.seal(text, resource.resourceType, resource.id, version) : text;
    return { content, json, indexed };
  }

  /** The stored column back to the resource's JSON as written. */
  decode(type: string, id: string, version: number, content: string | Uint8Array): string {
    const text = typeof content === 'string' ? content : this.open(content, type, id, version);
    if (!text.includes(encryptedValueUrl)) return text;
    const resource = JSON.parse(text) as Resource;
    this.decryptAll(resource, type, id);
    return JSON.stringify(resource);
  }

  /** A stored version as the search index saw it (to compute what an update changes, and to re-index). */
  indexedOf(type: string, id: string, version: number, content: string | Uint8Array): Resource {
    const text = this.decode(type, id, version, content);
    const resource = JSON.parse(text) as Resource;
    if (this.sensitive.mayHold(text)) for (const identifier of this.sensitive.find(resource)) this.blindInPlace(identifier);
    return resource;
  }

  /** The blind index of a value: what the token index holds for a sensitive identifier. */
  blind(value: string): string {
    if (!this.keys) return value;
    return `bi:${createHmac('sha256', this.keys.current('blind-index').key).update(value, 'utf8').digest('base64url')}`;
  }

  /**
   * Identifier criteria also match the blind index of each value asked for: an exact search on a
   * sensitive identifier finds it without its value being in the index. (A value of another,
   * non-sensitive identifier cannot equal a `bi:` HMAC by chance.)
   */
  searchable(request: SearchRequest): SearchRequest {
    if (!this.keys) return request;
    return { ...request, criteria: request.criteria.map((c) => this.withBlindValues(c)) };
  }

  /**
   * Whether a stored column is not as a write would store it now: sealed under an older body key,
   * sealed or not against the `encryptBodies` setting, or holding identifiers under an older
   * identifier key (for the re-encryption job).
   */
  isStale(type: string, id: string, version: number, content: string | Uint8Array): boolean {
    if (!this.keys) return false;
    if (this.bodyStale(content)) return true;
    return this.identifiersStale(typeof content === 'string' ? content : this.open(content, type, id, version));
  }

  /**
   * The re-encryption job's step: the stored column under the current keys and setting, or
   * undefined when it already is. Only identifiers under an older key (or in clear) take the JSON
   * round trip; a body under an older key is opened and sealed again as it is.
   */
  refreshed(type: string, id: string, version: number, content: string | Uint8Array): string | Buffer | undefined {
    if (!this.keys) return undefined;
    const text = typeof content === 'string' ? content : this.open(content, type, id, version);
    if (this.identifiersStale(text)) {
      const resource = JSON.parse(this.decode(type, id, version, text)) as Resource & { id: string };
      return this.encode(resource, version).content;
    }
    if (!this.bodyStale(content)) return undefined;
    return this.encryptBodies ? this.seal(text, type, id, version) : text;
  }

  /** Sealed against the setting, or sealed under an older body key. */
  private bodyStale(content: string | Uint8Array): boolean {
    if (typeof content === 'string') return this.encryptBodies;
    return !this.encryptBodies || sealedVersion(content) !== this.keys!.current('resource-body').version;
  }

  /** Identifiers under an older identifier key, or (written before they were protected, or before an expression was added) in clear. */
  private identifiersStale(text: string): boolean {
    if (text.includes(encryptedValueUrl)) return !text.includes(this.identifierMarker());
    if (!this.sensitive.mayHold(text)) return false;
    return this.sensitive.find(JSON.parse(text) as Resource).some((i) => typeof i.value === 'string');
  }

  private withBlindValues(c: SearchCriterion): SearchCriterion {
    switch (c.kind) {
      // Identifier parameters only: doubling every token criterion (codes, statuses) would slow every search for nothing.
      case 'token':
        return c.code.includes('identifier') ? { ...c, values: c.values.flatMap((v) => this.blindAlternative(v)) } : c;
      case 'reference-identifier':
        return { ...c, values: c.values.flatMap((v) => this.blindAlternative(v)) };
      case 'token-of-type':
        return { ...c, values: c.values.flatMap((v) => [v, { ...v, value: this.blind(v.value) }]) };
      // Chained, reverse-chained and combined criteria reach identifiers too (`subject:Patient.identifier=`).
      case 'chain':
      case 'has':
      case 'for-types':
      case 'not':
        return { ...c, criterion: this.withBlindValues(c.criterion) } as SearchCriterion;
      case 'all-of':
      case 'any-of':
        return { ...c, criteria: c.criteria.map((x) => this.withBlindValues(x)) } as SearchCriterion;
      case 'composite':
        return { ...c, values: c.values.map((tuple) => tuple.map((x) => this.withBlindValues(x))) };
      default:
        return c;
    }
  }

  private blindAlternative(v: TokenValue): TokenValue[] {
    return v.code === undefined ? [v] : [v, { ...v, code: this.blind(v.code) }];
  }

  private blindInPlace(identifier: IdentifierElement): void {
    if (typeof identifier.value === 'string') identifier.value = this.blind(identifier.value);
  }

  private encryptInPlace(identifier: IdentifierElement, type: string, id: string): void {
    if (typeof identifier.value !== 'string') return;
    const key = this.keys!.current('identifier');
    const sealed = sealVersioned(key.key, key.version, Buffer.from(identifier.value, 'utf8'), identifierAad(type, id, identifier));
    delete identifier.value;
    const extension = [...(identifier._value?.extension ?? []), { url: encryptedValueUrl, valueBase64Binary: sealed.toString('base64') }];
    identifier._value = { ...(identifier._value ?? {}), extension };
  }

  /** Finds every encrypted value wherever a deployment's expressions put it, and restores it. */
  private decryptAll(node: unknown, type: string, id: string): void {
    if (Array.isArray(node)) {
      for (const item of node) this.decryptAll(item, type, id);
      return;
    }
    if (typeof node !== 'object' || node === null) return;
    const identifier = node as IdentifierElement;
    const extensions = identifier._value?.extension;
    const mine = extensions?.find((e) => e.url === encryptedValueUrl);
    if (mine?.valueBase64Binary) {
      identifier.value = this.openIdentifier(Buffer.from(mine.valueBase64Binary, 'base64'), type, id, identifier);
      const rest = extensions!.filter((e) => e !== mine);
      if (rest.length > 0) identifier._value = { ...identifier._value, extension: rest };
      else delete identifier._value;
    }
    for (const value of Object.values(node)) if (typeof value === 'object') this.decryptAll(value, type, id);
  }

  private openIdentifier(sealed: Buffer, type: string, id: string, identifier: IdentifierElement): string {
    const version = sealedVersion(sealed);
    try {
      return openVersioned(this.keyOf('identifier', version), sealed, identifierAad(type, id, identifier)).toString('utf8');
    } catch (err) {
      if (err instanceof UnreadableContentError) throw err;
      throw new UnreadableContentError(`An encrypted identifier of ${type}/${id} does not decrypt: it was altered or moved`);
    }
  }

  private seal(text: string, type: string, id: string, version: number): Buffer {
    const key = this.keys!.current('resource-body');
    return sealVersioned(key.key, key.version, Buffer.from(text, 'utf8'), bodyAad(type, id, version));
  }

  private open(content: Uint8Array, type: string, id: string, version: number): string {
    const sealed = Buffer.from(content.buffer, content.byteOffset, content.length);
    try {
      return openVersioned(this.keyOf('resource-body', sealedVersion(sealed)), sealed, bodyAad(type, id, version)).toString('utf8');
    } catch (err) {
      if (err instanceof UnreadableContentError) throw err;
      throw new UnreadableContentError(`The stored body of ${type}/${id} version ${version} does not decrypt: it was altered, or moved from another resource or version`);
    }
  }

  private keyOf(purpose: 'resource-body' | 'identifier', version: number | undefined): Buffer {
    if (!this.keys) throw new UnreadableContentError(`Encrypted content, and no ${purpose} key to read it with`);
    if (version === undefined) throw new UnreadableContentError('Stored bytes that are not a Bastion ciphertext');
    try {
      return this.keys.key(`${purpose}.${version}`);
    } catch (err) {
      throw new UnreadableContentError((err as Error).message);
    }
  }

  /** The base64 prefix every identifier ciphertext under the current key starts with (its header). */
  private identifierMarker(): string {
    return `"valueBase64Binary":"${versionedHeader(this.keys!.current('identifier').version).toString('base64')}`;
  }
}

const bodyAad = (type: string, id: string, version: number) => Buffer.from(`${type}/${id}/_history/${version}`);
/** Bound to the resource and the identifier's system: a value copied into another resource or identifier does not decrypt. */
const identifierAad = (type: string, id: string, identifier: IdentifierElement) => Buffer.from(`${type}/${id}|${identifier.system ?? ''}`);
