import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createRequire } from 'node:module';
import { KeyProviderError, type KekVersion, type KeyProvider, type WrappedKey } from '../key-provider.ts';

/** Where the KEK lives: an AES-256 secret key object on a PKCS#11 token (an HSM, or SoftHSM2 in tests). */
export interface Pkcs11Settings {
  /** The vendor's PKCS#11 library, e.g. `/usr/lib/softhsm/libsofthsm2.so`. */
  module: string;
  /** The token by its label. Preferred over `slot`: SoftHSM and many HSMs renumber slots. */
  tokenLabel?: string;
  /** The token by its slot ID, when labels are not unique. */
  slot?: number;
  /** The user PIN. Held privately: it goes to C_Login and nowhere else, and is cut out of every error message. */
  pin: string;
  /** Base label of the KEK objects; each version is its own object labelled `<keyLabel>.v<N>`. */
  keyLabel: string;
  /**
   * How data keys are wrapped. Default: `aes-gcm` when the token lists CKM_AES_GCM, else
   * `aes-key-wrap-pad`. Wrapped keys record their mechanism, so changing this later still unwraps
   * what the other one wrapped.
   */
  mechanism?: Pkcs11Mechanism;
}

export type Pkcs11Mechanism = 'aes-gcm' | 'aes-key-wrap-pad';

// ---- The part of pkcs11js this provider uses, typed here so that the project typechecks without
// ---- the (optional, natively built) package installed.

type Handle = Buffer;
interface Attribute {
  type: number;
  value?: number | boolean | string | Buffer;
}
interface GcmParameter {
  type: number;
  iv: Buffer;
  ivBits: number;
  aad: Buffer;
  tagBits: number;
}
interface Mechanism {
  mechanism: number;
  parameter?: GcmParameter;
}
interface Pkcs11Library {
  load(path: string): void;
  close(): void;
  C_Initialize(): void;
  C_Finalize(): void;
  C_GetSlotList(tokenPresent: boolean): Handle[];
  C_GetTokenInfo(slot: Handle): { label: string };
  C_GetMechanismList(slot: Handle): number[];
  C_OpenSession(slot: Handle, flags: number): Handle;
  C_CloseSession(session: Handle): void;
  C_Login(session: Handle, userType: number, pin: string): void;
  C_Logout(session: Handle): void;
  C_FindObjectsInit(session: Handle, template: Attribute[]): void;
  C_FindObjects(session: Handle, maxObjectCount: number): Handle[];
  C_FindObjectsFinal(session: Handle): void;
  C_GetAttributeValue(session: Handle, object: Handle, template: Attribute[]): { type: number; value: Buffer }[];
  C_GenerateKey(session: Handle, mechanism: Mechanism, template: Attribute[]): Handle;
  C_CreateObject(session: Handle, template: Attribute[]): Handle;
  C_DestroyObject(session: Handle, object: Handle): void;
  C_EncryptInit(session: Handle, mechanism: Mechanism, key: Handle): void;
  C_Encrypt(session: Handle, inData: Buffer, outData: Buffer): Buffer;
  C_DecryptInit(session: Handle, mechanism: Mechanism, key: Handle): void;
  C_Decrypt(session: Handle, inData: Buffer, outData: Buffer): Buffer;
  C_WrapKey(session: Handle, mechanism: Mechanism, wrappingKey: Handle, key: Handle, wrappedKey: Buffer): Buffer;
  C_UnwrapKey(session: Handle, mechanism: Mechanism, unwrappingKey: Handle, wrappedKey: Buffer, template: Attribute[]): Handle;
}
interface Pkcs11Binding {
  PKCS11: new () => Pkcs11Library;
  /** pkcs11js's own tag for the PKCS#11 2.40 CK_GCM_PARAMS layout (with ulIvBits). */
  CK_PARAMS_AES_GCM_v240: number;
}

