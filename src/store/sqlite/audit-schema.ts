import type { Db } from './open.ts';
import { migrate } from './migrations.ts';
import { chainHash, genesis } from '../../crypto/hash-chain.ts';
import { indexKeysOf } from '../../audit/audit-index.ts';
import type { AuditRecordFacts } from '../../audit/audit-record.ts';

/**
 * The audit file's schema (its own file beside the store: see audit-writer.ts). Append-only is
 * enforced by the file itself, whoever opens it.
 */
export const auditMigrations: string[] = [
  `
  CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY,
    recorded TEXT NOT NULL,
    event TEXT NOT NULL
  );
  CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
  CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
  `,
  // 2: the hash chain (src/audit/audit-chain.ts): each record's hash, in a table as append-only as
  // the log. Records from before it are chained once, in order, on open (chainExisting).
  `
  CREATE TABLE audit_chain (
    seq INTEGER PRIMARY KEY,
    hash BLOB NOT NULL
  );
  CREATE TRIGGER audit_chain_no_update BEFORE UPDATE ON audit_chain BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
  CREATE TRIGGER audit_chain_no_delete BEFORE DELETE ON audit_chain BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
  `,
  // 3: signed checkpoints of the chain's head (src/audit/checkpoints.ts): a rewritten or shortened
  // chain no longer matches what was signed.
  `
  CREATE TABLE audit_checkpoint (
    n INTEGER PRIMARY KEY,
    count INTEGER NOT NULL,
    head BLOB NOT NULL,
    at TEXT NOT NULL,
    jws TEXT NOT NULL
  );
  CREATE TRIGGER audit_checkpoint_no_update BEFORE UPDATE ON audit_checkpoint BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
  CREATE TRIGGER audit_checkpoint_no_delete BEFORE DELETE ON audit_checkpoint BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
  `,
  // 4: the keys records are searched by (audit/audit-index.ts) and their time. Derived from the
  // log and rebuilt from it (indexExisting), so not part of what the chain protects.
  `
  CREATE TABLE audit_key (
    key TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (key, seq)
  ) WITHOUT ROWID;
  CREATE TABLE audit_key_progress (upto INTEGER NOT NULL);
  INSERT INTO audit_key_progress (upto) VALUES (0);
  CREATE INDEX audit_log_recorded ON audit_log (recorded);
  `,
];

/** Writes the search keys of appended records (the audit worker, in the append's transaction, and indexExisting). */
export function auditKeyWriter(db: Db): (seq: number, event: string) => void {
  const insert = db.prepare<[string, number]>('INSERT OR IGNORE INTO audit_key (key, seq) VALUES (?, ?)');
  const progress = db.prepare<[number]>('UPDATE audit_key_progress SET upto = ?');
  return (seq, event) => {
    for (const key of indexKeysOf(JSON.parse(event) as AuditRecordFacts)) insert.run(key, seq);
    progress.run(seq);
  };
}

/** Indexes the records appended before the search keys existed (or by a writer that did not index). */
export function indexExisting(db: Db): number {
  const upto = db.prepare('SELECT upto FROM audit_key_progress').pluck().get() as number;
  const rows = db.prepare<[number], { seq: number; event: string }>('SELECT seq, event FROM audit_log WHERE seq > ? ORDER BY seq').all(upto);
  if (rows.length === 0) return 0;
  const index = auditKeyWriter(db);
  db.transaction(() => {
    for (const r of rows) index(r.seq, r.event);
  })();
  return rows.length;
}

export interface AuditHead {
  /** Records in the chain (the last record's seq). */
  count: number;
  /** The last record's link (32 zero bytes for an empty chain). */
  head: Buffer;
}

export interface StoredCheckpoint {
  count: number;
  head: Buffer;
  at: string;
  jws: string;
}

export function auditHead(db: Db): AuditHead {
  const last = db.prepare<[], { seq: number; hash: Buffer }>('SELECT seq, hash FROM audit_chain ORDER BY seq DESC LIMIT 1').get();
  return last ? { count: last.seq, head: last.hash } : { count: 0, head: genesis };
}

export function appendCheckpoint(db: Db, c: StoredCheckpoint): void {
  db.prepare('INSERT INTO audit_checkpoint (count, head, at, jws) VALUES (?, ?, ?, ?)').run(c.count, c.head, c.at, c.jws);
}

export function checkpoints(db: Db): StoredCheckpoint[] {
  return db.prepare<[], StoredCheckpoint>('SELECT count, head, at, jws FROM audit_checkpoint ORDER BY n').all();
}

/** The link stored for record `seq`, if there is one. */
export function linkAt(db: Db, seq: number): Buffer | undefined {
  return db.prepare<[number], { hash: Buffer }>('SELECT hash FROM audit_chain WHERE seq = ?').get(seq)?.hash;
}

/** Chains the records that have no hash yet (those from before the chain), in order, after the last chained one. */
export function chainExisting(db: Db): number {
  const last = db.prepare<[], { seq: number; hash: Buffer }>('SELECT seq, hash FROM audit_chain ORDER BY seq DESC LIMIT 1').get();
  const rows = db.prepare<[number], { seq: number; recorded: string; event: string }>('SELECT seq, recorded, event FROM audit_log WHERE seq > ? ORDER BY seq').all(last?.seq ?? 0);
  if (rows.length === 0) return 0;
  const insert = db.prepare('INSERT INTO audit_chain (seq, hash) VALUES (?, ?)');
  let previous: Buffer = last?.hash ?? genesis;
  db.transaction(() => {
    for (const r of rows) {
      previous = chainHash(previous, r.recorded, r.event);
      insert.run(r.seq, previous);
    }
  })();
  return rows.length;
}

/** One record with its link, as the chain's verifier reads it. */
export interface ChainedRecord {
  seq: number;
  recorded: string;
  event: string;
  hash: Buffer | null;
}

/** The whole log with its links, in order (for audit/audit-chain.ts verifyChain). */
export function* chainRows(db: Db): Generator<ChainedRecord> {
  const rows = db.prepare<[], ChainedRecord>('SELECT l.seq AS seq, l.recorded AS recorded, l.event AS event, c.hash AS hash FROM audit_log l LEFT JOIN audit_chain c ON c.seq = l.seq ORDER BY l.seq');
  yield* rows.iterate();
}

export function migrateAudit(db: Db): number {
  return migrate(db, auditMigrations, 'audit file');
}

/**
 * Stores from before the audit file kept their records in the store file's audit_log table. Those
 * are copied, in order, into a new audit file, once; the originals stay where they were (nothing
 * deletes an audit record).
 */
export function adoptLegacyAudit(store: Db, audit: Db): number {
  const hasAudit = (audit.prepare('SELECT count(*) AS n FROM audit_log').get() as { n: number }).n > 0;
  if (hasAudit) return 0;
  const legacy = store.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'audit_log'`).get();
  if (!legacy) return 0;
  const rows = store.prepare<[], { recorded: string; event: string }>('SELECT recorded, event FROM audit_log ORDER BY seq').iterate();
  const insert = audit.prepare('INSERT INTO audit_log (recorded, event) VALUES (?, ?)');
  let n = 0;
  audit.transaction(() => {
    for (const r of rows) {
      insert.run(r.recorded, r.event);
      n++;
    }
  })();
  return n;
}
