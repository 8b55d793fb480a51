import type { ChainRow } from './audit-chain.ts';

/**
 * The audit trail as the commands that look after it see it (bastion audit verify, export, purge:
 * cli/audit.ts, retention.ts, verify-trail.ts), whichever store keeps it: the embedded store's
 * audit file (store/sqlite/audit-schema.ts) or PostgreSQL's tables (store/postgres/audit-log.ts),
 * adapted in trail-stores.ts. On PostgreSQL other nodes append while these run.
 */
export interface AuditTrail {
  /**
   * Every stored record with its link, in position order, as one view of the trail (a snapshot
   * where others append meanwhile). Read once; stopping early releases it.
   */
  chainRows(): AsyncIterable<ChainRow> | Iterable<ChainRow>;
  /** The stored records recorded in [since, until), `recorded` compared as bytes, in position order. */
  recordsBetween(since: string, until: string): AsyncIterable<TrailRecord> | Iterable<TrailRecord>;
  /** The link stored for record `seq`, if it is there. */
  linkAt(seq: number): Promise<Buffer | undefined>;
  /** How many records the chain holds (the last position, purged ones included) and the last link. */
  head(): Promise<TrailHead>;
  /** The signed checkpoints kept with the trail, oldest first. */
  checkpoints(): Promise<TrailCheckpoint[]>;
  /** The purges after retention, oldest first. */
  purges(): Promise<TrailPurge[]>;
  /** Keeps the signed purge and removes records 1..through (what the purge allows), in one transaction. */
  removeThrough(purge: TrailPurge): Promise<void>;
  /** Appends one record after every other, chained; resolves with its position once committed. */
  appendChained(recorded: string, event: string): Promise<number>;
  appendCheckpoint(checkpoint: TrailCheckpoint): Promise<void>;
}

export interface TrailRecord {
  seq: number;
  recorded: string;
  event: string;
}

export interface TrailHead {
  count: number;
  head: Buffer;
}

/** A signed checkpoint of the chain's head (checkpoints.ts). */
export interface TrailCheckpoint {
  count: number;
  head: Buffer;
  at: string;
  jws: string;
}

/** A purge: records 1..through were removed; the chain goes on from `head`, the link of record `through` (retention.ts). */
export interface TrailPurge {
  through: number;
  head: Buffer;
  before: string;
  at: string;
  jws: string;
}
