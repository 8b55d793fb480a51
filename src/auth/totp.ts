import { createHash, randomBytes } from 'node:crypto';
import { generateSecret, generateURI, verify } from 'otplib';
import QRCode from 'qrcode';
import type { UserRecord } from '../store/auth-store.ts';

/**
 * TOTP (RFC 6238, 30 s steps, 6 digits, SHA-1: what authenticator apps support) through otplib.
 * A code is accepted one step either side of now, and only once: the step it matched is
 * remembered, so a code seen over a shoulder cannot be replayed within its window.
 */
export function newTotpSecret(): string {
  return generateSecret({ length: 20 });
}

export async function enrolmentQr(secret: string, username: string, issuer: string): Promise<string> {
  const uri = generateURI({ issuer, label: username, secret });
  return QRCode.toString(uri, { type: 'svg', margin: 1 });
}

/** The time step `code` matches for `secret`, or undefined. */
export async function totpStep(secret: string, code: string): Promise<number | undefined> {
  if (!/^\d{6}$/.test(code)) return undefined;
  const result = await verify({ secret, token: code, epochTolerance: 30 });
  return result.valid && 'epoch' in result ? Math.floor(result.epoch / 30) : undefined;
}

/** Checks a TOTP code for a user (and records its step) or a recovery code (and uses it up). */
export async function checkSecondFactor(user: UserRecord & { lastTotpStep?: number }, code: string): Promise<'totp' | 'recovery' | undefined> {
  const trimmed = code.replace(/\s+/g, '');
  if (user.totpSecret) {
    const step = await totpStep(user.totpSecret, trimmed);
    if (step !== undefined && step > (user.lastTotpStep ?? -1)) {
      user.lastTotpStep = step;
      return 'totp';
    }
  }
  const hash = recoveryHash(trimmed);
  const i = user.recoveryCodes?.indexOf(hash) ?? -1;
  if (i >= 0) {
    user.recoveryCodes!.splice(i, 1);
    return 'recovery';
  }
  return undefined;
}

/** Ten single-use recovery codes: shown once, stored only as SHA-256 digests. */
export function newRecoveryCodes(): { codes: string[]; hashes: string[] } {
  const codes = Array.from({ length: 10 }, () => randomBytes(5).toString('hex'));
  return { codes, hashes: codes.map(recoveryHash) };
}

function recoveryHash(code: string): string {
  return createHash('sha256').update(code.toLowerCase()).digest('base64url');
}
