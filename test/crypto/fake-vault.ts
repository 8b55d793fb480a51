import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';

/**
 * A stand-in for Vault's Transit secrets engine on loopback, for tests where no real Vault (or
 * OpenBao) binary can be installed. It follows Transit's HTTP API closely enough to exercise a
 * client: real AES-256-GCM with versioned keys and Vault's `vault:vN:base64(nonce|ciphertext|tag)`
 * text, `associated_data` as GCM AAD, derived keys (a key per context, HKDF here rather than
 * Vault's KDF), X-Vault-Token checked on every call, Vault's status codes and `{"errors": [...]}`.
 */
export interface FakeVaultOptions {
  token: string;
  /** When set, requests must name this namespace in X-Vault-Namespace. */
  namespace?: string;
  /** Serve https with this certificate. */
  tls?: { cert: string; key: string };
}

interface FakeKey {
  type: string;
  derived: boolean;
  versions: { key: Buffer; created: number }[];
  minDecryptionVersion: number;
}

export interface SeenRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

const aeadTypes = new Set(['aes128-gcm96', 'aes256-gcm96', 'chacha20-poly1305', 'xchacha20-poly1305']);

export class FakeVault {
  readonly requests: SeenRequest[] = [];
  /** Answer 503 "Vault is sealed" to everything. */
  sealed = false;
  /** Behave as Vault before 1.13: drop `associated_data` with a warning instead of using it. */
  ignoresAssociatedData = false;
  /** Answer everything with a 307 to this address (a standby node pointing at the active one). */
  redirectTo: string | undefined;
  private readonly options: FakeVaultOptions;
  private readonly mounts = new Map<string, Map<string, FakeKey>>();
  private server: Server | undefined;

  constructor(options: FakeVaultOptions) {
    this.options = options;
  }

