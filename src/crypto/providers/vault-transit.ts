import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { serviceUrl } from './service-url.ts';
import { KeyProviderError, type KekVersion, type KeyProvider, type WrappedKey } from '../key-provider.ts';

/** Where the KEK lives in Vault (or OpenBao, which serves the same Transit API). */
export interface VaultTransitSettings {
  /** Vault's API address, e.g. `https://vault.internal:8200`; http only to a loopback address. */
  address: string;
  /**
   * A token whose policy allows `<mount>/encrypt/<key>`, `<mount>/decrypt/<key>` and reading
   * `<mount>/keys/<key>` (plus creating it and `.../rotate` for ensureKey() and rotate()).
   * Held privately: it goes into the X-Vault-Token header and nowhere else.
   */
  token: string;
  /** The Transit engine's mount path; default `transit`. */
  mount?: string;
  /** The Transit key's name, e.g. `bastion`. */
  keyName: string;
  /** Vault Enterprise / OpenBao namespace, sent as X-Vault-Namespace. */
  namespace?: string;
  /** A PEM file of the CA(s) that issued Vault's certificate, when it is not publicly trusted. */
  caFile?: string;
  /** Per request; default 10 s. */
  timeoutMs?: number;
}

/** Key types whose Transit encryption is an AEAD and so take `associated_data` (Vault ≥ 1.13). */
const aeadTypes = new Set(['aes128-gcm96', 'aes256-gcm96', 'chacha20-poly1305', 'xchacha20-poly1305']);

/** What stays true of a Transit key for its whole life: its type and whether it is derived. */
interface KeyShape {
  type: string;
  derived: boolean;
}

interface VaultBody {
  data?: Record<string, unknown>;
  errors?: unknown[];
  warnings?: unknown[];
}

interface VaultAnswer {
  status: number;
  body: VaultBody;
  location?: string;
}

interface HttpAnswer {
  status: number;
  text: string;
  location?: string;
}

type Send = (url: URL, init: { method: string; headers: Record<string, string>; body?: string }, timeoutMs: number) => Promise<HttpAnswer>;

/**
 * A KeyProvider whose KEK is a Vault Transit key: wrapping and unwrapping are Transit
 * encrypt/decrypt calls, so the KEK itself never leaves Vault. The wrapped key is Transit's own
 * ciphertext text (`vault:v3:...`) and its KEK id `vault:<key>:v3`.
 *
 * How `context` is bound: with `associated_data` (GCM additional data) on the AEAD key types, which
 * is what ensureKey() creates (aes256-gcm96). The alternative, a derived key whose `context` selects
 * a per-context key, binds just as well but only works on keys created with `derived=true`, which
 * cannot be turned on later; so a derived key is used with `context` only when an operator already
 * made the key that way (Vault then demands a context on every call). The mode follows from the
 * key, which never changes, so unwrap always binds the way wrap did.
 */
export class VaultTransitProvider implements KeyProvider {
  readonly kind = 'vault-transit';
  readonly #token: string;
  readonly #address: string;
  readonly #mount: string;
  readonly #name: string;
  readonly #namespace: string | undefined;
  readonly #timeoutMs: number;
  readonly #send: Send;
  #shape: Promise<KeyShape> | undefined;

  constructor(settings: VaultTransitSettings) {
    this.#address = checkAddress(settings.address);
    this.#token = checkToken(settings.token);
    this.#mount = checkPath(settings.mount ?? 'transit', 'mount');
    this.#name = checkName(settings.keyName);
    this.#namespace = settings.namespace === undefined ? undefined : checkPath(settings.namespace, 'namespace');
    this.#timeoutMs = settings.timeoutMs ?? 10_000;
    this.#send = settings.caFile === undefined ? fetchSend : httpsSend(readCa(settings.caFile));
  }

  /** Creates the Transit key (aes256-gcm96) unless it exists, and checks that it can bind a context. */
  async ensureKey(): Promise<void> {
    await this.shape(true);
  }

