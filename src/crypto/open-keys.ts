import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { removeFileDurably } from './durable-file.ts';
import { hkdfSync } from 'node:crypto';
import { join } from 'node:path';
import { DataKeys, type LegacyKeys } from './data-keys.ts';
import { KeyProviderError, type KeyProvider } from './key-provider.ts';
import { LocalKeyring, parseMasterKey, type MasterKeySource } from './providers/local-keyring.ts';
import { VaultTransitProvider } from './providers/vault-transit.ts';
import { AwsKmsProvider } from './providers/aws-kms.ts';
import { Pkcs11KeyProvider, type Pkcs11Mechanism } from './providers/pkcs11.ts';

/** Where the key-encryption key lives (config `keyProvider`); the secrets to reach it come from the environment only. */
export type KeyProviderSettings =
  | { kind: 'local' }
  /** VAULT_TOKEN */
  | { kind: 'vault-transit'; address: string; keyName: string; mount?: string; namespace?: string; caFile?: string }
  /** AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN */
  | { kind: 'aws-kms'; region: string; keyId: string; endpoint?: string }
  /** BASTION_PKCS11_PIN */
  | { kind: 'pkcs11'; module: string; tokenLabel?: string; slot?: number; keyLabel: string; mechanism?: Pkcs11Mechanism };

export const dataKeysFile = (dataDir: string) => join(dataDir, 'data-keys.json');

/**
 * The data dir's data keys, unwrapped by the configured key provider. A data dir from before the
 * keyring (a plain `store.key`) is converted on first open: its key becomes the store-file data
 * key (and the keys derived from it the cookie and pseudonym keys, so sessions and pseudonyms stay
 * as they were), wrapped like every other, and the plain file is removed.
 */
export async function openDataKeys(dataDir: string, settings: KeyProviderSettings = { kind: 'local' }, env: NodeJS.ProcessEnv = process.env): Promise<DataKeys> {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const provider = await openProvider(dataDir, settings, env);
  const legacyPath = join(dataDir, 'store.key');
  const legacy = existsSync(legacyPath) ? legacyKeys(readFileSync(legacyPath, 'utf8')) : {};
  const keys = await DataKeys.open(dataKeysFile(dataDir), provider, legacy);
  // Only once the wrapped copy is durably on disk (DataKeys.open saves it so) does the plain one go.
  if (existsSync(legacyPath)) {
    writeFileSync(legacyPath, '0'.repeat(64) + '\n');
    removeFileDurably(legacyPath);
  }
  return keys;
}

/** The configured key provider, its KEK made if there is none yet. */
export async function openProvider(dataDir: string, settings: KeyProviderSettings, env: NodeJS.ProcessEnv = process.env): Promise<KeyProvider> {
  switch (settings.kind) {
    case 'local': {
      const keyring = new LocalKeyring(join(dataDir, 'keyring.json'), masterKeySource(dataDir, env));
      await keyring.open();
      return keyring;
    }
    case 'vault-transit': {
      const token = env.VAULT_TOKEN;
      if (!token) throw new KeyProviderError('keyProvider vault-transit needs VAULT_TOKEN in the environment');
      const vault = new VaultTransitProvider({ ...settings, token });
      await vault.ensureKey();
      return vault;
    }
    case 'aws-kms': {
      const accessKeyId = env.AWS_ACCESS_KEY_ID;
      const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
      if (!accessKeyId || !secretAccessKey) throw new KeyProviderError('keyProvider aws-kms needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment');
      return new AwsKmsProvider({ ...settings, credentials: { accessKeyId, secretAccessKey, ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}) } });
    }
    case 'pkcs11': {
      const pin = env.BASTION_PKCS11_PIN;
      if (!pin) throw new KeyProviderError('keyProvider pkcs11 needs BASTION_PKCS11_PIN in the environment');
      const hsm = new Pkcs11KeyProvider({ ...settings, pin });
      await hsm.ensureKey();
      return hsm;
    }
  }
}

/** BASTION_MASTER_KEY, else BASTION_MASTER_PASSPHRASE, else (development) `master.key` in the data dir. */
export function masterKeySource(dataDir: string, env: NodeJS.ProcessEnv): MasterKeySource {
  if (env.BASTION_MASTER_KEY) return { kind: 'key', key: parseMasterKey(env.BASTION_MASTER_KEY), origin: 'BASTION_MASTER_KEY' };
  if (env.BASTION_MASTER_PASSPHRASE) {
    if (env.BASTION_MASTER_PASSPHRASE.length < 12) throw new KeyProviderError('BASTION_MASTER_PASSPHRASE must be at least 12 characters');
    return { kind: 'passphrase', passphrase: env.BASTION_MASTER_PASSPHRASE };
  }
  return { kind: 'file', path: join(dataDir, 'master.key') };
}

function legacyKeys(text: string): LegacyKeys {
  const hex = text.trim();
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new KeyProviderError('store.key does not hold a 256-bit hex key');
  const storeKey = Buffer.from(hex, 'hex');
  const derived = (info: string) => Buffer.from(hkdfSync('sha256', storeKey, Buffer.alloc(0), info, 32));
  return { 'store-file': storeKey, cookie: derived('bastion session cookie signing'), pseudonym: derived('bastion de-identified view pseudonyms') };
}
