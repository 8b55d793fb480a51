import type { KeyProviderSettings } from '../crypto/open-keys.ts';
import type { Finding } from './finding.ts';

const control = '164.312(a)(2)(iv) encryption and decryption: key custody';

/** The local keyring's master key kept in a file beside the data it protects (the development default). */
export function keyCustodyFindings(provider: KeyProviderSettings, env: NodeJS.ProcessEnv = process.env): Finding[] {
  if (provider.kind !== 'local') return [];
  if (env.BASTION_MASTER_KEY || env.BASTION_MASTER_PASSPHRASE) {
    return [{ control, severity: 'low', message: 'key-encryption keys are in the local keyring (under a master key from the environment): a KMS or HSM keeps them outside the server' }];
  }
  return [{ control, severity: 'high', message: 'the master key is the development file master.key in the data dir, beside what it protects: set BASTION_MASTER_KEY or BASTION_MASTER_PASSPHRASE, or use Vault, KMS or an HSM (keyProvider)' }];
}
