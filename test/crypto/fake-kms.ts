import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import aws4 from 'aws4';

/**
 * A stand-in for AWS KMS (the TrentService JSON protocol) on loopback. Every request's SigV4
 * signature is verified by signing the received request again with the known secret, as AWS does;
 * Encrypt/Decrypt use real AES-256-GCM with the encryption context as AAD, one key material per
 * rotation, and the ciphertext blob records key and material as KMS's own does (opaquely). Errors
 * are KMS's: HTTP 400 with `{"__type": ..., "message": ...}`.
 */
export interface FakeKmsOptions {
  region: string;
  account: string;
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Answer as KMS did before key material ids (no KeyMaterialId, no CurrentKeyMaterialId, no initial entry). */
  legacy?: boolean;
  /** An on-demand rotation completes (is listed and used) only this long after it was asked for. */
  rotationLagMs?: number;
  /** ListKeyRotations pages hold at most this many entries (to exercise paging). */
  pageSize?: number;
}

interface Material {
  id: string;
  key: Buffer;
  /** When the material became (or becomes) current, epoch ms. */
  from: number;
  rotationType?: 'AUTOMATIC' | 'ON_DEMAND';
}

interface FakeKey {
  id: string;
  arn: string;
  created: number;
  materials: Material[];
}

export interface SeenKmsRequest {
  target: string;
  headers: IncomingMessage['headers'];
  input: Record<string, unknown>;
}

type Answer = [number, Record<string, unknown>];

export class FakeKms {
  readonly requests: SeenKmsRequest[] = [];
  /** Operations refused with AccessDeniedException, as a key policy that leaves them out would. */
  readonly denied = new Set<string>();
  private readonly options: FakeKmsOptions;
  private readonly keys = new Map<string, FakeKey>();
  private readonly aliases = new Map<string, string>();
  private server: Server | undefined;

  constructor(options: FakeKmsOptions) {
    this.options = options;
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => this.receive(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** As CreateKey (symmetric, AWS_KMS origin), with an optional alias; `createdAt` backdates it. */
  createKey(alias?: string, createdAt = Date.now()): { keyId: string; arn: string } {
    const id = randomUUID();
    const arn = `arn:aws:kms:${this.options.region}:${this.options.account}:key/${id}`;
    this.keys.set(id, { id, arn, created: createdAt, materials: [{ id: materialId(), key: randomBytes(32), from: createdAt }] });
    if (alias) this.aliases.set(alias, id);
    return { keyId: id, arn };
  }

  /** The material a blob was made with, read back from the blob (as only KMS itself could). */
  materialOf(blobBase64: string): string {
    return Buffer.from(blobBase64, 'base64').subarray(37, 69).toString('hex');
  }

  private receive(req: IncomingMessage, res: ServerResponse): void {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      const [status, answer] = this.answer(req, body);
      res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' }).end(JSON.stringify(answer));
    });
  }

  private answer(req: IncomingMessage, body: string): Answer {
    const target = String(req.headers['x-amz-target'] ?? '');
    let input: Record<string, unknown> = {};
    try {
      input = JSON.parse(body);
    } catch {
      return refuse('SerializationException', 'Start of structure or map found where not expected.');
    }
    this.requests.push({ target, headers: req.headers, input });
    const signature = this.checkSignature(req, body);
    if (signature) return signature;
    if (req.method !== 'POST' || req.url !== '/' || req.headers['content-type'] !== 'application/x-amz-json-1.1') return refuse('UnknownOperationException', '');
    const operation = target.replace(/^TrentService\./, '');
    if (this.denied.has(operation)) {
      return refuse('AccessDeniedException', `User: arn:aws:iam::${this.options.account}:user/bastion is not authorized to perform: kms:${operation} on resource: ${String(input.KeyId)} because no resource-based policy allows the kms:${operation} action`);
    }
    switch (target) {
      case 'TrentService.Encrypt': return this.encrypt(input);
      case 'TrentService.Decrypt': return this.decrypt(input);
      case 'TrentService.RotateKeyOnDemand': return this.rotate(input);
      case 'TrentService.ListKeyRotations': return this.listRotations(input);
      case 'TrentService.DescribeKey': return this.describe(input);
      default: return refuse('UnknownOperationException', '');
    }
  }

