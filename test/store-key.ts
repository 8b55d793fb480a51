import { openKeys, storeFileKey } from '../src/main.ts';

/** The key a data dir's store file is encrypted with (the local keyring's store-file data key), to read the raw file in tests. */
export async function storeKey(dataDir: string, file: 'bastion.db' | 'bastion-audit.db' | 'bastion-auth.db' = 'bastion.db'): Promise<Buffer> {
  return storeFileKey(dataDir, await openKeys(dataDir), file);
}
