import { timingSafeEqual } from 'node:crypto';
import aws4 from 'aws4';
import { serviceUrl } from './service-url.ts';
import { KeyProviderError, type KekVersion, type KeyProvider, type WrappedKey } from '../key-provider.ts';

export interface AwsKmsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** Where the KEK lives in AWS KMS. */
export interface AwsKmsSettings {
  /** e.g. `eu-west-1`. */
  region: string;
  /** A symmetric encryption KMS key: key id, key ARN, alias name (`alias/bastion`) or alias ARN. */
  keyId: string;
  /** A KMS-compatible endpoint (a VPC endpoint, a test double); https, or http only to a loopback address. Default: the region's public endpoint. */
  endpoint?: string;
  /** Used to sign requests (SigV4) and kept privately: never sent, logged or put in an error. */
  credentials: AwsKmsCredentials;
  /** Per request; default 10 s. */
  timeoutMs?: number;
  /** How long rotate() waits for KMS to finish an on-demand rotation (it completes asynchronously); default 60 s. */
  rotationWaitMs?: number;
}

type KmsAnswer = Record<string, unknown>;

/** One key material of the KMS key, oldest first. */
interface Material {
  id: string | undefined;
  created: string;
  state: string | undefined;
}

/**
 * A KeyProvider whose KEK is an AWS KMS symmetric key. wrap is KMS Encrypt with the context as the
 * encryption context `{bastion: <context>}` (KMS binds it as AAD and records it in CloudTrail),
 * unwrap is Decrypt with the same context; the key never leaves KMS.
 *
 * KMS rotates by adding key material under the same key ARN and picks the right material from the
 * ciphertext itself, so the ARN alone is enough to unwrap. The KEK id is `<key ARN>#<key material
 * id>` when KMS tells which material was used (Decrypt answers with KeyMaterialId; Encrypt does
 * not, so wrap decrypts its own result once, which also proves that this identity may unwrap what
 * it wraps before any data depends on it), and the bare ARN from KMS-compatible services that
 * predate key material ids.
 */
export class AwsKmsProvider implements KeyProvider {
  readonly kind = 'aws-kms';
  readonly #credentials: AwsKmsCredentials;
  readonly #endpoint: URL;
  readonly #region: string;
  readonly #keyId: string;
  readonly #timeoutMs: number;
  readonly #rotationWaitMs: number;

  constructor(settings: AwsKmsSettings) {
    this.#region = checkRegion(settings.region);
    this.#keyId = checkKeyId(settings.keyId);
    this.#endpoint = checkEndpoint(settings.endpoint ?? defaultEndpoint(this.#region));
    this.#credentials = checkCredentials(settings.credentials);
    this.#timeoutMs = settings.timeoutMs ?? 10_000;
    this.#rotationWaitMs = settings.rotationWaitMs ?? 60_000;
  }

