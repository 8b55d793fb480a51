import type { DataKeys } from './data-keys.ts';
import { openVersioned, sealVersioned } from './aead.ts';

/** Seals small secret files (signing keys) under the `signing` data key, the file's name bound as AAD. */
export function signingKeySeal(keys: DataKeys) {
  return {
    seal(plaintext: Buffer, aad: string): { key: string; sealed: string } {
      const current = keys.current('signing');
      return { key: current.id, sealed: sealVersioned(current.key, current.version, plaintext, Buffer.from(aad)).toString('base64') };
    },
    open(key: string, sealed: string, aad: string): Buffer {
      return openVersioned(keys.key(key), Buffer.from(sealed, 'base64'), Buffer.from(aad));
    },
    currentKey: () => keys.current('signing').id,
  };
}
