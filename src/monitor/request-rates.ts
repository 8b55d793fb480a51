import type { RateCounter } from '../access/rate-limits.ts';

/**
 * Counts requests per key in a sliding window and says whether one more is within its limit.
 *
 * The window slides by weighting the previous fixed window by the part of it still inside the
 * sliding one (count = previous * (1 - elapsed) + current): no burst of twice the limit across a
 * window boundary, and two numbers per key. With several nodes, each counts locally and, once a
 * second, publishes its counts and takes the other nodes' sums through a `RateShare`, so a limit
 * may be overshot by at most one second of the other nodes' traffic; a write to a shared counter
 * on every request would cost more than the request.
 */
export interface RateShare {
  /** A stable identifier for a key, the same on every node (a keyed MAC: no user id in the database). */
  id(key: string): string;
  /** Publishes this node's counts (absolute, per window) and returns the other nodes' sums for the windows from `since` on. */
  exchange(own: SharedCount[], since: number): Promise<SharedCount[]>;
  close(): Promise<void>;
}

export interface SharedCount {
  id: string;
  window: number;
  count: number;
}

export interface Admission {
  allowed: boolean;
  /** The counter nearest its limit (when refused, the one over it). */
  counter: RateCounter;
  /** Requests left in the window for that counter after this one. */
  remaining: number;
  /** Seconds until the current fixed window ends. */
  reset: number;
  /** When refused: seconds until a request would be admitted. */
  retryAfter?: number;
  /** When refused: whether this is the key's first refusal in this window (one alert per key and window). */
  firstRefusal?: boolean;
}

interface Entry {
  id: string;
  window: number;
  current: number;
  previous: number;
  dirty: boolean;
  refusedIn: number;
}

interface PeerCounts {
  window: number;
  current: number;
  previous: number;
}

export interface RequestRatesOptions {
  windowSeconds: number;
  share?: RateShare;
  /** Milliseconds since the epoch (tests move it). */
  now?: () => number;
  /** Milliseconds between exchanges with the other nodes. */
  syncMs?: number;
  onError?: (err: unknown) => void;
}

export class RequestRates {
  private readonly windowMs: number;
  private readonly share: RateShare | undefined;
  private readonly now: () => number;
  private readonly onError: (err: unknown) => void;
  private readonly entries = new Map<string, Entry>();
  private peers = new Map<string, PeerCounts>();
  private readonly timer: NodeJS.Timeout;
  private syncing: Promise<void> | undefined;

  constructor(options: RequestRatesOptions) {
    this.windowMs = options.windowSeconds * 1000;
    this.share = options.share;
    this.now = options.now ?? Date.now;
    this.onError = options.onError ?? (() => undefined);
    this.timer = setInterval(() => void this.sync(), options.syncMs ?? 1000);
    this.timer.unref();
  }

  /** Counts one request under every counter when all are within their limits; counts nothing when one is over. */
  admit(counters: readonly RateCounter[]): Admission | undefined {
    if (counters.length === 0) return undefined;
    const now = this.now();
    const window = Math.floor(now / this.windowMs);
    const elapsed = (now - window * this.windowMs) / this.windowMs;
    let nearest: Admission | undefined;
    const entries: Entry[] = [];
    for (const counter of counters) {
      const entry = this.entry(counter.key, window);
      const peer = this.peerCounts(entry.id, window);
      const previous = entry.previous + peer.previous;
      const current = entry.current + peer.current;
      const estimate = previous * (1 - elapsed) + current;
      const reset = Math.ceil(((window + 1) * this.windowMs - now) / 1000);
      if (estimate + 1 > counter.limit) {
        const firstRefusal = entry.refusedIn !== window;
        entry.refusedIn = window;
        return { allowed: false, counter, remaining: 0, reset, retryAfter: this.retryAfter(counter.limit, previous, current, elapsed), firstRefusal };
      }
      const remaining = Math.max(0, Math.floor(counter.limit - estimate - 1));
      if (!nearest || remaining < nearest.remaining) nearest = { allowed: true, counter, remaining, reset };
      entries.push(entry);
    }
    for (const entry of entries) {
      entry.current++;
      entry.dirty = true;
    }
    return nearest;
  }

  /** Publishes this node's counts and takes the others'; without a share, only forgets keys gone quiet. */
  sync(): Promise<void> {
    this.syncing ??= this.exchange().catch(this.onError).finally(() => {
      this.syncing = undefined;
    });
    return this.syncing;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.syncing;
    await this.share?.close();
  }

  private async exchange(): Promise<void> {
    const window = Math.floor(this.now() / this.windowMs);
    const own: SharedCount[] = [];
    const published: Entry[] = [];
    for (const [key, entry] of this.entries) {
      this.roll(entry, window);
      if (entry.current === 0 && entry.previous === 0) {
        this.entries.delete(key);
        continue;
      }
      if (!entry.dirty) continue;
      own.push({ id: entry.id, window, count: entry.current });
      // Requests counted just before the window turned were never published as that window's.
      if (entry.previous > 0) own.push({ id: entry.id, window: window - 1, count: entry.previous });
      published.push(entry);
    }
    if (!this.share) return;
    // Cleared before the round trip: a request counted meanwhile marks its entry again.
    for (const entry of published) entry.dirty = false;
    let counts: SharedCount[];
    try {
      counts = await this.share.exchange(own, window - 1);
    } catch (err) {
      for (const entry of published) entry.dirty = true;
      throw err;
    }
    const peers = new Map<string, PeerCounts>();
    for (const { id, window: w, count } of counts) {
      const peer = peers.get(id) ?? { window, current: 0, previous: 0 };
      if (w === window) peer.current += count;
      else if (w === window - 1) peer.previous += count;
      peers.set(id, peer);
    }
    this.peers = peers;
  }

  private entry(key: string, window: number): Entry {
    let entry = this.entries.get(key);
    if (!entry) {
      entry = { id: this.share ? this.share.id(key) : key, window, current: 0, previous: 0, dirty: false, refusedIn: -1 };
      this.entries.set(key, entry);
    }
    this.roll(entry, window);
    return entry;
  }

  private roll(entry: Entry, window: number): void {
    if (entry.window === window) return;
    entry.previous = entry.window === window - 1 ? entry.current : 0;
    entry.current = 0;
    entry.window = window;
    // The counts that moved to `previous` may not have been published yet.
    if (entry.previous > 0) entry.dirty = true;
  }

  /** The other nodes' counts as of the last exchange, seen from `window` (the exchange may be from the window before). */
  private peerCounts(id: string, window: number): { current: number; previous: number } {
    if (!this.share) return none;
    const peer = this.peers.get(id);
    if (!peer) return none;
    if (peer.window === window) return peer;
    if (peer.window === window - 1) return { current: 0, previous: peer.current };
    return none;
  }

  /** Seconds until the sliding count leaves room for one request, assuming no more arrive. */
  private retryAfter(limit: number, previous: number, current: number, elapsed: number): number {
    const room = limit - 1;
    let seconds: number;
    if (current > room) {
      // Only the current window's requests decaying through the next window can make room.
      const fractionOfNext = current > 0 ? 1 - room / current : 0;
      seconds = ((1 - elapsed) + fractionOfNext) * this.windowMs / 1000;
    } else {
      // The previous window's share must shrink to what the current one leaves.
      const needed = previous > 0 ? 1 - (room - current) / previous : 0;
      seconds = Math.max(0, needed - elapsed) * this.windowMs / 1000;
    }
    return Math.max(1, Math.ceil(seconds));
  }
}

const none = { current: 0, previous: 0 } as const;
