import type { KeyProviderSettings } from '../crypto/open-keys.ts';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Finding } from './finding.ts';

const control = '164.312(a)(2)(iv) encryption and decryption: key custody';

/** The local keyring's master key kept in a file beside the data it protects (the development default). */
export function keyCustodyFindings(provider: KeyProviderSettings, dataDir: string, env: NodeJS.ProcessEnv = process.env): Finding[] {
  if (provider.kind !== 'local') return [];
  // A copy of the master key beside the keyring (the development file, or one put back for a restore) is as good as none.
  if (existsSync(join(dataDir, 'master.key'))) {
    return [{ control, severity: 'high', message: 'a master key file (master.key) is in the data dir, beside what it protects: keep the master key outside it (BASTION_MASTER_KEY or BASTION_MASTER_PASSPHRASE; bastion keys change-master), or use Vault, KMS or an HSM (keyProvider)' }];
  }
  if (env.BASTION_MASTER_KEY || env.BASTION_MASTER_PASSPHRASE) {
    return [{ control, severity: 'low', message: 'key-encryption keys are in the local keyring (under a master key from the environment): a KMS or HSM keeps them outside the server' }];
  }
  return [{ control, severity: 'high', message: 'the master key is the development file master.key in the data dir, beside what it protects: set BASTION_MASTER_KEY or BASTION_MASTER_PASSPHRASE, or use Vault, KMS or an HSM (keyProvider)' }];
}