  async wrap(dataKey: Buffer, context: string): Promise<WrappedKey> {
    checkContext(context);
    if (dataKey.length === 0 || dataKey.length > 4096) throw new KeyProviderError('A data key to wrap with KMS must be 1 to 4096 bytes');
    const answer = await this.call('Encrypt', { KeyId: this.#keyId, Plaintext: dataKey.toString('base64'), EncryptionContext: { bastion: context } });
    const ciphertext = text(answer.CiphertextBlob);
    const arn = text(answer.KeyId);
    if (!ciphertext || !arn || !keyArn.test(arn)) throw new KeyProviderError('KMS Encrypt answered without a ciphertext or a key ARN');
    const check = await this.decrypt(ciphertext, arn, context, 'check that it can unwrap the key it just wrapped');
    if (check.plaintext.length !== dataKey.length || !timingSafeEqual(check.plaintext, dataKey)) {
      throw new KeyProviderError(`KMS key ${arn} did not give back the data key it just wrapped`);
    }
    const note = check.materialId && materialId.test(check.materialId) ? `#${check.materialId}` : '';
    return { provider: this.kind, kek: `${arn}${note}`, ciphertext };
  }

  async unwrap(wrapped: WrappedKey, context: string): Promise<Buffer> {
    checkContext(context);
    const kek = this.checkWrapped(wrapped);
    // The ARN recorded at wrap time, not settings.keyId: an alias may since point at another key.
    const result = await this.decrypt(wrapped.ciphertext, kek.arn, context, 'unwrap a data key');
    if (kek.materialId && result.materialId && kek.materialId !== result.materialId) {
      throw new KeyProviderError(`The wrapped data key's record names key material ${kek.materialId}, but its ciphertext is under ${result.materialId}: the record was altered`);
    }
    return result.plaintext;
  }

  async rotate(): Promise<KekVersion> {
    const before = await this.versions();
    // RotateKeyOnDemand and ListKeyRotations take a key id or ARN, not an alias.
    const { arn } = await this.describeKey();
    await this.call('RotateKeyOnDemand', { KeyId: arn });
    // KMS finishes an on-demand rotation in the background; ListKeyRotations shows it once done.
    const deadline = Date.now() + this.#rotationWaitMs;
    for (let delay = 250; ; delay = Math.min(delay * 2, 2_000)) {
      const now = await this.versions();
      if (now.length > before.length) return now.find((v) => v.current)!;
      if (Date.now() + delay > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
    throw new KeyProviderError(`KMS accepted the on-demand rotation of ${arn} but had not completed it after ${Math.round(this.#rotationWaitMs / 1000)} s; versions() will list the new key material once it has`);
  }

  async versions(): Promise<KekVersion[]> {
    const { arn, created, currentMaterialId } = await this.describeKey();
    const materials = withInitial(await this.rotations(arn), created, currentMaterialId);
    const current = materials.some((m) => m.state === 'CURRENT') ? materials.findIndex((m) => m.state === 'CURRENT') : materials.length - 1;
    return materials.map((m, i) => ({ id: `${arn}#${m.id ?? m.created}`, created: m.created, current: i === current }));
  }

  private async describeKey(): Promise<{ arn: string; created: string; currentMaterialId: string | undefined }> {
    const metadata = (await this.call('DescribeKey', { KeyId: this.#keyId })).KeyMetadata as KmsAnswer | undefined;
    const arn = text(metadata?.Arn);
    const created = timestamp(metadata?.CreationDate);
    if (!arn || !created) throw new KeyProviderError('KMS DescribeKey answered without the key ARN or creation date');
    return { arn, created, currentMaterialId: text(metadata?.CurrentKeyMaterialId) };
  }

  /** Every key material KMS lists for the key (all pages), the initial one included where KMS can. */
  private async rotations(arn: string): Promise<(Material & { rotation: boolean })[]> {
    const entries: KmsAnswer[] = [];
    let marker: string | undefined;
    for (let page = 0; page < 100; page++) {
      let answer: KmsAnswer;
      try {
        answer = await this.call('ListKeyRotations', { KeyId: arn, IncludeKeyMaterial: 'ALL_KEY_MATERIAL', Limit: 1000, ...(marker ? { Marker: marker } : {}) });
      } catch (err) {
        // Keys that cannot rotate (custom key stores) have only their first material.
        if (err instanceof KmsRefusal && err.type === 'UnsupportedOperationException') return [];
        throw err;
      }
      entries.push(...((answer.Rotations as KmsAnswer[] | undefined) ?? []));
      marker = text(answer.NextMarker);
      if (answer.Truncated !== true || !marker) break;
    }
    return entries
      .filter((e) => e.KeyMaterialState !== 'PENDING_ROTATION')
      .map((e) => ({ id: text(e.KeyMaterialId), created: timestamp(e.RotationDate) ?? '', state: text(e.KeyMaterialState), rotation: e.RotationType !== undefined }));
  }

  private async decrypt(ciphertext: string, keyArn: string, context: string, action: string): Promise<{ plaintext: Buffer; materialId: string | undefined }> {
    const answer = await this.call('Decrypt', { CiphertextBlob: ciphertext, KeyId: keyArn, EncryptionContext: { bastion: context } }, action);
    const plaintext = text(answer.Plaintext);
    if (plaintext === undefined) throw new KeyProviderError('KMS Decrypt answered without a plaintext');
    return { plaintext: Buffer.from(plaintext, 'base64'), materialId: text(answer.KeyMaterialId) };
  }

  private checkWrapped(wrapped: WrappedKey): { arn: string; materialId: string | undefined } {
    if (wrapped.provider !== this.kind) throw new KeyProviderError(`The data key was wrapped by ${wrapped.provider}, not by AWS KMS`);
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(wrapped.ciphertext)) throw new KeyProviderError(`The wrapped data key under ${wrapped.kek} is not a KMS ciphertext (altered or truncated)`);
    const [arn, note, ...rest] = wrapped.kek.split('#');
    if (!keyArn.test(arn) || rest.length > 0 || (note !== undefined && !materialId.test(note))) throw new KeyProviderError(`The wrapped data key's KEK '${wrapped.kek}' is not a KMS key ARN`);
    return { arn, materialId: note };
  }

  /** One KMS JSON-protocol call, signed with SigV4; refusals become KeyProviderErrors an operator can act on. */
  private async call(operation: string, input: object, action = describeAction(operation)): Promise<KmsAnswer> {
    const body = JSON.stringify(input);
    const signed = aws4.sign({
      host: this.#endpoint.host,
      path: this.#endpoint.pathname,
      method: 'POST',
      service: 'kms',
      region: this.#region,
      protocol: this.#endpoint.protocol,
      body,
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `TrentService.${operation}` },
    }, this.#credentials);
    let response: Response;
    let reply: string;
    try {
      response = await fetch(this.#endpoint, { method: 'POST', headers: signed.headers as Record<string, string>, body, redirect: 'manual', signal: AbortSignal.timeout(this.#timeoutMs) });
      reply = await response.text();
    } catch (err) {
      throw new KeyProviderError(transportProblem(err, `KMS at ${this.#endpoint.origin}`, this.#timeoutMs));
    }
    const parsed = parseJson(reply);
    if (response.status === 200) return parsed;
    throw this.refusal(operation, action, response, parsed);
  }

  private refusal(operation: string, action: string, response: Response, body: KmsAnswer): KmsRefusal {
    const type = (text(body.__type) ?? response.headers.get('x-amzn-errortype') ?? `HTTP ${response.status}`).split('#').pop()!.split(':')[0];
    const said = this.scrub(text(body.message) ?? text(body.Message) ?? '');
    const why = explanations[type] ?? (response.status >= 500 ? 'KMS failed; try again later' : 'KMS refused the request');
    return new KmsRefusal(type, `KMS ${operation} failed, so Bastion could not ${action}: ${why} (${response.status} ${type}${said ? `: ${said}` : ''})`);
  }

  /** AWS messages name principals and keys, which helps; the secrets themselves must never appear. */
  private scrub(message: string): string {
    let out = message.replace(/\s+/g, ' ').slice(0, 300);
    for (const secret of [this.#credentials.secretAccessKey, this.#credentials.sessionToken]) if (secret) out = out.split(secret).join('[secret]');
    return out;
  }
}

/** A refusal from KMS, with its error type kept for the callers that handle one. */
class KmsRefusal extends KeyProviderError {
  readonly type: string;
  constructor(type: string, message: string) {
    super(message);
    this.type = type;
  }
}

const keyArn = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]+$/;
const materialId = /^[A-Za-z0-9]{1,128}$/;

const explanations: Record<string, string> = {
  InvalidCiphertextException: 'the context differs from the one the key was wrapped with, or the wrapped bytes were altered',
  IncorrectKeyException: 'the wrapped key was made under a different KMS key',
  NotFoundException: 'KMS has no such key in this region and account',
  DisabledException: 'the KMS key is disabled',
  KMSInvalidStateException: 'the KMS key cannot be used in its current state (pending deletion, pending import, or unavailable)',
  KeyUnavailableException: 'the KMS key is unavailable right now',
  AccessDeniedException: 'the key policy or the IAM policy of these credentials does not allow this operation on the key',
  UnrecognizedClientException: 'KMS does not recognise the access key id or session token (wrong, deleted or expired credentials)',
  InvalidSignatureException: 'KMS rejected the request signature: the secret access key does not match the access key id, or the clock is off',
  IncompleteSignatureException: 'KMS rejected the request signature as incomplete',
  ExpiredTokenException: 'the session token has expired; renew the credentials',
  ThrottlingException: 'KMS is throttling these requests; try again later',
  LimitExceededException: 'a KMS limit was reached (on-demand rotations of one key are limited)',
  UnsupportedOperationException: 'the KMS key does not support this operation (it must be a symmetric encryption key)',
  KMSInternalException: 'KMS had an internal error; try again later',
  DependencyTimeoutException: 'KMS timed out internally; try again later',
  ValidationException: 'KMS found the request invalid',
};

function describeAction(operation: string): string {
  switch (operation) {
    case 'Encrypt': return 'wrap a data key';
    case 'RotateKeyOnDemand': return 'rotate the key';
    default: return 'list the key versions';
  }
}

/**
 * The materials oldest first, the initial one first. KMS lists it (with its material id) only for
 * IncludeKeyMaterial=ALL_KEY_MATERIAL, and it is the entry that is not a rotation; where it is not
 * listed it is made from DescribeKey: its creation date, and its material id while it is still current.
 */
function withInitial(listed: (Material & { rotation: boolean })[], keyCreated: string, currentMaterialId: string | undefined): Material[] {
  const rotations = listed.filter((m) => m.rotation).sort((a, b) => a.created.localeCompare(b.created));
  const first = listed.find((m) => !m.rotation);
  const initial: Material = first
    ? { id: first.id, created: first.created || keyCreated, state: first.state }
    : { id: rotations.length === 0 ? currentMaterialId : undefined, created: keyCreated, state: undefined };
  return [initial, ...rotations].map(({ id, created, state }) => ({ id, created, state }));
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

/** KMS's JSON protocol gives times as epoch seconds (with a fraction). */
function timestamp(value: unknown): string | undefined {
  const ms = typeof value === 'number' ? value * 1000 : typeof value === 'string' ? Date.parse(value) : NaN;
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString();
}

function parseJson(reply: string): KmsAnswer {
  try {
    const parsed: unknown = JSON.parse(reply);
    return typeof parsed === 'object' && parsed !== null ? (parsed as KmsAnswer) : {};
  } catch {
    return {};
  }
}

function defaultEndpoint(region: string): string {
  return `https://kms.${region}.amazonaws.com${region.startsWith('cn-') ? '.cn' : ''}`;
}

function checkRegion(region: string): string {
  if (!/^[a-z]{2}(-[a-z]+)+-\d{1,2}$/.test(region)) throw new KeyProviderError(`'${region}' is not an AWS region name`);
  return region;
}

function checkKeyId(keyId: string): string {
  if (typeof keyId !== 'string' || !/^[A-Za-z0-9:/_-]{1,2048}$/.test(keyId)) throw new KeyProviderError('The KMS keyId must be a key id, key ARN, alias name or alias ARN');
  return keyId;
}

function checkEndpoint(endpoint: string): URL {
  return serviceUrl(endpoint, 'KMS endpoint');
}

function checkCredentials(credentials: AwsKmsCredentials): AwsKmsCredentials {
  const printable = (v: unknown) => typeof v === 'string' && /^[\x21-\x7e]+$/.test(v);
  if (!credentials || !/^[A-Z0-9]{16,128}$/.test(credentials.accessKeyId) || !printable(credentials.secretAccessKey)) {
    throw new KeyProviderError('AWS credentials need an access key id and a secret access key');
  }
  if (credentials.sessionToken !== undefined && !printable(credentials.sessionToken)) throw new KeyProviderError('The AWS session token has characters a header cannot carry');
  // A copy: later changes to the caller's object do not reach the signer.
  return { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey, ...(credentials.sessionToken ? { sessionToken: credentials.sessionToken } : {}) };
}

function checkContext(context: string): void {
  if (typeof context !== 'string' || context.length === 0) throw new KeyProviderError('A wrapped key needs a context to be bound to');
}

/** Why a request got no answer, from the error's name and code only (messages can quote request details). */
function transportProblem(err: unknown, where: string, timeoutMs: number): string {
  const e = err as { name?: string; code?: string; cause?: { code?: string; name?: string; message?: string } };
  if (e.name === 'TimeoutError' || e.cause?.name === 'TimeoutError' || e.name === 'AbortError') return `${where} did not answer within ${timeoutMs} ms`;
  const code = e.cause?.code ?? e.code ?? e.cause?.message?.slice(0, 80) ?? 'no error code';
  if (/CERT|SELF_SIGNED|ALTNAME|UNABLE_TO_VERIFY/.test(code)) return `${where} has a TLS certificate this server does not trust (${code})`;
  return `${where} is unreachable (${code})`;
}