  async start(): Promise<string> {
    const handler = (req: IncomingMessage, res: ServerResponse) => this.receive(req, res);
    this.server = this.options.tls ? createHttpsServer({ cert: this.options.tls.cert, key: this.options.tls.key }, handler) : createHttpServer(handler);
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    const port = (this.server.address() as { port: number }).port;
    return `${this.options.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** As `vault secrets enable -path=<path> transit`. */
  enableTransit(path = 'transit'): void {
    if (!this.mounts.has(path)) this.mounts.set(path, new Map());
  }

  /** As `vault write <mount>/keys/<name> type=... derived=...`. */
  createKey(mount: string, name: string, type = 'aes256-gcm96', derived = false): void {
    this.mounts.get(mount)!.set(name, { type, derived, versions: [{ key: randomBytes(32), created: Math.floor(Date.now() / 1000) }], minDecryptionVersion: 1 });
  }

  key(mount: string, name: string): FakeKey | undefined {
    return this.mounts.get(mount)?.get(name);
  }

  private receive(req: IncomingMessage, res: ServerResponse): void {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      this.requests.push({ method: req.method!, path: req.url!, headers: req.headers, body });
      const [status, answer, headers] = this.answer(req, body);
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(answer === undefined ? '' : JSON.stringify(answer));
    });
  }

  private answer(req: IncomingMessage, body: string): [number, unknown?, Record<string, string>?] {
    if (this.redirectTo) return [307, undefined, { location: `${this.redirectTo}${req.url}` }];
    if (this.sealed) return [503, { errors: ['Vault is sealed'] }];
    if (req.headers['x-vault-token'] !== this.options.token) return [403, { errors: ['permission denied'] }];
    if (this.options.namespace !== undefined && req.headers['x-vault-namespace'] !== this.options.namespace) return [403, { errors: ['permission denied'] }];
    const path = new URL(req.url!, 'http://x').pathname.replace(/^\/v1\//, '');
    let input: Record<string, unknown> = {};
    try {
      input = body ? JSON.parse(body) : {};
    } catch {
      return [400, { errors: ['failed to parse JSON input'] }];
    }
    const mounted = path.match(/^sys\/mounts\/(.+)$/);
    if (mounted && req.method === 'POST') {
      if (input.type !== 'transit') return [400, { errors: ['only transit here'] }];
      this.enableTransit(mounted[1]);
      return [204];
    }
    const mount = [...this.mounts.keys()].filter((m) => path.startsWith(`${m}/`)).sort((a, b) => b.length - a.length)[0];
    if (mount === undefined) return [404, { errors: [`no handler for route "${path}". route entry not found.`] }];
    return this.transit(req.method!, mount, path.slice(mount.length + 1), input);
  }

  private transit(method: string, mount: string, rest: string, input: Record<string, unknown>): [number, unknown?] {
    const keys = this.mounts.get(mount)!;
    let m: RegExpMatchArray | null;
    if ((m = rest.match(/^keys\/([^/]+)$/))) {
      if (method === 'GET') {
        const key = keys.get(m[1]);
        return key ? [200, { data: describe(m[1], key) }] : [404, { errors: [] }];
      }
      if (!keys.has(m[1])) this.createKey(mount, m[1], typeof input.type === 'string' ? input.type : 'aes256-gcm96', input.derived === true);
      return [204];
    }
    if ((m = rest.match(/^keys\/([^/]+)\/rotate$/)) && method === 'POST') {
      const key = keys.get(m[1]);
      if (!key) return [400, { errors: ['key not found'] }];
      key.versions.push({ key: randomBytes(32), created: Math.floor(Date.now() / 1000) });
      return [200, { data: describe(m[1], key) }];
    }
    if ((m = rest.match(/^encrypt\/([^/]+)$/)) && method === 'POST') {
      // Transit's encrypt creates a missing key (an upsert), as Vault does.
      if (!keys.has(m[1])) this.createKey(mount, m[1]);
      return this.encrypt(keys.get(m[1])!, input);
    }
    if ((m = rest.match(/^decrypt\/([^/]+)$/)) && method === 'POST') {
      const key = keys.get(m[1]);
      if (!key) return [400, { errors: ['encryption key not found'] }];
      return this.decrypt(key, input);
    }
    return [404, { errors: [`no handler for route "${mount}/${rest}". route entry not found.`] }];
  }

  private encrypt(key: FakeKey, input: Record<string, unknown>): [number, unknown?] {
    const bound = this.binding(key, input);
    if ('error' in bound) return [400, { errors: [bound.error] }];
    if (typeof input.plaintext !== 'string') return [400, { errors: ['missing plaintext to encrypt'] }];
    const version = key.versions.length;
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', versionKey(key, version, bound.context), nonce);
    if (bound.aad) cipher.setAAD(bound.aad);
    const sealed = Buffer.concat([nonce, cipher.update(Buffer.from(input.plaintext, 'base64')), cipher.final(), cipher.getAuthTag()]);
    return [200, { data: { ciphertext: `vault:v${version}:${sealed.toString('base64')}`, key_version: version }, ...bound.warnings }];
  }

  private decrypt(key: FakeKey, input: Record<string, unknown>): [number, unknown?] {
    const bound = this.binding(key, input);
    if ('error' in bound) return [400, { errors: [bound.error] }];
    const text = String(input.ciphertext ?? '');
    const m = /^vault:v(\d+):(.*)$/.exec(text);
    if (!m) return [400, { errors: ['invalid ciphertext: no prefix'] }];
    const version = Number(m[1]);
    if (version < 1 || version > key.versions.length) return [400, { errors: ['invalid key version'] }];
    if (version < key.minDecryptionVersion) return [400, { errors: ['ciphertext or signature version is disallowed by policy (too old)'] }];
    const raw = Buffer.from(m[2], 'base64');
    if (raw.length < 28) return [400, { errors: ['invalid ciphertext: unable to decrypt'] }];
    try {
      const decipher = createDecipheriv('aes-256-gcm', versionKey(key, version, bound.context), raw.subarray(0, 12));
      if (bound.aad) decipher.setAAD(bound.aad);
      decipher.setAuthTag(raw.subarray(raw.length - 16));
      const plain = Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]);
      return [200, { data: { plaintext: plain.toString('base64') }, ...bound.warnings }];
    } catch {
      return [400, { errors: ['cipher: message authentication failed'] }];
    }
  }

  /** The AAD and derivation context a request carries, as Transit checks them. */
  private binding(key: FakeKey, input: Record<string, unknown>): { error: string } | { aad?: Buffer; context?: Buffer; warnings: { warnings?: string[] } } {
    if (key.type.startsWith('rsa')) return { error: `key type ${key.type} is not supported by this fake for encryption` };
    const context = typeof input.context === 'string' && input.context ? Buffer.from(input.context, 'base64') : undefined;
    if (key.derived && !context) return { error: "missing 'context' for key derivation; the key was created using a derived key, which means additional, per-request information must be included in order to perform operations with the key" };
    let aad: Buffer | undefined;
    let warnings = {};
    if (typeof input.associated_data === 'string' && input.associated_data) {
      if (this.ignoresAssociatedData) warnings = { warnings: ['Endpoint ignored these unrecognized parameters: [associated_data]'] };
      else if (!aeadTypes.has(key.type)) return { error: 'associated data not supported for key type' };
      else aad = Buffer.from(input.associated_data, 'base64');
    }
    return { ...(aad ? { aad } : {}), ...(context ? { context } : {}), warnings };
  }
}

function versionKey(key: FakeKey, version: number, context: Buffer | undefined): Buffer {
  const base = key.versions[version - 1].key;
  return key.derived ? Buffer.from(hkdfSync('sha256', base, Buffer.alloc(0), context!, 32)) : base;
}

/** As Transit's GET keys/<name>: creation times as Unix seconds for symmetric keys. */
function describe(name: string, key: FakeKey): Record<string, unknown> {
  return {
    name,
    type: key.type,
    derived: key.derived,
    keys: Object.fromEntries(key.versions.map((v, i) => [String(i + 1), v.created])),
    latest_version: key.versions.length,
    min_decryption_version: key.minDecryptionVersion,
    min_encryption_version: 0,
    supports_encryption: true,
    supports_decryption: true,
    supports_derivation: true,
    deletion_allowed: false,
    exportable: false,
  };
}
