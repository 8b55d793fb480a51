import type { RateCounter } from '../access/rate-limits.ts';
import type { PublishedCount, RateShare, SharedCount } from '../store/rate-share.ts';

export type { PublishedCount, RateShare, SharedCount };

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
  /** When refused: the request alone weighs more than the limit (a batch to split), so waiting never helps. */
  neverFits?: boolean;
}

interface Entry {
  id: string;
  window: number;
  current: number;
  previous: number;
  dirty: boolean;
  refusedIn: number;
  /** Requests counted since the last exchange began. */
  sinceSync: number;
}

interface PeerCounts {
  window: number;
  current: number;
  previous: number;
}

export interface RequestRatesOptions {
  windowSeconds: number;
  share?: RateShare;
  /** Keys counted at most; beyond, new keys are admitted uncounted (and `onFull` is told once). */
  maxKeys?: number;
  onFull?: () => void;
  /** Milliseconds since the epoch (tests move it). */
  now?: () => number;
  /** Milliseconds between exchanges with the other nodes. */
  syncMs?: number;
  /** Milliseconds an exchange may take before it is given up (the database unreachable). */
  exchangeTimeoutMs?: number;
  onError?: (err: unknown) => void;
}

/**
 * Counts requests per key in a sliding window and says whether one more is within its limit.
 *
 * The window slides by weighting the previous fixed window by the part of it still inside the
 * sliding one (count = previous * (1 - elapsed) + current): two numbers per key, and a burst at the
 * end of one fixed window still weighs nearly whole at the start of the next. It assumes the
 * previous window's requests were spread evenly: requests bunched at its end, then spread through
 * the next, can reach nearly twice the limit over an exact 60 s span, never twice it in a burst.
 *
 * With several nodes, each counts locally and, once a second (sooner when a key passes a quarter
 * of its limit here), publishes its counts and takes the other nodes' sums for the keys it counts
 * through a `RateShare`. A limit may so be overshot by what the other nodes admit between two
 * exchanges (one to two seconds of their traffic); a key new to a node is looked up at once. A
 * write to a shared counter on every request would cost more than the request.
 */
export class RequestRates {
  private readonly windowMs: number;
  private readonly share: RateShare | undefined;
  private readonly now: () => number;
  private readonly onError: (err: unknown) => void;
  private readonly entries = new Map<string, Entry>();
  private readonly peers = new Map<string, PeerCounts>();
  private readonly timer: NodeJS.Timeout;
  private syncing: Promise<void> | undefined;
  private followUp: Promise<void> | undefined;
  /** The share's own calls, which may outlive an exchange given up on: never two of a kind at once. */
  private readonly outstanding: { exchange?: Promise<unknown>; lookup?: Promise<unknown> } = {};
  /** Keys new here whose counts on the other nodes are to be asked for before the next exchange. */
  private readonly freshIds = new Set<string>();
  private lookupTimer: NodeJS.Timeout | undefined;
  private lastLookup = 0;
  private closed = false;
  private readonly maxKeys: number;
  private readonly onFull: () => void;
  private full = false;
  private lastSync = 0;
  private readonly exchangeTimeoutMs: number;

  constructor(options: RequestRatesOptions) {
    this.windowMs = options.windowSeconds * 1000;
    this.share = options.share;
    this.now = options.now ?? Date.now;
    this.onError = options.onError ?? (() => undefined);
    this.maxKeys = options.maxKeys ?? 500_000;
    this.exchangeTimeoutMs = options.exchangeTimeoutMs ?? 5000;
    this.onFull = options.onFull ?? (() => undefined);
    this.timer = setInterval(() => void this.sync(), options.syncMs ?? 1000);
    this.timer.unref();
  }

