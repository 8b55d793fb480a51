import { randomUUID } from 'node:crypto';
import { roles, type AuthStore, type Role, type UserRecord } from '../store/auth-store.ts';
import { hashPassword, passwordProblem, verifyPassword } from './passwords.ts';

export class UserError extends Error {}

export interface NewUser {
  username: string;
  role: Role;
  fhirUser?: string;
  password?: string;
  totpSecret?: string;
  /** The password was generated and shown once: the user sets their own at first sign-in. */
  mustChangePassword?: boolean;
}

const usernameShape = /^[A-Za-z0-9._@-]{1,128}$/;
const fhirUserShape = /^(Patient|Practitioner|PractitionerRole|RelatedPerson|Person)\/[A-Za-z0-9\-.]{1,64}$/;

export async function addUser(store: AuthStore, u: NewUser): Promise<UserRecord> {
  if (!usernameShape.test(u.username)) throw new UserError('A username is 1-128 of A-Z a-z 0-9 . _ @ -');
  if (!roles.includes(u.role)) throw new UserError(`Role must be one of ${roles.join(', ')}`);
  if (u.fhirUser !== undefined && !fhirUserShape.test(u.fhirUser)) throw new UserError('fhirUser must be a reference like Practitioner/123');
  if (u.role === 'patient' && !u.fhirUser?.startsWith('Patient/')) throw new UserError('A patient user needs --fhir-user Patient/<id>');
  if (u.password !== undefined) {
    const problem = passwordProblem(u.password);
    if (problem) throw new UserError(problem);
  }
  if (u.totpSecret !== undefined && !/^[A-Z2-7]{16,128}=*$/.test(u.totpSecret)) throw new UserError('A TOTP secret is base32 (A-Z, 2-7), at least 16 characters');
  const user: UserRecord = {
    id: randomUUID(),
    username: u.username,
    role: u.role,
    ...(u.fhirUser ? { fhirUser: u.fhirUser } : {}),
    ...(u.password !== undefined ? { passwordHash: await hashPassword(u.password) } : {}),
    ...(u.totpSecret ? { totpSecret: u.totpSecret } : {}),
    ...(u.mustChangePassword ? { mustChangePassword: true } : {}),
    failedLogins: 0,
    disabled: false,
    created: new Date().toISOString(),
  };
  await store.addUser(user);
  return user;
}

/** Failed attempts allowed before a lockout; each further failure doubles it (1 min, 2, 4 ... at most 1 h). */
export const lockoutThreshold = 5;
const baseLockMs = 60_000;
const maxLockMs = 3_600_000;

/** How long an account stays locked after `failures` failures in a row (at the threshold or past it). */
function lockDuration(failures: number): number {
  return Math.min(maxLockMs, baseLockMs * 2 ** Math.max(0, failures - lockoutThreshold));
}

export type LoginResult =
  | { ok: true; user: UserRecord }
  | { ok: false; reason: 'unknown-user' | 'bad-password' | 'locked' | 'disabled'; user?: UserRecord; lockedUntil?: number };

/**
 * Checks a username and password, counting failures: after `lockoutThreshold` in a row the
 * account locks, for longer with each further failure. A locked account is refused without
 * looking at the password, so guessing during a lockout learns nothing. Unknown users cost a
 * hash too, so timing does not tell which usernames exist.
 */
export function checkPassword(store: AuthStore, username: string, password: string, now = Date.now()): Promise<LoginResult> {
  return oneAtATime(store, username, () => checkPasswordNow(store, username, password, now));
}

async function checkPasswordNow(store: AuthStore, username: string, password: string, now: number): Promise<LoginResult> {
  const user = usernameShape.test(username) ? await store.userByName(username) : undefined;
  if (!user || !user.passwordHash) {
    await verifyPassword(password, dummyHash ??= await hashPassword('not the password of anyone'));
    return { ok: false, reason: 'unknown-user' };
  }
  if (user.disabled) return { ok: false, reason: 'disabled', user };
  if (user.lockedUntil !== undefined && user.lockedUntil > now) return { ok: false, reason: 'locked', user, lockedUntil: user.lockedUntil };
  if (await verifyPassword(password, user.passwordHash)) {
    if (user.failedLogins !== 0 || user.lockedUntil !== undefined) {
      user.failedLogins = 0;
      delete user.lockedUntil;
      await store.updateUser(user);
    }
    return { ok: true, user };
  }
  user.failedLogins += 1;
  if (user.failedLogins >= lockoutThreshold) user.lockedUntil = now + lockDuration(user.failedLogins);
  await store.updateUser(user);
  return { ok: false, reason: user.lockedUntil !== undefined && user.lockedUntil > now ? 'locked' : 'bad-password', user, lockedUntil: user.lockedUntil };
}

let dummyHash: string | undefined;

/** Per store (one per process in a deployment), per username: the attempts waiting. */
const queues = new WeakMap<AuthStore, Map<string, Promise<unknown>>>();

/**
 * Sign-in attempts for one username run one after another: each reads the failure count, waits
 * for a slow hash, and writes the count back, so parallel guesses would otherwise all see the same
 * count and a burst of them would add one failure. In this process by a queue per username; across
 * nodes sharing the store, also under the store's lock for that username.
 */
export function oneAtATime<T>(store: AuthStore, username: string, work: () => Promise<T>): Promise<T> {
  let running = queues.get(store);
  if (!running) queues.set(store, (running = new Map()));
  const previous = running.get(username) ?? Promise.resolve();
  const locked = store.exclusively ? () => store.exclusively!(`sign-in:${username}`, work) : work;
  const next = previous.then(locked, locked);
  const settled = next.catch(() => undefined);
  running.set(username, settled);
  void settled.then(() => {
    if (running.get(username) === settled) running.delete(username);
  });
  return next;
}