/** PKCS#11 2.40 constants (pkcs11t.h); fixed by the standard, so not looked up at run time. */
const CK = {
  CKO_SECRET_KEY: 0x4,
  CKK_GENERIC_SECRET: 0x10,
  CKK_AES: 0x1f,
  CKA_CLASS: 0x0,
  CKA_TOKEN: 0x1,
  CKA_PRIVATE: 0x2,
  CKA_LABEL: 0x3,
  CKA_VALUE: 0x11,
  CKA_KEY_TYPE: 0x100,
  CKA_ID: 0x102,
  CKA_SENSITIVE: 0x103,
  CKA_ENCRYPT: 0x104,
  CKA_DECRYPT: 0x105,
  CKA_WRAP: 0x106,
  CKA_UNWRAP: 0x107,
  CKA_SIGN: 0x108,
  CKA_VERIFY: 0x10a,
  CKA_DERIVE: 0x10c,
  CKA_VALUE_LEN: 0x161,
  CKA_EXTRACTABLE: 0x162,
  CKA_MODIFIABLE: 0x170,
  CKM_AES_KEY_GEN: 0x1080,
  CKM_AES_GCM: 0x1087,
  CKM_AES_KEY_WRAP_PAD: 0x210a,
  CKF_RW_SESSION: 0x2,
  CKF_SERIAL_SESSION: 0x4,
  CKU_USER: 0x1,
  CKR_PIN_INCORRECT: 0xa0,
  CKR_PIN_LEN_RANGE: 0xa2,
  CKR_PIN_LOCKED: 0xa4,
  CKR_USER_ALREADY_LOGGED_IN: 0x100,
  CKR_CRYPTOKI_ALREADY_INITIALIZED: 0x191,
} as const;

const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Text prefixes of WrappedKey.ciphertext, naming the mechanism that produced it. */
const GCM_PREFIX = 'gcm:';
const KWP_PREFIX = 'kwp:';

/**
 * A library is initialised once per process (a second C_Initialize is an error), so providers on the
 * same module share it and the last one to close finalises it.
 */
const libraries = new Map<string, { lib: Pkcs11Library; binding: Pkcs11Binding; users: number }>();

interface KeyObject {
  handle: Handle;
  version: number;
  created: string;
}

/** The loaded library and the token found in it, from first use until close(). */
interface OpenToken {
  lib: Pkcs11Library;
  binding: Pkcs11Binding;
  slot: Handle;
  mechanism: Pkcs11Mechanism;
}

/** An open, logged-in session, handed to one synchronous piece of work and closed after it. */
interface Session {
  lib: Pkcs11Library;
  handle: Handle;
  binding: Pkcs11Binding;
  mechanism: Pkcs11Mechanism;
}

/**
 * A KeyProvider whose KEK is a non-extractable, sensitive AES-256 key on a PKCS#11 token: wrapping
 * and unwrapping run inside the token, so the KEK never leaves it.
 *
 * Versions are separate key objects labelled `<keyLabel>.v<N>`; the highest N is current, and each
 * object's CKA_ID holds its creation time as ISO-8601 text. (Not CKA_START_DATE: it has day
 * precision only, and pkcs11js 2.1.7 aborts the process on a Date-valued attribute.)
 *
 * How `context` is bound: with AES-GCM, as the additional authenticated data (the 12-byte IV is
 * fresh per wrap and travels in the ciphertext). With AES key wrap with padding (RFC 5649), which has
 * no AAD and which tokens only offer through C_WrapKey, the wrapped secret is the data key followed
 * by SHA-256(context): key wrap is deterministic authenticated encryption, so no one can change that
 * tail without the KEK, and unwrap compares it.
 *
 * pkcs11js calls are synchronous; every operation opens a session, logs in, works and closes it
 * before returning, so no session or login outlives a call. The library is loaded on first use.
 */
export class Pkcs11KeyProvider implements KeyProvider {
  readonly kind = 'pkcs11';
  readonly #module: string;
  readonly #token: { label: string } | { slot: number };
  readonly #pin: string;
  readonly #label: string;
  readonly #versionLabel: RegExp;
  readonly #mechanism: Pkcs11Mechanism | undefined;
  #open: OpenToken | undefined;
  #closed = false;

  constructor(settings: Pkcs11Settings) {
    this.#module = checkModulePath(settings.module);
    this.#token = checkToken(settings);
    this.#pin = checkPin(settings.pin);
    this.#label = checkLabel(settings.keyLabel);
    this.#versionLabel = new RegExp(`^${this.#label.replace(/[.]/g, '\\.')}\\.v([1-9][0-9]{0,8})$`);
    this.#mechanism = checkMechanism(settings.mechanism);
  }

