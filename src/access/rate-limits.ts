import type { Principal } from '../auth/principal.ts';
import { roles, type Role } from '../store/auth-store.ts';

/**
 * Rate limits: how many FHIR requests one caller may make in a sliding window. They cap what a
 * stolen token or a runaway app can pull out in a minute, and keep one caller from starving the
 * rest. Each request is counted under every key it belongs to, and refused (429) when any of them
 * is over its limit:
 * - the user (or, for a backend service, the client), at its role's limit, across every app it uses;
 * - the app as a whole, when the deployment gives that client a limit of its own;
 * - the network address (an IPv6 one by its /64, what one subscriber gets), for requests without a
 *   token (the public CapabilityStatement).
 * A batch or transaction counts as many requests as it has entries. A request whose token is
 * refused is answered 401 and is not counted: guessing a signed token is hopeless, and a counter per
 * address would let one guesser lock out everyone behind the same NAT. The local principal (auth
 * off, loopback only) is not limited.
 */
export interface RateLimitSettings {
  enabled: boolean;
  /** The sliding window, seconds. */
  windowSeconds: number;
  /** Requests per window for each user of a role (a backend service: `system`, per client). */
  roles: Record<Role, number>;
  /** Requests per window for all users of one app together, by client id. */
  clients: Record<string, number>;
  /** Requests per window from one network address without a token. */
  anonymous: number;
}

/**
 * Per minute. For people: far above work at a screen (a chart opening is a burst of tens), low
 * enough that a person's stolen token cannot pull a database out at the server's speed. Backend
 * services are registered by an administrator for bulk work: their limit only stops a runaway.
 */
export const defaultRateLimits: RateLimitSettings = {
  enabled: true,
  windowSeconds: 60,
  roles: {
    patient: 3000, nurse: 6000, physician: 6000, 'lab-technician': 6000, billing: 3000, researcher: 3000, admin: 3000, auditor: 3000, system: 1_000_000,
  },
  clients: {},
  anonymous: 3000,
};

export type RateScope = 'user' | 'client' | 'address';

/** One count a request adds to, and the limit that count is held to. */
export interface RateCounter {
  key: string;
  limit: number;
  scope: RateScope;
}

/** The counters a request from this principal is held to (none for the local principal or when disabled). */
export function rateCountersFor(principal: Principal, settings: RateLimitSettings): RateCounter[] {
  if (!settings.enabled || principal.kind === 'anonymous-local') return [];
  if (principal.kind === 'anonymous') return [addressCounter(principal.address, settings)];
  // A role outside the table (none today) is held to the tightest role's limit rather than none.
  const roleLimit = settings.roles[principal.role as Role] ?? tightest(settings);
  const key = `${principal.kind}:${principal.issuer ?? ''}|${principal.id}`;
  // A backend service is its own app: a limit given to its client id replaces its role's.
  if (principal.kind === 'client') return [{ key, limit: clientLimit(settings, principal.clientId ?? principal.id) ?? roleLimit, scope: 'client' }];
  const counters: RateCounter[] = [{ key, limit: roleLimit, scope: 'user' }];
  const appLimit = principal.clientId !== undefined ? clientLimit(settings, principal.clientId) : undefined;
  if (appLimit !== undefined) counters.push({ key: `app:${principal.issuer ?? ''}|${principal.clientId}`, limit: appLimit, scope: 'client' });
  return counters;
}

/** Requests that carried no token, counted by where they came from. */
export function addressCounter(address: string, settings: RateLimitSettings): RateCounter {
  return { key: `address:${subscriberOf(address)}`, limit: settings.anonymous, scope: 'address' };
}

/** An IPv4 address as it is (IPv4-mapped IPv6 included); an IPv6 address by its /64 prefix, since one subscriber holds a whole /64. */
export function subscriberOf(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!address.includes(':')) return address;
  const [head = '', tail] = address.split('%')[0]!.toLowerCase().split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? left : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

function clientLimit(settings: RateLimitSettings, clientId: string): number | undefined {
  return Object.hasOwn(settings.clients, clientId) ? settings.clients[clientId] : undefined;
}

function tightest(settings: RateLimitSettings): number {
  return Math.min(...roles.map((r) => settings.roles[r]));
}

/** How a refusal reads in the audit trail and the OperationOutcome. */
export function rateLimitReason(counter: RateCounter, windowSeconds: number): string {
  const who = counter.scope === 'user' ? 'this user' : counter.scope === 'client' ? 'this client' : 'this network address';
  return `rate-limit: ${who} is over ${counter.limit} requests per ${windowSeconds} s`;
}
