import { createHmac, randomUUID } from 'node:crypto';
import type { PublishedCount, RateShare, SharedCount } from '../rate-share.ts';
import { Database } from './database.ts';
import { ensureSchema, migrate } from './migrate.ts';

/**
 * Request counts shared by the nodes of one database: each node's count per key and window, one
 * row each, summed by the others once a second. UNLOGGED: counts are worth a minute, not a crash
 * recovery or a replica, and skipping the write-ahead log keeps the exchange cheap.
 */
const steps = [
  `CREATE UNLOGGED TABLE rate_counts (
    time_window BIGINT NOT NULL,
    id TEXT NOT NULL,
    node TEXT NOT NULL,
    count INTEGER NOT NULL,
    expires BIGINT NOT NULL,
    PRIMARY KEY (time_window, id, node)
  )`,
  'CREATE INDEX rate_counts_expires ON rate_counts (expires)',
] as const;

/** Exchanges purge windows gone by once in this many. */
const purgeEvery = 30;

export interface PgRateShareOptions {
  url: string;
  schema: string;
  /** This node's name: its own rows are told apart from the others'. */
  node: string;
  /** Keys are stored as MACs under it (user ids and addresses stay out of the table). */
  lookupKey: Buffer;
  /** How long a connection or a statement may take before it is given up. */
  timeoutMs?: number;
}

/** One node's side of the shared counts, in a table of the database. */
export class PgRateShare implements RateShare {
  private readonly db: Database;
  private readonly node: string;
  private readonly lookupKey: Buffer;
  private exchanges = 0;

  private constructor(db: Database, options: PgRateShareOptions) {
    this.db = db;
    // A process of its own: two nodes given one name (or a restart) never overwrite each other's counts.
    this.node = `${options.node}/${randomUUID()}`;
    this.lookupKey = options.lookupKey;
  }

  static async open(options: PgRateShareOptions): Promise<PgRateShare> {
    if (options.lookupKey.length < 32) throw new Error('PgRateShare: the lookup key must be at least 32 bytes');
    // Two connections: the exchange once a second, and lookups of keys new to the node, each never two at a time.
    const db = new Database({ url: options.url, schema: options.schema, max: 2, timeoutMs: options.timeoutMs ?? 5000 });
    try {
      await ensureSchema(db);
      await migrate(db, 'rates', steps);
    } catch (err) {
      await db.close().catch(() => undefined);
      throw err;
    }
    return new PgRateShare(db, options);
  }

  id(key: string): string {
    return createHmac('sha256', this.lookupKey).update(`rate-limit|${key}`).digest('base64url').slice(0, 22);
  }

  async exchange(own: PublishedCount[], ids: string[], since: number): Promise<SharedCount[]> {
    if (own.length > 0) {
      await this.db.query(
        `INSERT INTO rate_counts (time_window, id, node, count, expires)
         SELECT w, i, ?, c, e FROM unnest(?::bigint[], ?::text[], ?::int[], ?::bigint[]) AS u(w, i, c, e)
         ON CONFLICT (time_window, id, node) DO UPDATE SET count = excluded.count, expires = excluded.expires`,
        [this.node, own.map((c) => c.window), own.map((c) => c.id), own.map((c) => c.count), own.map((c) => c.expires)],
      );
    }
    if (++this.exchanges % purgeEvery === 0) await this.db.query('DELETE FROM rate_counts WHERE expires < ?', [Date.now()]);
    if (ids.length === 0) return [];
    // Only the keys this node counts: a key new here is asked for at the next exchange.
    return this.db.query<SharedCount>(
      `SELECT id, time_window AS "window", sum(count)::int AS count FROM rate_counts
       WHERE time_window >= ? AND id = ANY(?::text[]) AND node <> ? GROUP BY time_window, id`,
      [since, ids, this.node],
    );
  }

  close(): Promise<void> {
    return this.db.close();
  }
}