  /** Creates version 1 of the KEK unless some version exists; returns the current version. */
  async ensureKey(): Promise<KekVersion> {
    return this.withSession('create the KEK', (session) => {
      const keys = this.listKeys(session);
      const current = keys.at(-1) ?? this.generate(session, 1);
      return this.describe(current, current.version);
    });
  }

  async wrap(dataKey: Buffer, context: string): Promise<WrappedKey> {
    checkContext(context);
    if (dataKey.length === 0) throw new KeyProviderError('Refusing to wrap an empty data key');
    return this.withSession('wrap a data key', (session) => {
      const current = this.listKeys(session).at(-1);
      if (!current) throw new KeyProviderError(`${this.where()} has no KEK '${this.#label}.v<N>' (run ensureKey first)`);
      const ciphertext = session.mechanism === 'aes-gcm' ? GCM_PREFIX + gcmWrap(session, current.handle, dataKey, context) : KWP_PREFIX + kwpWrap(session, current.handle, dataKey, context);
      return { provider: this.kind, kek: this.kekId(current.version), ciphertext };
    });
  }

  async unwrap(wrapped: WrappedKey, context: string): Promise<Buffer> {
    checkContext(context);
    const version = this.versionOf(wrapped);
    return this.withSession('unwrap a data key', (session) => {
      const key = this.listKeys(session).find((k) => k.version === version);
      if (!key) throw new KeyProviderError(`${this.where()} has no KEK ${wrapped.kek} (deleted, or another token?)`);
      try {
        if (wrapped.ciphertext.startsWith(GCM_PREFIX)) return gcmUnwrap(session, key.handle, decode(wrapped.ciphertext.slice(GCM_PREFIX.length)), context);
        if (wrapped.ciphertext.startsWith(KWP_PREFIX)) return kwpUnwrap(session, key.handle, decode(wrapped.ciphertext.slice(KWP_PREFIX.length)), context);
      } catch (err) {
        if (err instanceof KeyProviderError) throw err;
        throw new KeyProviderError(`The token refused to unwrap the data key under ${wrapped.kek}: the context differs or the wrapped bytes were altered (${this.said(err)})`);
      }
      throw new KeyProviderError(`The wrapped data key under ${wrapped.kek} is not a PKCS#11 provider ciphertext (altered or truncated)`);
    });
  }

  async rotate(): Promise<KekVersion> {
    return this.withSession('rotate the KEK', (session) => {
      const next = (this.listKeys(session).at(-1)?.version ?? 0) + 1;
      return this.describe(this.generate(session, next), next);
    });
  }

  async versions(): Promise<KekVersion[]> {
    return this.withSession('list the KEK versions', (session) => {
      const keys = this.listKeys(session);
      const current = keys.at(-1)?.version;
      return keys.map((k) => this.describe(k, current));
    });
  }

  /** Releases this provider's hold on the library; the last provider on a module finalises it. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.#open) return;
    this.#open = undefined;
    releaseLibrary(this.#module);
  }

  // ---- Sessions

  /**
   * Runs `work` in a fresh logged-in session. Everything inside is synchronous, so no other
   * operation of this process can interleave with it and find the token logged out or in.
   */
  private async withSession<T>(action: string, work: (session: Session) => T): Promise<T> {
    const open = this.ensureOpen();
    const { lib } = open;
    let handle: Handle;
    try {
      handle = lib.C_OpenSession(open.slot, CK.CKF_SERIAL_SESSION | CK.CKF_RW_SESSION);
    } catch (err) {
      throw this.failure(`open a session to ${action}`, err);
    }
    try {
      this.login(lib, handle);
      return work({ lib, handle, binding: open.binding, mechanism: open.mechanism });
    } catch (err) {
      if (err instanceof KeyProviderError) throw err;
      throw this.failure(action, err);
    } finally {
      // Closing the last session logs out as well; C_Logout first says so explicitly.
      ignore(() => lib.C_Logout(handle));
      ignore(() => lib.C_CloseSession(handle));
    }
  }

