import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';

const scrypt = (password: string, salt: Buffer, keylen: number, options: ScryptOptions) =>
  new Promise<Buffer>((resolve, reject) => scryptCb(password, salt, keylen, options, (err, key) => (err ? reject(err) : resolve(key))));

/**
 * scrypt with N = 2^15, r = 8, p = 1 (OWASP's minimum is 2^17 / 8 / 1 at 128 MiB... too slow for a
 * login page on 2 cores; 2^15 costs about 50 ms and 32 MiB). Stored as `scrypt$N$r$p$salt$hash`, so
 * the parameters can be raised later and old hashes still verify.
 */
const params = { N: 2 ** 15, r: 8, p: 1 };
const keyLength = 32;

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const hash = await scrypt(password, salt, keyLength, { ...params, maxmem: 64 * 1024 * 1024 });
  return ['scrypt', params.N, params.r, params.p, salt.toString('base64url'), hash.toString('base64url')].join('$');
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = parts.slice(1, 4).map(Number);
  const salt = Buffer.from(parts[4], 'base64url');
  const expected = Buffer.from(parts[5], 'base64url');
  const actual = await scrypt(password, salt, expected.length, { N, r, p, maxmem: 256 * 1024 * 1024 });
  return timingSafeEqual(actual, expected);
}

/** A password that meets the minimum: 12 characters (NIST 800-63B favours length over composition rules). */
export function passwordProblem(password: string): string | undefined {
  if (password.length < 12) return 'A password needs at least 12 characters';
  if (password.length > 1024) return 'A password may have at most 1024 characters';
  return undefined;
}