  /**
   * Counts `weight` requests (a batch's entries) under every counter when all have room for them;
   * counts nothing when one has not. A refusal names the counter that frees up last.
   */
  admit(counters: readonly RateCounter[], weight = 1): Admission | undefined {
    if (counters.length === 0) return undefined;
    const now = this.now();
    const window = Math.floor(now / this.windowMs);
    const elapsed = (now - window * this.windowMs) / this.windowMs;
    const reset = Math.ceil(((window + 1) * this.windowMs - now) / 1000 - epsilon);
    let nearest: Admission | undefined;
    let refusal: Admission | undefined;
    const entries: [Entry, RateCounter][] = [];
    for (const counter of counters) {
      const entry = this.entry(counter.key, window);
      if (!entry) continue;
      const peer = this.peerCounts(entry.id, window);
      const previous = entry.previous + peer.previous;
      const current = entry.current + peer.current;
      const estimate = previous * (1 - elapsed) + current;
      if (estimate + weight > counter.limit) {
        const firstRefusal = entry.refusedIn !== window;
        entry.refusedIn = window;
        const retryAfter = this.retryAfter(counter.limit, weight, previous, current, elapsed);
        const neverFits = weight > counter.limit;
        if (!refusal || neverFits || (!refusal.neverFits && retryAfter > refusal.retryAfter!)) {
          refusal = { allowed: false, counter, remaining: 0, reset, retryAfter, firstRefusal, ...(neverFits ? { neverFits } : {}) };
        }
        continue;
      }
      const remaining = Math.max(0, Math.floor(counter.limit - estimate - weight));
      if (!nearest || remaining < nearest.remaining) nearest = { allowed: true, counter, remaining, reset };
      entries.push([entry, counter]);
    }
    if (refusal) return refusal;
    let hot = false;
    for (const [entry, counter] of entries) {
      entry.current += weight;
      entry.dirty = true;
      entry.sinceSync += weight;
      if (entry.sinceSync * 4 >= counter.limit) hot = true;
    }
    // A key filling fast is exchanged before the next tick (at most ten times a second), off this request's path.
    if (hot && this.share && !this.syncing && !this.closed && now - this.lastSync >= 100) {
      this.lastSync = now;
      setImmediate(() => void this.sync());
    }
    return nearest;
  }

  /** Publishes this node's counts and takes the others'; without a share, only forgets keys gone quiet. */
  sync(): Promise<void> {
    if (this.closed) return Promise.resolve();
    // Asked while one runs: one more after it, for the counts made since it took its snapshot.
    if (this.syncing) {
      this.followUp ??= this.syncing.then(() => {
        this.followUp = undefined;
        return this.sync();
      });
      return this.followUp;
    }
    const now = this.now();
    const window = Math.floor(now / this.windowMs);
    this.forgetQuiet(window);
    if (!this.share) return Promise.resolve();
    this.lastSync = now;
    this.syncing = this.exchange(this.share, window).catch(this.onError).finally(() => {
      this.syncing = undefined;
    });
    return this.syncing;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    clearTimeout(this.lookupTimer);
    // An exchange stuck on an unreachable database does not hold the shutdown.
    const closing = (async () => {
      await this.syncing;
      await this.share?.close();
    })().catch(this.onError);
    await Promise.race([closing, delay(1000)]);
  }

  private forgetQuiet(window: number): void {
    for (const [key, entry] of this.entries) {
      this.roll(entry, window);
      if (entry.current === 0 && entry.previous === 0) this.entries.delete(key);
    }
    if (this.entries.size < this.maxKeys) this.full = false;
  }

  private async exchange(share: RateShare, window: number): Promise<void> {
    // The call an earlier exchange gave up on still holds the connection: queueing behind it would
    // only pile up snapshots. The counts stay dirty for the next tick.
    if (this.outstanding.exchange) throw new Error('the previous exchange has not answered yet');
    const own: PublishedCount[] = [];
    const expires = (window + 2) * this.windowMs;
    const published: Entry[] = [];
    const ids: string[] = [];
    for (const entry of this.entries.values()) {
      ids.push(entry.id);
      entry.sinceSync = 0;
      if (!entry.dirty) continue;
      own.push({ id: entry.id, window: entry.window, count: entry.current, expires });
      // Requests counted just before the window turned were never published as that window's.
      if (entry.previous > 0) own.push({ id: entry.id, window: entry.window - 1, count: entry.previous, expires });
      published.push(entry);
    }
    // Cleared before the round trip: a request counted meanwhile marks its entry again.
    for (const entry of published) entry.dirty = false;
    this.freshIds.clear();
    let counts: SharedCount[];
    try {
      counts = await this.ask('exchange', () => share.exchange(own, ids, window - 1));
    } catch (err) {
      for (const entry of published) entry.dirty = true;
      throw err;
    }
    this.takePeers(ids, counts, window);
    // Keys forgotten here are forgotten as peers too.
    const live = new Set<string>();
    for (const entry of this.entries.values()) live.add(entry.id);
    for (const id of this.peers.keys()) if (!live.has(id)) this.peers.delete(id);
  }

