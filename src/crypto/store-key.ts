import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';

/**
 * The embedded store's file key: 32 random bytes, created on first start beside the store and
 * readable by its owner only. (The key-provider work moves it under a master key.)
 */
export function loadOrCreateStoreKey(path: string): Buffer {
  if (existsSync(path)) {
    const mode = statSync(path).mode & 0o777;
    if (mode & 0o077) throw new Error(`Key file ${path} is readable by others (mode ${mode.toString(8)}); chmod 600 it`);
    const hex = readFileSync(path, 'utf8').trim();
    if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error(`Key file ${path} does not hold a 256-bit hex key`);
    return Buffer.from(hex, 'hex');
  }
  const key = randomBytes(32);
  writeFileSync(path, key.toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
  return key;
}
