import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';

export interface SigningKeys {
  /** Private JWKs, for the authorization server to sign with. */
  privateJwks: { keys: JWK[] };
  /** Their public halves, as published at the jwks_uri. */
  publicJwks: { keys: JWK[] };
}

/**
 * The authorization server's signing keys: RS256 (what OpenID Connect clients must be able to
 * verify) and ES256 (smaller and faster, used for access tokens). Created on first start in the
 * data dir, readable by the owner only; never in the repository. (The key-provider work moves them
 * under a master key and adds rotation.)
 */
export async function loadOrCreateSigningKeys(path: string): Promise<SigningKeys> {
  let keys: JWK[];
  if (existsSync(path)) {
    const mode = statSync(path).mode & 0o777;
    if (mode & 0o077) throw new Error(`Key file ${path} is readable by others (mode ${mode.toString(8)}); chmod 600 it`);
    keys = (JSON.parse(readFileSync(path, 'utf8')) as { keys: JWK[] }).keys;
  } else {
    keys = [await newKey('ES256'), await newKey('RS256')];
    writeFileSync(path, JSON.stringify({ keys }) + '\n', { mode: 0o600, flag: 'wx' });
  }
  return { privateJwks: { keys }, publicJwks: { keys: keys.map(publicPart) } };
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
