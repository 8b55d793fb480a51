import { existsSync, readFileSync, statSync } from 'node:fs';
import { createFileDurably, writeFileDurably } from '../crypto/durable-file.ts';
import { basename } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';

export interface SigningKeys {
  /** Private JWKs, for the authorization server to sign with. */
  privateJwks: { keys: JWK[] };
  /** Their public halves, as published at the jwks_uri. */
  publicJwks: { keys: JWK[] };
}

/** Seals and opens a key file's content (the `signing` data key); absent: the file is plain JSON. */
export interface KeyFileSeal {
  seal(plaintext: Buffer, aad: string): { key: string; sealed: string };
  open(key: string, sealed: string, aad: string): Buffer;
  /** The key id new seals use: a file sealed under an older one is sealed again. */
  currentKey(): string;
}

interface SealedFile {
  format: 'bastion-sealed-jwks/1';
  key: string;
  sealed: string;
}

/**
 * Signing keys (ES256 and RS256 private JWKs): the authorization server's, the audit trail's and
 * the Provenance signer's. Created on first start in the data dir, owner-only, never in the
 * repository; with a `seal` they are kept encrypted under the `signing` data key, so they are
 * only as readable as the key provider lets them be (a plain file from before is sealed on first load).
 */
export async function loadOrCreateSigningKeys(path: string, seal?: KeyFileSeal): Promise<SigningKeys> {
  let keys: JWK[];
  const aad = basename(path);
  if (existsSync(path)) {
    const mode = statSync(path).mode & 0o777;
    if (mode & 0o077) throw new Error(`Key file ${path} is readable by others (mode ${mode.toString(8)}); chmod 600 it`);
    const stored = JSON.parse(readFileSync(path, 'utf8')) as { keys: JWK[] } | SealedFile;
    if ('sealed' in stored) {
      if (!seal) throw new Error(`Key file ${path} is sealed: it needs the data dir's keys`);
      keys = (JSON.parse(seal.open(stored.key, stored.sealed, aad).toString('utf8')) as { keys: JWK[] }).keys;
      if (stored.key !== seal.currentKey()) write(path, keys, seal, aad);
    } else {
      keys = stored.keys;
      if (seal) write(path, keys, seal, aad);
    }
  } else {
    keys = [await newKey('ES256'), await newKey('RS256')];
    write(path, keys, seal, aad, 'wx');
  }
  return { privateJwks: { keys }, publicJwks: { keys: keys.map(publicPart) } };
}

function write(path: string, keys: JWK[], seal: KeyFileSeal | undefined, aad: string, flag = 'w'): void {
  const plain = JSON.stringify({ keys });
  const content = seal ? JSON.stringify({ format: 'bastion-sealed-jwks/1', ...seal.seal(Buffer.from(plain), aad) } satisfies SealedFile) : plain;
  if (flag === 'wx') createFileDurably(path, content + '\n');
  else writeFileDurably(path, content + '\n');
}

async function newKey(alg: 'ES256' | 'RS256'): Promise<JWK> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'RS256' ? { modulusLength: 2048 } : {}) });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, alg, use: 'sig', kid: await calculateJwkThumbprint(jwk) };
}

const privateMembers = new Set(['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']);

function publicPart(jwk: JWK): JWK {
  return Object.fromEntries(Object.entries(jwk).filter(([k]) => !privateMembers.has(k))) as JWK;
}