  async wrap(dataKey: Buffer, context: string): Promise<WrappedKey> {
    checkContext(context);
    if (dataKey.length === 0) throw new KeyProviderError('Refusing to wrap an empty data key');
    const shape = await this.shape(true);
    const answer = await this.call('POST', `encrypt/${this.#name}`, { plaintext: dataKey.toString('base64'), ...binding(shape, context) });
    if (answer.status !== 200) throw this.failure(answer, 'wrap a data key');
    refuseIgnoredBinding(answer.body);
    const ciphertext = answer.body.data?.ciphertext;
    const version = typeof ciphertext === 'string' ? versionOf(ciphertext) : undefined;
    if (typeof ciphertext !== 'string' || version === undefined) throw new KeyProviderError(`Vault's encrypt answer for key '${this.#name}' has no Transit ciphertext`);
    return { provider: this.kind, kek: this.kekId(version), ciphertext };
  }

  async unwrap(wrapped: WrappedKey, context: string): Promise<Buffer> {
    checkContext(context);
    this.checkWrapped(wrapped);
    // No key creation here: a missing key means the wrong key name, not a first start.
    const shape = await this.shape(false);
    const answer = await this.call('POST', `decrypt/${this.#name}`, { ciphertext: wrapped.ciphertext, ...binding(shape, context) });
    if (answer.status === 400) {
      throw new KeyProviderError(`Vault refused to unwrap the data key under ${wrapped.kek}: the context differs, the wrapped bytes were altered, or that key version is no longer allowed to decrypt (Vault said: ${this.vaultErrors(answer.body)})`);
    }
    if (answer.status !== 200) throw this.failure(answer, 'unwrap a data key');
    refuseIgnoredBinding(answer.body);
    const plaintext = answer.body.data?.plaintext;
    if (typeof plaintext !== 'string') throw new KeyProviderError(`Vault's decrypt answer for key '${this.#name}' has no plaintext`);
    return Buffer.from(plaintext, 'base64');
  }

  async rotate(): Promise<KekVersion> {
    await this.shape(true);
    const answer = await this.call('POST', `keys/${this.#name}/rotate`, {});
    if (answer.status !== 200 && answer.status !== 204) throw this.failure(answer, 'rotate the key');
    const current = (await this.versions()).find((v) => v.current);
    if (!current) throw new KeyProviderError(`Vault key '${this.#name}' has no current version after rotation`);
    return current;
  }

  async versions(): Promise<KekVersion[]> {
    const data = await this.readKey();
    if (!data) throw this.missingKey();
    const latest = Number(data.latest_version);
    const keys = data.keys;
    if (!Number.isInteger(latest) || typeof keys !== 'object' || keys === null) throw new KeyProviderError(`Vault's description of key '${this.#name}' has no versions`);
    return Object.entries(keys as Record<string, unknown>)
      .map(([version, created]) => ({ version: Number(version), created: creationTime(created) }))
      .sort((a, b) => a.version - b.version)
      .map(({ version, created }) => ({ id: this.kekId(version), created, current: version === latest }));
  }

  private kekId(version: number): string {
    return `vault:${this.#name}:v${version}`;
  }

