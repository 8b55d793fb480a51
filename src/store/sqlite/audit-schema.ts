import type { Db } from './open.ts';
import { migrate } from './migrations.ts';
import { chainHash, genesis } from '../../crypto/hash-chain.ts';
import { indexKeysOf, keyHash } from '../../audit/audit-index.ts';
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
  // 5: purges after retention (audit/retention.ts). A purge is a signed record of where the chain
  // goes on from; the log and the chain refuse deletes except of records a purge covers.
  `
  CREATE TABLE audit_purge (
    n INTEGER PRIMARY KEY,
    through INTEGER NOT NULL,
    head BLOB NOT NULL,
    before TEXT NOT NULL,
    at TEXT NOT NULL,
    jws TEXT NOT NULL
  );
  CREATE TRIGGER audit_purge_no_update BEFORE UPDATE ON audit_purge BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
  CREATE TRIGGER audit_purge_no_delete BEFORE DELETE ON audit_purge BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
  DROP TRIGGER audit_log_no_delete;
  CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log WHEN OLD.seq > (SELECT coalesce(max(through), 0) FROM audit_purge)
    BEGIN SELECT RAISE(ABORT, 'audit records are append-only: only a purge after retention removes them'); END;
  DROP TRIGGER audit_chain_no_delete;
  CREATE TRIGGER audit_chain_no_delete BEFORE DELETE ON audit_chain WHEN OLD.seq > (SELECT coalesce(max(through), 0) FROM audit_purge)
    BEGIN SELECT RAISE(ABORT, 'audit records are append-only: only a purge after retention removes them'); END;
  `,
  // 6: search keys as 52-bit hashes (audit/audit-index.ts keyHash): integer rows are a third of
  // the size of text ones and quicker to insert; a collision only adds a candidate the search's
  // own tests drop. Rebuilt from the log.
  `
  DROP TABLE audit_key;
  CREATE TABLE audit_key (
    key INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (key, seq)
  ) WITHOUT ROWID;
  UPDATE audit_key_progress SET upto = 0;
  `,
  // 7: the time index goes: records are appended in time order (give or take an append's lag),
  // so a time is found by bisecting positions (audit-candidates.ts), and appending keeps one
  // b-tree fewer per record.
  `
  DROP INDEX audit_log_recorded;
  `,
];

/** A purge: records 1..through were removed; the chain goes on from `head`, the link of record `through`. */
export interface StoredPurge {
  through: number;
  head: Buffer;
  before: string;
  at: string;
  jws: string;
}

export function purges(db: Db): StoredPurge[] {
  return db.prepare<[], StoredPurge>('SELECT through, head, before, at, jws FROM audit_purge ORDER BY n').all();
}

/**
 * Removes records 1..through with their links and search keys, after keeping the signed purge that
 * allows it (the triggers refuse the deletes otherwise), in one transaction.
 */
export function removeThrough(db: Db, purge: StoredPurge): void {
  db.transaction(() => {
    db.prepare('INSERT INTO audit_purge (through, head, before, at, jws) VALUES (?, ?, ?, ?, ?)').run(purge.through, purge.head, purge.before, purge.at, purge.jws);
    db.prepare('DELETE FROM audit_key WHERE seq <= ?').run(purge.through);
    db.prepare('DELETE FROM audit_chain WHERE seq <= ?').run(purge.through);
    db.prepare('DELETE FROM audit_log WHERE seq <= ?').run(purge.through);
  })();
}

/** Appends one record, chained and indexed, from outside the server (the server must be stopped: its worker holds the head). */
export function appendChained(db: Db, recorded: string, event: string): number {
  const { head } = auditHead(db);
  return db.transaction(() => {
    const seq = Number(db.prepare('INSERT INTO audit_log (recorded, event) VALUES (?, ?)').run(recorded, event).lastInsertRowid);
    db.prepare('INSERT INTO audit_chain (seq, hash) VALUES (?, ?)').run(seq, chainHash(head, recorded, event));
    return seq;
  })();
}

/**
 * Search keys are not written with each append: keys scattered over a large index dirtied a page
 * per key in every group commit (each encrypted and written to the WAL), which tripled the cost of
 * appending. The audit worker writes them in sorted stretches once appends pause, or once this
 * many records wait under load that never pauses; a search reads the records not indexed yet (at
 * most about this many) as they are (audit-candidates.ts).
 */
export const auditIndexMaxLag = 50_000;
/** Records indexed per transaction (appends wait no longer than one of these). */
export const auditIndexStretch = 20_000;

/** The last position whose search keys are written. */
export function indexedUpto(db: Db): number {
  return db.prepare('SELECT upto FROM audit_key_progress').pluck().get() as number;
}

/** Writes the search keys of (at most `limit` of) the records not indexed yet, in one transaction; returns how many. */
export function indexExisting(db: Db, limit = Number.MAX_SAFE_INTEGER): number {
  const upto = indexedUpto(db);
  const rows = db.prepare<[number, number], { seq: number; event: string }>('SELECT seq, event FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?').all(upto, limit);
  if (rows.length === 0) return 0;
  // Grouped by key (positions come in order), keys sorted: neighbouring rows share pages.
  const byKey = new Map<number, number[]>();
  for (const r of rows) {
    for (const key of indexKeysOf(JSON.parse(r.event) as AuditRecordFacts)) {
      const h = keyHash(key);
      const seqs = byKey.get(h);
      if (seqs) seqs.push(r.seq);
      else byKey.set(h, [r.seq]);
    }
  }
  const flat: number[] = [];
  for (const h of [...byKey.keys()].sort((a, b) => a - b)) for (const seq of byKey.get(h)!) flat.push(h, seq);
  // Many rows per statement: fewer calls into SQLite.
  const perStatement = 200;
  const insertMany = db.prepare(`INSERT OR IGNORE INTO audit_key (key, seq) VALUES ${Array(perStatement).fill('(?, ?)').join(', ')}`);
  const insertOne = db.prepare<[number, number]>('INSERT OR IGNORE INTO audit_key (key, seq) VALUES (?, ?)');
  db.transaction(() => {
    let i = 0;
    for (; i + perStatement * 2 <= flat.length; i += perStatement * 2) insertMany.run(flat.slice(i, i + perStatement * 2));
    for (; i < flat.length; i += 2) insertOne.run(flat[i], flat[i + 1]);
    db.prepare('UPDATE audit_key_progress SET upto = ?').run(rows[rows.length - 1].seq);
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
  const last = auditHead(db);
  const rows = db.prepare<[number], { seq: number; recorded: string; event: string }>('SELECT seq, recorded, event FROM audit_log WHERE seq > ? ORDER BY seq').all(last.count);
  if (rows.length === 0) return 0;
  const insert = db.prepare('INSERT INTO audit_chain (seq, hash) VALUES (?, ?)');
  let previous: Buffer = last.head;
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