  /**
   * The other nodes' counts of keys new here, asked for at once (at most 20 times a second, off
   * the request's path) rather than at the next exchange: a user a balancer sends round the nodes
   * meets the limit from the start, not a second of requests later on each node.
   */
  private scheduleLookup(): void {
    if (this.lookupTimer || this.closed) return;
    this.lookupTimer = setTimeout(() => {
      this.lookupTimer = undefined;
      void this.lookUp();
    }, Math.max(0, this.lastLookup + 50 - Date.now()));
    this.lookupTimer.unref();
  }

  private async lookUp(): Promise<void> {
    const share = this.share;
    if (!share || this.closed || this.freshIds.size === 0) return;
    // One outstanding lookup at most; the keys wait for it (or for the next exchange).
    if (this.outstanding.lookup) return this.scheduleLookup();
    this.lastLookup = Date.now();
    const ids = [...this.freshIds];
    this.freshIds.clear();
    const window = Math.floor(this.now() / this.windowMs);
    try {
      this.takePeers(ids, await this.ask('lookup', () => share.exchange([], ids, window - 1)), window);
    } catch (err) {
      this.onError(err);
    }
  }

  /** The other nodes' counts of `ids` as answered, replacing what was known of them. */
  private takePeers(ids: readonly string[], counts: readonly SharedCount[], window: number): void {
    const fetched = new Map<string, PeerCounts>();
    for (const { id, window: w, count } of counts) {
      const peer = fetched.get(id) ?? { window, current: 0, previous: 0 };
      if (w === window) peer.current += count;
      else if (w === window - 1) peer.previous += count;
      fetched.set(id, peer);
    }
    for (const id of ids) {
      const peer = fetched.get(id);
      if (peer) this.peers.set(id, peer);
      else this.peers.delete(id);
    }
  }

  /** One call to the share, given up on after the timeout; a kind of call still outstanding is not made again. */
  private ask<T>(kind: 'exchange' | 'lookup', call: () => Promise<T>): Promise<T> {
    if (this.outstanding[kind]) return Promise.reject(new Error(`the previous ${kind} has not answered yet`));
    const pending = call();
    this.outstanding[kind] = pending;
    const settled = () => {
      if (this.outstanding[kind] === pending) delete this.outstanding[kind];
    };
    pending.then(settled, settled);
    return withTimeout(pending, this.exchangeTimeoutMs);
  }

  /** The key's counts, made when new; undefined when the table is full (the key goes uncounted). */
  private entry(key: string, window: number): Entry | undefined {
    let entry = this.entries.get(key);
    if (!entry) {
      if (this.entries.size >= this.maxKeys) {
        if (!this.full) this.onFull();
        this.full = true;
        return undefined;
      }
      // The window's length is part of the shared id: nodes configured differently never mix their counts.
      const id = this.share ? this.share.id(`${this.windowMs}|${key}`) : key;
      entry = { id, window, current: 0, previous: 0, dirty: false, refusedIn: -1, sinceSync: 0 };
      this.entries.set(key, entry);
      if (this.share) {
        this.freshIds.add(id);
        this.scheduleLookup();
      }
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

  /** Seconds until the sliding count leaves room for `weight` requests, assuming no more arrive. */
  private retryAfter(limit: number, weight: number, previous: number, current: number, elapsed: number): number {
    const room = limit - weight;
    // A batch larger than the limit never fits: the client is told the longest wait, a whole window.
    if (room < 0) return Math.ceil(2 * this.windowMs / 1000);
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
    return Math.max(1, Math.ceil(seconds - epsilon));
  }
}

const none = { current: 0, previous: 0 } as const;
/** Floating-point slack, so an exact whole number of seconds is not rounded up. */
const epsilon = 1e-9;

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the exchange took over ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
