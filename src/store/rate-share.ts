/**
 * What several nodes share of their request counts (the rate limits, monitor/request-rates.ts):
 * each publishes its own counts and reads the others'. On PostgreSQL, postgres/rate-share.ts.
 */
export interface RateShare {
  /** A stable identifier for a key, the same on every node (a keyed MAC: no user id in the database). */
  id(key: string): string;
  /** Publishes this node's counts (absolute, per window) and returns the other nodes' sums of the keys `ids` for the windows from `since` on. */
  exchange(own: PublishedCount[], ids: string[], since: number): Promise<SharedCount[]>;
  close(): Promise<void>;
}

/** A count of one key (its identifier) in one window. */
export interface SharedCount {
  id: string;
  window: number;
  count: number;
}

/** A count as published, with the time (ms since the epoch) after which it no longer matters to anyone: nodes with other window lengths purge by time, not by window number. */
export interface PublishedCount extends SharedCount {
  expires: number;
}