  private login(lib: Pkcs11Library, session: Handle): void {
    try {
      lib.C_Login(session, CK.CKU_USER, this.#pin);
    } catch (err) {
      const code = codeOf(err);
      if (code === CK.CKR_USER_ALREADY_LOGGED_IN) return;
      if (code === CK.CKR_PIN_INCORRECT || code === CK.CKR_PIN_LEN_RANGE) throw new KeyProviderError(`${this.where()} refused the PIN (${this.said(err)})`);
      if (code === CK.CKR_PIN_LOCKED) throw new KeyProviderError(`${this.where()} has locked its user PIN after too many wrong attempts; the security officer must unlock it`);
      throw this.failure('log in', err);
    }
  }

  private ensureOpen(): OpenToken {
    if (this.#closed) throw new KeyProviderError('The PKCS#11 key provider is closed');
    if (this.#open) return this.#open;
    const { lib, binding } = acquireLibrary(this.#module);
    try {
      const slot = this.findSlot(lib);
      this.#open = { lib, binding, slot, mechanism: this.chooseMechanism(lib, slot) };
      return this.#open;
    } catch (err) {
      releaseLibrary(this.#module);
      if (err instanceof KeyProviderError) throw err;
      throw this.failure('find the token', err);
    }
  }

  private findSlot(lib: Pkcs11Library): Handle {
    const slots = lib.C_GetSlotList(true);
    const token = this.#token;
    const found = 'label' in token ? slots.filter((s) => lib.C_GetTokenInfo(s).label.trimEnd() === token.label) : slots.filter((s) => slotId(s) === token.slot);
    if (found.length === 0) throw new KeyProviderError(`${this.where()} is not present in ${this.#module}`);
    if (found.length > 1) throw new KeyProviderError(`More than one token is labelled '${'label' in token ? token.label : ''}' in ${this.#module}; name it by slot instead`);
    return found[0]!;
  }

  private chooseMechanism(lib: Pkcs11Library, slot: Handle): Pkcs11Mechanism {
    const offered = new Set(lib.C_GetMechanismList(slot));
    const gcm = offered.has(CK.CKM_AES_GCM);
    const kwp = offered.has(CK.CKM_AES_KEY_WRAP_PAD);
    if (this.#mechanism === 'aes-gcm' && !gcm) throw new KeyProviderError(`${this.where()} does not offer CKM_AES_GCM`);
    if (this.#mechanism === 'aes-key-wrap-pad' && !kwp) throw new KeyProviderError(`${this.where()} does not offer CKM_AES_KEY_WRAP_PAD`);
    if (this.#mechanism) return this.#mechanism;
    if (gcm) return 'aes-gcm';
    if (kwp) return 'aes-key-wrap-pad';
    throw new KeyProviderError(`${this.where()} offers neither CKM_AES_GCM nor CKM_AES_KEY_WRAP_PAD, so it cannot wrap data keys`);
  }

  // ---- KEK objects

  /** This provider's KEK versions on the token, oldest first. */
  private listKeys(session: Session): KeyObject[] {
    const keys: KeyObject[] = [];
    for (const handle of findObjects(session, [
      { type: CK.CKA_CLASS, value: CK.CKO_SECRET_KEY },
      { type: CK.CKA_KEY_TYPE, value: CK.CKK_AES },
      { type: CK.CKA_TOKEN, value: true },
    ])) {
      const [label, id] = session.lib.C_GetAttributeValue(session.handle, handle, [{ type: CK.CKA_LABEL }, { type: CK.CKA_ID }]);
      const match = this.#versionLabel.exec(label!.value.toString('utf8'));
      if (match) keys.push({ handle, version: Number(match[1]), created: creationTime(id!.value) });
    }
    keys.sort((a, b) => a.version - b.version);
    // Two objects with one label (two rotations at once, or a hand-made copy) would make a wrapped
    // key's KEK ambiguous: refuse rather than guess.
    const twice = keys.find((k, i) => i > 0 && keys[i - 1]!.version === k.version);
    if (twice) throw new KeyProviderError(`${this.where()} holds more than one key labelled '${this.#label}.v${twice.version}'; remove the one that wrapped nothing`);
    return keys;
  }

  /** A new KEK version: generated inside the token, never readable, usable only to wrap and unwrap. */
  private generate(session: Session, version: number): KeyObject {
    const created = new Date().toISOString();
    const handle = session.lib.C_GenerateKey(session.handle, { mechanism: CK.CKM_AES_KEY_GEN }, [
      { type: CK.CKA_CLASS, value: CK.CKO_SECRET_KEY },
      { type: CK.CKA_KEY_TYPE, value: CK.CKK_AES },
      { type: CK.CKA_VALUE_LEN, value: 32 },
      { type: CK.CKA_TOKEN, value: true },
      { type: CK.CKA_PRIVATE, value: true },
      { type: CK.CKA_SENSITIVE, value: true },
      { type: CK.CKA_EXTRACTABLE, value: false },
      { type: CK.CKA_MODIFIABLE, value: false },
      // Both pairs, so that either mechanism (and a later change of the setting) can use the key.
      { type: CK.CKA_ENCRYPT, value: true },
      { type: CK.CKA_DECRYPT, value: true },
      { type: CK.CKA_WRAP, value: true },
      { type: CK.CKA_UNWRAP, value: true },
      { type: CK.CKA_SIGN, value: false },
      { type: CK.CKA_VERIFY, value: false },
      { type: CK.CKA_DERIVE, value: false },
      { type: CK.CKA_LABEL, value: `${this.#label}.v${version}` },
      { type: CK.CKA_ID, value: Buffer.from(created, 'ascii') },
    ]);
    return { handle, version, created };
  }

  // ---- Helpers

  private describe(key: KeyObject, current: number | undefined): KekVersion {
    return { id: this.kekId(key.version), created: key.created, current: key.version === current };
  }

  private kekId(version: number): string {
    return `pkcs11:${this.#label}.v${version}`;
  }

  /** The KEK version a wrapped key names, after checking that it is this provider's. */
  private versionOf(wrapped: WrappedKey): number {
    if (wrapped.provider !== this.kind) throw new KeyProviderError(`The data key was wrapped by ${wrapped.provider}, not by the PKCS#11 provider`);
    const match = /^pkcs11:(.+)$/.exec(wrapped.kek);
    const label = match ? this.#versionLabel.exec(match[1]!) : null;
    if (!label) throw new KeyProviderError(`The data key was wrapped under ${wrapped.kek}, but this provider uses KEK '${this.#label}.v<N>'`);
    return Number(label[1]);
  }

  private where(): string {
    return 'label' in this.#token ? `PKCS#11 token '${this.#token.label}'` : `PKCS#11 slot ${this.#token.slot}`;
  }

  private failure(action: string, err: unknown): KeyProviderError {
    return new KeyProviderError(`${this.where()} failed to ${action} (${this.said(err)})`);
  }

  /**
   * The library's own words: a CKR_ name for token errors, a short message otherwise. Bastion's own
   * text never holds the PIN; the library's is scrubbed in case a native message ever echoes an
   * argument (only there, since scrubbing a short PIN everywhere would mangle slot numbers and labels).
   */
  private said(err: unknown): string {
    const e = err as { message?: unknown; method?: unknown };
    const message = typeof e.message === 'string' ? e.message.replace(/\s+/g, ' ').trim().slice(0, 200) : 'unknown error';
    const text = typeof e.method === 'string' && e.method && !message.includes(e.method) ? `${e.method}: ${message}` : message;
    return text.split(this.#pin).join('[PIN]');
  }
}

// ---- AES-GCM: C_Encrypt with the context as AAD

function gcmWrap(session: Session, kek: Handle, dataKey: Buffer, context: string): string {
  const iv = randomBytes(IV_BYTES);
  session.lib.C_EncryptInit(session.handle, gcm(session, iv, context), kek);
  const sealed = session.lib.C_Encrypt(session.handle, dataKey, Buffer.alloc(dataKey.length + TAG_BYTES));
  return Buffer.concat([iv, sealed]).toString('base64');
}

function gcmUnwrap(session: Session, kek: Handle, bytes: Buffer, context: string): Buffer {
  if (bytes.length <= IV_BYTES + TAG_BYTES) throw new KeyProviderError('The wrapped data key is too short to be an AES-GCM ciphertext (truncated)');
  session.lib.C_DecryptInit(session.handle, gcm(session, bytes.subarray(0, IV_BYTES), context), kek);
  const sealed = bytes.subarray(IV_BYTES);
  return Buffer.from(session.lib.C_Decrypt(session.handle, sealed, Buffer.alloc(sealed.length)));
}

/** CK_GCM_PARAMS in the PKCS#11 2.40 layout (with ulIvBits), which SoftHSM2 and current HSMs take. */
function gcm(session: Session, iv: Buffer, context: string): Mechanism {
  const parameter = { type: session.binding.CK_PARAMS_AES_GCM_v240, iv, ivBits: IV_BYTES * 8, aad: Buffer.from(context, 'utf8'), tagBits: TAG_BYTES * 8 };
  return { mechanism: CK.CKM_AES_GCM, parameter };
}

// ---- AES key wrap with padding: C_WrapKey of a transient object holding dataKey || SHA-256(context)

function kwpWrap(session: Session, kek: Handle, dataKey: Buffer, context: string): string {
  const secret = Buffer.concat([dataKey, contextDigest(context)]);
  const object = session.lib.C_CreateObject(session.handle, [
    { type: CK.CKA_CLASS, value: CK.CKO_SECRET_KEY },
    { type: CK.CKA_KEY_TYPE, value: CK.CKK_GENERIC_SECRET },
    { type: CK.CKA_TOKEN, value: false },
    { type: CK.CKA_EXTRACTABLE, value: true },
    { type: CK.CKA_VALUE, value: secret },
  ]);
  try {
    // RFC 5649 output: the input padded to a multiple of 8 bytes, plus 8.
    return session.lib.C_WrapKey(session.handle, { mechanism: CK.CKM_AES_KEY_WRAP_PAD }, kek, object, Buffer.alloc(secret.length + 16)).toString('base64');
  } finally {
    secret.fill(0);
    ignore(() => session.lib.C_DestroyObject(session.handle, object));
  }
}

function kwpUnwrap(session: Session, kek: Handle, bytes: Buffer, context: string): Buffer {
  const object = session.lib.C_UnwrapKey(session.handle, { mechanism: CK.CKM_AES_KEY_WRAP_PAD }, kek, bytes, [
    { type: CK.CKA_CLASS, value: CK.CKO_SECRET_KEY },
    { type: CK.CKA_KEY_TYPE, value: CK.CKK_GENERIC_SECRET },
    { type: CK.CKA_TOKEN, value: false },
    { type: CK.CKA_SENSITIVE, value: false },
    { type: CK.CKA_EXTRACTABLE, value: true },
  ]);
  let secret: Buffer;
  try {
    secret = session.lib.C_GetAttributeValue(session.handle, object, [{ type: CK.CKA_VALUE }])[0]!.value;
  } finally {
    ignore(() => session.lib.C_DestroyObject(session.handle, object));
  }
  const digest = contextDigest(context);
  const split = secret.length - digest.length;
  if (split <= 0 || !timingSafeEqual(secret.subarray(split), digest)) {
    secret.fill(0);
    throw new KeyProviderError('The token unwrapped the data key, but it was wrapped for another context');
  }
  const dataKey = Buffer.from(secret.subarray(0, split));
  secret.fill(0);
  return dataKey;
}

function contextDigest(context: string): Buffer {
  return createHash('sha256').update('bastion:pkcs11:context\0').update(context, 'utf8').digest();
}

// ---- Library loading

function acquireLibrary(path: string): { lib: Pkcs11Library; binding: Pkcs11Binding } {
  const entry = libraries.get(path);
  if (entry) {
    entry.users++;
    return entry;
  }
  const binding = loadBinding();
  const lib = new binding.PKCS11();
  try {
    lib.load(path);
  } catch (err) {
    throw new KeyProviderError(`Cannot load the PKCS#11 module ${path} (${shortMessage(err)})`);
  }
  try {
    lib.C_Initialize();
  } catch (err) {
    // Something else in this process (another binding) initialised it: usable, but not ours to finalise.
    if (codeOf(err) !== CK.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
      ignore(() => lib.close());
      throw new KeyProviderError(`The PKCS#11 module ${path} failed to initialise (${shortMessage(err)})`);
    }
  }
  libraries.set(path, { lib, binding, users: 1 });
  return { lib, binding };
}

function releaseLibrary(path: string): void {
  const entry = libraries.get(path);
  if (!entry || --entry.users > 0) return;
  libraries.delete(path);
  ignore(() => entry.lib.C_Finalize());
  ignore(() => entry.lib.close());
}

/** pkcs11js is a native addon that only HSM deployments install, so it is loaded on demand. */
function loadBinding(): Pkcs11Binding {
  try {
    return createRequire(import.meta.url)('pkcs11js') as Pkcs11Binding;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'MODULE_NOT_FOUND') throw new KeyProviderError('The PKCS#11 key provider needs the pkcs11js package (npm install pkcs11js; it builds a native addon)');
    throw new KeyProviderError(`The pkcs11js package failed to load (${shortMessage(err)}); rebuild it with npm rebuild pkcs11js`);
  }
}

// ---- Small helpers

function findObjects(session: Session, template: Attribute[]): Handle[] {
  const { lib, handle } = session;
  lib.C_FindObjectsInit(handle, template);
  try {
    const found: Handle[] = [];
    for (let batch = lib.C_FindObjects(handle, 64); batch.length > 0; batch = lib.C_FindObjects(handle, 64)) found.push(...batch);
    return found;
  } finally {
    lib.C_FindObjectsFinal(handle);
  }
}

/**
 * A version's creation time from its CKA_ID. An object without one (made by hand with another tool)
 * counts as created at the epoch, so that the KEK-age check flags it rather than trusting it.
 */
function creationTime(id: Buffer): string {
  const text = id.toString('ascii');
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$/.test(text) || Number.isNaN(Date.parse(text))) return new Date(0).toISOString();
  return new Date(text).toISOString();
}

/** CK_SLOT_ID as pkcs11js hands it over: a native-endian CK_ULONG in a Buffer. */
function slotId(handle: Handle): number {
  return handle.length >= 8 ? Number(handle.readBigUInt64LE(0)) : handle.readUInt32LE(0);
}

function codeOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

function shortMessage(err: unknown): string {
  const message = (err as { message?: unknown } | null)?.message;
  return typeof message === 'string' ? message.replace(/\s+/g, ' ').trim().slice(0, 200) : 'unknown error';
}

function decode(text: string): Buffer {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) throw new KeyProviderError('The wrapped data key is not base64 (altered or truncated)');
  return Buffer.from(text, 'base64');
}

function ignore(step: () => void): void {
  try {
    step();
  } catch {
    // Cleanup after the real outcome, which is already decided; a second error would hide it.
  }
}

function checkModulePath(path: string): string {
  if (typeof path !== 'string' || !path.startsWith('/')) throw new KeyProviderError('The PKCS#11 module must be an absolute path to the vendor library (.so)');
  return path;
}

function checkToken(settings: Pkcs11Settings): { label: string } | { slot: number } {
  const { tokenLabel, slot } = settings;
  if ((tokenLabel === undefined) === (slot === undefined)) throw new KeyProviderError('Name the PKCS#11 token by tokenLabel or by slot (one of them)');
  if (slot !== undefined) {
    if (!Number.isSafeInteger(slot) || slot < 0) throw new KeyProviderError('The PKCS#11 slot must be a non-negative integer');
    return { slot };
  }
  // Token labels are at most 32 bytes, blank-padded: trailing blanks cannot be told apart.
  if (typeof tokenLabel !== 'string' || tokenLabel.trim() === '' || Buffer.byteLength(tokenLabel) > 32) throw new KeyProviderError('The PKCS#11 token label must be 1 to 32 bytes');
  return { label: tokenLabel.trimEnd() };
}

function checkPin(pin: string): string {
  if (typeof pin !== 'string' || pin.length === 0) throw new KeyProviderError('The PKCS#11 user PIN is empty');
  return pin;
}

function checkLabel(label: string): string {
  if (typeof label !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(label)) throw new KeyProviderError(`The PKCS#11 key label '${label}' may hold letters, digits, '_', '.' and '-' only (at most 64)`);
  return label;
}

function checkMechanism(mechanism: Pkcs11Mechanism | undefined): Pkcs11Mechanism | undefined {
  if (mechanism !== undefined && mechanism !== 'aes-gcm' && mechanism !== 'aes-key-wrap-pad') throw new KeyProviderError(`Unknown PKCS#11 wrapping mechanism '${String(mechanism)}' (aes-gcm or aes-key-wrap-pad)`);
  return mechanism;
}

function checkContext(context: string): void {
  if (typeof context !== 'string' || context.length === 0) throw new KeyProviderError('A wrapped key needs a context to be bound to');
}