  private checkWrapped(wrapped: WrappedKey): void {
    if (wrapped.provider !== this.kind) throw new KeyProviderError(`The data key was wrapped by ${wrapped.provider}, not by Vault Transit`);
    const version = versionOf(wrapped.ciphertext);
    if (version === undefined) throw new KeyProviderError(`The wrapped data key under ${wrapped.kek} is not a Vault Transit ciphertext (altered or truncated)`);
    const kek = /^vault:(.+):v(\d+)$/.exec(wrapped.kek);
    if (!kek || kek[1] !== this.#name) throw new KeyProviderError(`The data key was wrapped under ${wrapped.kek}, but this provider uses Vault key '${this.#name}'`);
    if (Number(kek[2]) !== version) throw new KeyProviderError(`The wrapped data key under ${wrapped.kek} carries key version ${version}: its record was altered`);
  }

  /** The key's type and derivation, read once (they cannot change); a failed read is retried next time. */
  private shape(create: boolean): Promise<KeyShape> {
    if (this.#shape) return this.#shape;
    const shape = this.describe(create);
    this.#shape = shape;
    shape.catch(() => {
      if (this.#shape === shape) this.#shape = undefined;
    });
    return shape;
  }

  private async describe(create: boolean): Promise<KeyShape> {
    let data = await this.readKey();
    if (!data && create) {
      const answer = await this.call('POST', `keys/${this.#name}`, { type: 'aes256-gcm96' });
      if (answer.status !== 200 && answer.status !== 204) throw this.failure(answer, `create key '${this.#name}'`);
      data = await this.readKey();
    }
    if (!data) throw this.missingKey();
    const shape = { type: String(data.type), derived: data.derived === true };
    if (!aeadTypes.has(shape.type)) {
      throw new KeyProviderError(`Vault key '${this.#name}' is of type ${shape.type}; Bastion needs an AEAD encryption key (aes256-gcm96, aes128-gcm96, chacha20-poly1305) so that each wrapped key is bound to its context`);
    }
    return shape;
  }

  /** The key's description, or undefined when Vault has no such key. */
  private async readKey(): Promise<Record<string, unknown> | undefined> {
    const answer = await this.call('GET', `keys/${this.#name}`);
    if (answer.status === 404 && !this.isMissingMount(answer.body)) return undefined;
    if (answer.status !== 200) throw this.failure(answer, `read key '${this.#name}'`);
    return answer.body.data ?? {};
  }

  private async call(method: 'GET' | 'POST', path: string, body?: object): Promise<VaultAnswer> {
    const url = new URL(`${this.#address}/v1/${this.#mount}/${path}`);
    const headers: Record<string, string> = { 'x-vault-token': this.#token, 'x-vault-request': 'true' };
    if (this.#namespace !== undefined) headers['x-vault-namespace'] = this.#namespace;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let answer: HttpAnswer;
    try {
      answer = await this.#send(url, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) }, this.#timeoutMs);
    } catch (err) {
      throw new KeyProviderError(transportProblem(err, `Vault at ${this.#address}`, this.#timeoutMs));
    }
    return { status: answer.status, body: parseBody(answer.text), ...(answer.location !== undefined ? { location: answer.location } : {}) };
  }

  /** A 404 for the route itself (no Transit engine at the mount) rather than for the key. */
  private isMissingMount(body: VaultBody): boolean {
    return (body.errors ?? []).some((e) => typeof e === 'string' && /no handler for route/i.test(e));
  }

  private failure(answer: VaultAnswer, action: string): KeyProviderError {
    const said = this.vaultErrors(answer.body);
    const where = `Vault at ${this.#address}`;
    if (answer.status >= 300 && answer.status < 400) {
      return new KeyProviderError(`${where} answered the request to ${action} with a redirect (${answer.status} to ${answer.location ?? 'nowhere'}); set the address to the active node or to a load balancer that forwards, since Bastion does not send its token on to another address`);
    }
    if (answer.status === 403) {
      return new KeyProviderError(`${where} refused to ${action} (403 ${said}): the token is unknown, expired or revoked, or its policy does not allow ${this.#mount}/ paths for key '${this.#name}'`);
    }
    if (answer.status === 404 && this.isMissingMount(answer.body)) {
      return new KeyProviderError(`${where} has no Transit secrets engine at '${this.#mount}/'${this.#namespace ? ` in namespace '${this.#namespace}'` : ''} (enable it with: vault secrets enable -path=${this.#mount} transit)`);
    }
    if (answer.status >= 500) return new KeyProviderError(`${where} failed to ${action} (${answer.status} ${said}); it may be sealed, in standby or overloaded`);
    return new KeyProviderError(`${where} could not ${action} (${answer.status} ${said})`);
  }

  private missingKey(): KeyProviderError {
    return new KeyProviderError(`Vault at ${this.#address} has no Transit key '${this.#name}' at '${this.#mount}/' (was the key name or mount changed, or the key deleted?)`);
  }

  /** Vault's own error text, short, and with the token taken out should Vault ever echo it. */
  private vaultErrors(body: VaultBody): string {
    const text = (body.errors ?? []).map(String).join('; ').replace(/\s+/g, ' ').trim() || 'no detail';
    return text.split(this.#token).join('[token]').slice(0, 300);
  }
}

/** The Transit field that binds the context, as chosen by the key's shape (see the class comment). */
function binding(shape: KeyShape, context: string): { associated_data: string } | { context: string } {
  const encoded = Buffer.from(context, 'utf8').toString('base64');
  return shape.derived ? { context: encoded } : { associated_data: encoded };
}

/**
 * Vault before 1.13 does not know `associated_data`, and Vault drops unknown parameters with only a
 * warning: the ciphertext would then not be bound to its context, so that is an error here.
 */
function refuseIgnoredBinding(body: VaultBody): void {
  const ignored = (body.warnings ?? []).some((w) => typeof w === 'string' && w.includes('associated_data'));
  if (ignored) {
    throw new KeyProviderError('Vault ignored associated_data (Vault older than 1.13?), so it would not bind the context to the wrapped key; upgrade Vault or use a key created with derived=true');
  }
}

function versionOf(ciphertext: string): number | undefined {
  const match = /^vault:v(\d{1,9}):[A-Za-z0-9+/]+={0,2}$/.exec(ciphertext);
  return match ? Number(match[1]) : undefined;
}

/** Transit reports creation as Unix seconds for symmetric keys and as an object with `creation_time` for others. */
function creationTime(value: unknown): string {
  if (typeof value === 'number') return new Date(value * 1000).toISOString();
  const text = typeof value === 'string' ? value : (value as { creation_time?: unknown } | null)?.creation_time;
  const ms = typeof text === 'string' ? Date.parse(text) : NaN;
  if (Number.isNaN(ms)) throw new KeyProviderError('Vault reported a key version without a creation time');
  return new Date(ms).toISOString();
}

function parseBody(text: string): VaultBody {
  if (!text.trim()) return {};
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === 'object' && parsed !== null ? (parsed as VaultBody) : {};
  } catch {
    return { errors: ['(an answer that is not JSON)'] };
  }
}

function checkAddress(address: string): string {
  const url = serviceUrl(address, 'Vault address');
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

function checkToken(token: string): string {
  // Checked here so that fetch never reports a bad header value (its message would quote the token).
  if (typeof token !== 'string' || !/^[\x21-\x7e]+$/.test(token)) throw new KeyProviderError('The Vault token is empty or has characters a header cannot carry');
  return token;
}

function checkPath(path: string, what: string): string {
  const trimmed = path.replace(/^\/+|\/+$/g, '');
  if (!/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/.test(trimmed) || trimmed.split('/').some((s) => s === '.' || s === '..')) {
    throw new KeyProviderError(`The Vault ${what} '${path}' is not a plain path`);
  }
  return trimmed;
}

function checkName(name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(name)) throw new KeyProviderError(`The Vault key name '${name}' may hold letters, digits, '_', '.' and '-' only`);
  return name;
}

function checkContext(context: string): void {
  if (typeof context !== 'string' || context.length === 0) throw new KeyProviderError('A wrapped key needs a context to be bound to');
}

function readCa(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new KeyProviderError(`Cannot read the Vault CA file ${path}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`);
  }
}

/**
 * The usual path. Redirects are not followed: fetch would carry X-Vault-Token (not an
 * Authorization header, so not dropped) to wherever Vault pointed.
 */
const fetchSend: Send = async (url, init, timeoutMs) => {
  const response = await fetch(url, { ...init, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
  const location = response.headers.get('location') ?? undefined;
  return { status: response.status, text: await response.text(), ...(location !== undefined ? { location } : {}) };
};

/**
 * With a private CA: the global fetch takes no CA without undici's Agent (not a dependency), and
 * NODE_EXTRA_CA_CERTS would trust that CA for every connection of the process, so node:https.
 */
function httpsSend(ca: string): Send {
  return (url, init, timeoutMs) =>
    new Promise((resolve, reject) => {
      const req = httpsRequest(url, { method: init.method, headers: init.headers, ca, signal: AbortSignal.timeout(timeoutMs) }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), ...(res.headers.location ? { location: res.headers.location } : {}) }));
      });
      req.on('error', reject);
      req.end(init.body);
    });
}

/** Why a request got no answer, from the error's name and code only (messages can quote request details). */
function transportProblem(err: unknown, where: string, timeoutMs: number): string {
  const e = err as { name?: string; code?: string; cause?: { code?: string; name?: string; message?: string } };
  if (e.name === 'TimeoutError' || e.cause?.name === 'TimeoutError' || e.name === 'AbortError') return `${where} did not answer within ${timeoutMs} ms`;
  // fetch's own refusals (a blocked port, say) carry no code, only a short message of their own.
  const code = e.cause?.code ?? e.code ?? e.cause?.message?.slice(0, 80) ?? 'no error code';
  if (/CERT|SELF_SIGNED|ALTNAME|UNABLE_TO_VERIFY/.test(code)) return `${where} has a TLS certificate this server does not trust (${code}); set caFile to the CA that issued it`;
  return `${where} is unreachable (${code})`;
}