  /** SigV4 as AWS checks it: a known access key, a fresh date, and the same signature when signed again. */
  private checkSignature(req: IncomingMessage, body: string): Answer | undefined {
    const authorization = String(req.headers.authorization ?? '');
    const parts = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=[0-9a-f]{64}$/.exec(authorization);
    if (!parts) return refuse('IncompleteSignatureException', 'Authorization header requires Credential, SignedHeaders and Signature');
    const { credentials } = this.options;
    if (parts[1] !== credentials.accessKeyId) return refuse('UnrecognizedClientException', 'The security token included in the request is invalid.');
    if ((credentials.sessionToken ?? undefined) !== req.headers['x-amz-security-token']) return refuse('UnrecognizedClientException', 'The security token included in the request is invalid.');
    if (parts[3] !== this.options.region || parts[4] !== 'kms') return refuse('InvalidSignatureException', 'Credential should be scoped to a valid region and service.');
    const signedAt = Date.parse(String(req.headers['x-amz-date']).replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, '$1-$2-$3T$4:$5:$6Z'));
    if (!(Math.abs(Date.now() - signedAt) < 5 * 60_000)) return refuse('InvalidSignatureException', 'Signature expired');
    const names = parts[5].split(';');
    if (!names.includes('host') || !names.includes('x-amz-date') || !names.includes('x-amz-target')) return refuse('InvalidSignatureException', 'host, x-amz-date and x-amz-target must be signed');
    const headers = Object.fromEntries(names.map((n) => [n, String(req.headers[n])]));
    const again = aws4.sign({ host: String(req.headers.host), path: req.url, method: req.method, service: 'kms', region: this.options.region, body, headers }, credentials);
    if ((again.headers as Record<string, string>).Authorization !== authorization) {
      return refuse('InvalidSignatureException', 'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.');
    }
    return undefined;
  }

  private encrypt(input: Record<string, unknown>): Answer {
    const key = this.resolve(input.KeyId);
    if (!key) return refuse('NotFoundException', `Key '${String(input.KeyId)}' does not exist`);
    const plaintext = Buffer.from(String(input.Plaintext ?? ''), 'base64');
    if (plaintext.length < 1 || plaintext.length > 4096) return refuse('ValidationException', "1 validation error detected: Value at 'plaintext' failed to satisfy constraint");
    const material = this.current(key);
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', material.key, iv);
    cipher.setAAD(contextBytes(input.EncryptionContext));
    const sealed = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    // Blob: version byte, key id (36), material id (32), iv (12), tag (16), ciphertext.
    const blob = Buffer.concat([Buffer.from([1]), Buffer.from(key.id), Buffer.from(material.id, 'hex'), iv, cipher.getAuthTag(), sealed]);
    return [200, { CiphertextBlob: blob.toString('base64'), KeyId: key.arn, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' }];
  }

  private decrypt(input: Record<string, unknown>): Answer {
    const blob = Buffer.from(String(input.CiphertextBlob ?? ''), 'base64');
    if (blob.length < 1 + 36 + 32 + 12 + 16 + 1 || blob[0] !== 1) return refuse('InvalidCiphertextException', '');
    const key = this.keys.get(blob.subarray(1, 37).toString());
    const material = key?.materials.find((m) => m.id === blob.subarray(37, 69).toString('hex'));
    if (!key || !material) return refuse('InvalidCiphertextException', '');
    if (input.KeyId !== undefined) {
      const named = this.resolve(input.KeyId);
      if (!named) return refuse('NotFoundException', `Key '${String(input.KeyId)}' does not exist`);
      if (named !== key) return refuse('IncorrectKeyException', 'The key ID in the request does not identify a CMK that can perform this operation.');
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', material.key, blob.subarray(69, 81));
      decipher.setAAD(contextBytes(input.EncryptionContext));
      decipher.setAuthTag(blob.subarray(81, 97));
      const plaintext = Buffer.concat([decipher.update(blob.subarray(97)), decipher.final()]);
      return [200, { Plaintext: plaintext.toString('base64'), KeyId: key.arn, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT', ...(this.options.legacy ? {} : { KeyMaterialId: material.id }) }];
    } catch {
      return refuse('InvalidCiphertextException', '');
    }
  }

  private rotate(input: Record<string, unknown>): Answer {
    const key = this.resolve(input.KeyId, false);
    if (!key) return refuse('NotFoundException', `Key '${String(input.KeyId)}' does not exist`);
    key.materials.push({ id: materialId(), key: randomBytes(32), from: Date.now() + (this.options.rotationLagMs ?? 0), rotationType: 'ON_DEMAND' });
    return [200, { KeyId: key.arn }];
  }

  private listRotations(input: Record<string, unknown>): Answer {
    const key = this.resolve(input.KeyId, false);
    if (!key) return refuse('NotFoundException', `Key '${String(input.KeyId)}' does not exist`);
    const all = input.IncludeKeyMaterial === 'ALL_KEY_MATERIAL' && !this.options.legacy;
    const current = this.current(key);
    const listed = this.completed(key).filter((m) => all || m.rotationType).map((m) => ({
      KeyId: key.arn,
      ...(m.rotationType ? { RotationDate: m.from / 1000, RotationType: m.rotationType } : {}),
      ...(this.options.legacy ? {} : { KeyMaterialId: m.id, KeyMaterialState: m === current ? 'CURRENT' : 'NON_CURRENT' }),
    }));
    const start = Number(input.Marker ?? 0);
    const size = Math.min(Number(input.Limit ?? 100), this.options.pageSize ?? 100);
    const page = listed.slice(start, start + size);
    const more = start + size < listed.length;
    return [200, { Rotations: page, Truncated: more, ...(more ? { NextMarker: String(start + size) } : {}) }];
  }

  private describe(input: Record<string, unknown>): Answer {
    const key = this.resolve(input.KeyId);
    if (!key) return refuse('NotFoundException', `Key '${String(input.KeyId)}' does not exist`);
    return [200, {
      KeyMetadata: {
        AWSAccountId: this.options.account,
        KeyId: key.id,
        Arn: key.arn,
        CreationDate: key.created / 1000,
        Enabled: true,
        KeyState: 'Enabled',
        KeyUsage: 'ENCRYPT_DECRYPT',
        KeySpec: 'SYMMETRIC_DEFAULT',
        Origin: 'AWS_KMS',
        ...(this.options.legacy ? {} : { CurrentKeyMaterialId: this.current(key).id }),
      },
    }];
  }

  /** Key id, key ARN, alias name or alias ARN, as KMS accepts them (RotateKeyOnDemand and ListKeyRotations take no alias). */
  private resolve(keyId: unknown, aliasAllowed = true): FakeKey | undefined {
    const text = String(keyId ?? '');
    const alias = aliasAllowed ? /^(?:arn:aws:kms:[^:]+:\d{12}:)?(alias\/.+)$/.exec(text)?.[1] : undefined;
    const id = alias ? this.aliases.get(alias) : /^(?:arn:aws:kms:[^:]+:\d{12}:key\/)?([0-9a-f-]{36})$/.exec(text)?.[1];
    return id ? this.keys.get(id) : undefined;
  }

  private completed(key: FakeKey): Material[] {
    return key.materials.filter((m) => m.from <= Date.now());
  }

  private current(key: FakeKey): Material {
    return this.completed(key).at(-1)!;
  }
}

function refuse(type: string, message: string): Answer {
  return [400, { __type: type, message }];
}

function materialId(): string {
  return randomBytes(32).toString('hex');
}

/** The encryption context as AAD: the same pairs give the same bytes whatever their order. */
function contextBytes(context: unknown): Buffer {
  const pairs = Object.entries((context ?? {}) as Record<string, string>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Buffer.from(JSON.stringify(pairs));
}
