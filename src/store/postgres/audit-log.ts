/**
 * The audit trail on PostgreSQL, appended by several Bastion nodes at once.
 *
 * One chain, whatever the number of nodes: a verifier checks it by the embedded store's rule
 * (record n's link = chainHash(link n-1, recorded, event), positions 1, 2, 3... without a gap), so a
 * trail moved from the embedded store, or appended by one node or by ten, verifies the same way.
 * Each node would otherwise need its own chain, and a gap or a fork could not be told from a
 * deletion. What makes the one chain safe is a one-row table, audit_head (the last position and
 * link), that an append locks FOR UPDATE in its transaction: positions and links are assigned under
 * that lock from the head it read, and the head moves on in the same commit. Two nodes can
 * therefore never read the same head (no fork), and a transaction that fails rolls its positions
 * back with it (no gap; a sequence would leave one). Links are computed by the node, not the
 * database, so the chain stays the one the verifier recomputes.
 *
 * The lock makes appends of all nodes one queue, so each node group-commits: while its transaction
 * is in flight, further appends wait and go together in the next one: one lock, one statement
 * (every row of the batch through unnest arrays) and one commit per batch, whatever the request
 * rate. The lock is held for about one commit; the rest (parsing search keys, months) is done
 * before it is taken. Search keys are written in the same transaction as their records: a search
 * never has an unindexed tail to read, and PostgreSQL has no page encryption that made the
 * embedded store defer them.
 *
 * Monthly partitions (audit_log is partitioned by the month `recorded` names) keep indexes and
 * vacuum per month, and let a purge after retention drop whole months instead of deleting rows.
 * A partition is created before the first batch that needs it, under an advisory lock, because
 * several nodes may need it at once; next month's is made ahead. Rows no partition takes (creation
 * failed, an unparsable or far-future time) go to the DEFAULT partition, so an append never fails
 * for lack of one. `recorded` stays the text that was hashed; the partition key is derived from it.
 * Positions say nothing about months, so a lookup by position would descend every month's index
 * (six years of retention: 72 of them); audit_month keeps each month's first and last position,
 * written in the append's statement, and a lookup names the months it needs for PostgreSQL to
 * prune the rest.
 *
 * Append-only is enforced by the database for every client, not only Bastion: triggers refuse
 * UPDATE, DELETE and TRUNCATE of records and links (in one row), checkpoints and purges, except
 * the deletion of records a signed purge covers. A role that owns the tables can still disable a
 * trigger or drop a table; the chain and the signed checkpoints make that evident, and production
 * grants the nodes' role INSERT and SELECT only, with the tables owned by the role that migrates.
 *
 * Times: a search turns a time range into positions by bisection, assuming records arrive in time
 * order give or take five minutes. With several nodes that includes their clocks' skew: keep nodes
 * on NTP, far inside that.
 */
import type { Database, Queryable } from './database.ts';
import { pgCode } from './database.ts';
import { ensureSchema, migrate } from './migrate.ts';
import type { AuditCandidateQuery, AuditQuery, AuditRecord, StoredAuditRecord } from '../store.ts';
import { chainHash } from '../../crypto/hash-chain.ts';
import { candidatePositions } from '../audit-positions.ts';
import { indexKeysOf, keyHash } from '../../audit/audit-index.ts';
import type { AuditRecordFacts } from '../../audit/audit-record.ts';

/** Schema steps of the `audit` component (never edit a released one: append). */
export const auditSteps: readonly string[] = [
  `
  CREATE FUNCTION audit_refuse() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
  BEGIN
    RAISE EXCEPTION 'audit records are append-only: % on % refused', TG_OP, TG_TABLE_NAME;
  END $$;
  -- Reads audit_purge through the search_path fixed at creation: another session's path cannot point it elsewhere.
  CREATE FUNCTION audit_refuse_unpurged_delete() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
  BEGIN
    IF OLD.seq <= (SELECT coalesce(max(through), 0) FROM audit_purge) THEN RETURN OLD; END IF;
    RAISE EXCEPTION 'audit records are append-only: only a purge after retention removes them';
  END $$;
  CREATE FUNCTION audit_head_forward() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
  BEGIN
    IF NEW.count < OLD.count OR (NEW.count = OLD.count AND NEW.head <> OLD.head) THEN
      RAISE EXCEPTION 'the audit chain head only moves forward';
    END IF;
    RETURN NEW;
  END $$;

  CREATE TABLE audit_head (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    count bigint NOT NULL,
    head bytea NOT NULL
  );
  INSERT INTO audit_head (count, head) VALUES (0, decode(repeat('00', 32), 'hex'));
  CREATE TRIGGER audit_head_forward BEFORE UPDATE ON audit_head FOR EACH ROW EXECUTE FUNCTION audit_head_forward();
  CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head FOR EACH ROW EXECUTE FUNCTION audit_refuse();
  CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse();

  -- Each record with its link (hash): one tuple and one index entry per record. at: the month key,
  -- parsed from recorded (NULL when it does not parse: the DEFAULT partition).
  CREATE TABLE audit_log (
    seq bigint NOT NULL,
    at timestamptz,
    recorded text NOT NULL,
    event text NOT NULL,
    hash bytea NOT NULL
  ) PARTITION BY RANGE (at);
  CREATE INDEX audit_log_seq ON audit_log (seq);
  CREATE TABLE audit_log_default PARTITION OF audit_log DEFAULT;
  -- Row triggers on the partitioned table are cloned to every partition, present and future.
  CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_refuse();
  CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_refuse_unpurged_delete();
  -- TRUNCATE triggers are not cloned: each partition gets its own when it is made (truncating
  -- audit_log fires those of its partitions).
  CREATE TRIGGER audit_log_default_no_truncate BEFORE TRUNCATE ON audit_log_default FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse();

  -- Search keys (audit/audit-index.ts keyHash): derived from the records, so not protected by the chain.
  CREATE TABLE audit_key (
    key bigint NOT NULL,
    seq bigint NOT NULL,
    PRIMARY KEY (key, seq)
  );
  -- The positions each month's records hold (month yyyymm of at; 0: no at), kept with every append:
  -- a lookup by position names the months it can be in, so PostgreSQL reads those partitions
  -- only, not every month's index. Derived, like the keys.
  CREATE TABLE audit_month (
    month integer PRIMARY KEY,
    lo bigint NOT NULL,
    hi bigint NOT NULL
  );

  CREATE TABLE audit_checkpoint (
    n bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    count bigint NOT NULL,
    head bytea NOT NULL,
    at text NOT NULL,
    jws text NOT NULL
  );
  CREATE TRIGGER audit_checkpoint_no_change BEFORE UPDATE OR DELETE ON audit_checkpoint FOR EACH ROW EXECUTE FUNCTION audit_refuse();
  CREATE TRIGGER audit_checkpoint_no_truncate BEFORE TRUNCATE ON audit_checkpoint FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse();

  CREATE TABLE audit_purge (
    n bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    through bigint NOT NULL,
    head bytea NOT NULL,
    before text NOT NULL,
    at text NOT NULL,
    jws text NOT NULL
  );
  CREATE TRIGGER audit_purge_no_change BEFORE UPDATE OR DELETE ON audit_purge FOR EACH ROW EXECUTE FUNCTION audit_refuse();
  CREATE TRIGGER audit_purge_no_truncate BEFORE TRUNCATE ON audit_purge FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse();
  `,
];

/** A purge: records 1..through were removed; the chain goes on from `head`, the link of record `through`. */
export interface PgPurge {
  through: number;
  head: Buffer;
  before: string;
  at: string;
  jws: string;
}

export interface PgCheckpoint {
  count: number;
  head: Buffer;
  at: string;
  jws: string;
}

/** One record with its link, as audit/audit-chain.ts verifyChain reads it. */
export interface PgChainRow {
  seq: number;
  recorded: string;
  event: string;
  hash: Buffer | null;
}

/** Records per append transaction at most (several appends' worth; one request's batch is never split). */
const maxBatch = 5000;
/** Rows per page when the chain is read. */
const chainPage = 2000;
/** Partitions are made for months up to this far ahead of now; later times go to the DEFAULT partition. */
const monthsAhead = 1;

interface Pending {
  records: AuditRecord[];
  resolve: (first: number) => void;
  reject: (err: unknown) => void;
}

interface Row {
  seq: number;
  recorded: string;
  event: string;
}

/** Months as yyyymm numbers (202611): of an instant, the next one, a month's partition and its first instant. */
function monthOf(ms: number): number {
  const d = new Date(ms);
  return d.getUTCFullYear() * 100 + d.getUTCMonth() + 1;
}
function nextMonth(month: number): number {
  return month % 100 === 12 ? month + 89 : month + 1;
}
function partitionName(month: number): string {
  return `audit_log_p${month}`;
}
function monthStart(month: number): string {
  return `${Math.floor(month / 100)}-${String(month % 100).padStart(2, '0')}-01T00:00:00Z`;
}

/** The partition key of a `recorded` text: its instant (ISO), or '' (NULL) when it does not parse to a four-digit year. */
function partitionKey(recorded: string): { at: string; month: number | undefined } {
  const ms = Date.parse(recorded);
  if (Number.isNaN(ms)) return { at: '', month: undefined };
  const year = new Date(ms).getUTCFullYear();
  if (year < 1000 || year > 9998) return { at: '', month: undefined };
  return { at: new Date(ms).toISOString(), month: monthOf(ms) };
}

function keysOf(event: string): number[] {
  try {
    return indexKeysOf(JSON.parse(event) as AuditRecordFacts).map(keyHash);
  } catch {
    // Not the facts audit/audit-record.ts makes: kept and chained, found by time only.
    return [];
  }
}

export class PgAuditLog {
  private readonly db: Database;
  private queue: Pending[] = [];
  private draining: Promise<void> | undefined;
  private closed = false;
  /** Months whose partition exists ('exists'), whose rows stay in DEFAULT ('default'), or when to try creating it again (ms). */
  private readonly partitionState = new Map<number, 'exists' | 'default' | number>();

  private constructor(db: Database) {
    this.db = db;
  }

  /** Brings the audit tables to the current schema and opens the log on them (the pool stays the caller's). */
  static async open(db: Database): Promise<PgAuditLog> {
    try {
      await ensureSchema(db);
    } catch (err) {
      // Nodes starting together on a new schema race to create it: one wins, the rest go on.
      if (pgCode(err) !== '23505' && pgCode(err) !== '42P06') throw err;
    }
    await migrate(db, 'audit', auditSteps);
    const log = new PgAuditLog(db);
    for (const month of await partitionMonths(db)) log.partitionState.set(month, 'exists');
    const now = monthOf(Date.now());
    await log.ensurePartitions([now, nextMonth(now)]);
    return log;
  }

  /** Appends records after every append before them; resolves, once committed, with the first one's position. */
  append(records: AuditRecord[]): Promise<number> {
    if (this.closed) return Promise.reject(new Error('the audit log is closed'));
    if (records.length === 0) return Promise.resolve(0);
    return new Promise<number>((resolve, reject) => {
      this.queue.push({ records, resolve, reject });
      this.draining ??= this.drain();
    });
  }

  /** Waits for the appends already made; appends after this are refused. The Database stays open (its owner closes it). */
  async close(): Promise<void> {
    this.closed = true;
    while (this.draining) await this.draining;
  }

  /** One transaction at a time; whatever queued meanwhile goes in the next one. */
  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        let n = 0;
        let take = 0;
        while (take < this.queue.length && (take === 0 || n + this.queue[take].records.length <= maxBatch)) n += this.queue[take++].records.length;
        const batch = this.queue.splice(0, take);
        try {
          await this.commitEach(batch);
        } catch (err) {
          // A statement error (bad data, a limit) in a batch of several appends: each alone, so
          // one bad record fails its own append only. Connection errors are not retried (the
          // commit may have happened).
          const code = pgCode(err);
          if (batch.length > 1 && code !== undefined && /^(22|23|54)/.test(code)) {
            for (const p of batch) await this.commitEach([p]).catch((e: unknown) => p.reject(e));
          } else {
            for (const p of batch) p.reject(err);
          }
        }
      }
    } finally {
      this.draining = undefined;
    }
  }

  private async commitEach(batch: Pending[]): Promise<void> {
    const records = batch.length === 1 ? batch[0].records : batch.flatMap((p) => p.records);
    let first = await this.commit(records);
    for (const p of batch) {
      p.resolve(first);
      first += p.records.length;
    }
  }

  /** Appends one batch in one transaction under the head lock; returns its first position. */
  private async commit(records: AuditRecord[]): Promise<number> {
    // Everything that does not need the head is done before it is locked.
    const n = records.length;
    const ats: string[] = new Array(n);
    const recorded: string[] = new Array(n);
    const events: string[] = new Array(n);
    const months = new Set<number>();
    // Each month's first and last row in the batch (0: rows without a time).
    const spans = new Map<number, [number, number]>();
    const keyed: [number, number][] = [];
    for (let i = 0; i < n; i++) {
      const r = records[i];
      const { at, month } = partitionKey(r.recorded);
      ats[i] = at;
      if (month !== undefined) months.add(month);
      const span = spans.get(month ?? 0);
      if (span) span[1] = i;
      else spans.set(month ?? 0, [i, i]);
      recorded[i] = r.recorded;
      events[i] = r.json;
      for (const key of keysOf(r.json)) keyed.push([key, i]);
    }
    // Sorted by key: neighbouring rows share index pages.
    keyed.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    const now = monthOf(Date.now());
    if (this.partitionState.get(nextMonth(now)) !== 'exists') months.add(nextMonth(now));
    await this.ensurePartitions([...months]);

    return this.db.transaction(async (conn) => {
      const [head] = await conn.query<{ count: number; head: Buffer }>('SELECT count, head FROM audit_head FOR UPDATE');
      const first = head.count + 1;
      const seqs: number[] = new Array(n);
      const hashes: string[] = new Array(n);
      let previous = head.head;
      for (let i = 0; i < n; i++) {
        previous = chainHash(previous, recorded[i], events[i]);
        seqs[i] = first + i;
        hashes[i] = previous.toString('hex');
      }
      const spanMonths = [...spans.keys()];
      // One statement: the records, their keys, their months' positions and the new head.
      await conn.query(
        `WITH records AS (
           INSERT INTO audit_log (seq, at, recorded, event, hash)
           SELECT s, nullif(a, '')::timestamptz, r, e, decode(h, 'hex') FROM unnest(?::bigint[], ?::text[], ?::text[], ?::text[], ?::text[]) AS u(s, a, r, e, h)
         ), keys AS (
           INSERT INTO audit_key (key, seq) SELECT k, s FROM unnest(?::bigint[], ?::bigint[]) AS u(k, s)
         ), months AS (
           INSERT INTO audit_month (month, lo, hi) SELECT m, l, h FROM unnest(?::integer[], ?::bigint[], ?::bigint[]) AS u(m, l, h)
           ON CONFLICT (month) DO UPDATE SET lo = least(audit_month.lo, excluded.lo), hi = greatest(audit_month.hi, excluded.hi)
         )
         UPDATE audit_head SET count = ?, head = decode(?, 'hex')`,
        [
          seqs, ats, recorded, events, hashes,
          keyed.map((k) => k[0]), keyed.map((k) => first + k[1]),
          spanMonths, spanMonths.map((m) => first + spans.get(m)![0]), spanMonths.map((m) => first + spans.get(m)![1]),
          first + n - 1, hashes[n - 1],
        ],
      );
      return first;
    });
  }

  /**
   * Makes the partitions of these months that are not known to exist, each under an advisory lock
   * (nodes needing one at once make it once). A month DEFAULT already holds rows of stays there:
   * PostgreSQL refuses a partition those rows would belong to. Other failures leave the rows to
   * DEFAULT too, and are retried a minute later.
   */
  private async ensurePartitions(months: number[]): Promise<void> {
    let latest = monthOf(Date.now());
    for (let i = 0; i < monthsAhead; i++) latest = nextMonth(latest);
    for (const month of months.sort((a, b) => a - b)) {
      const state = this.partitionState.get(month);
      if (state === 'exists' || state === 'default' || (typeof state === 'number' && state > Date.now())) continue;
      if (month > latest) continue;
      const name = partitionName(month);
      try {
        await this.db.transaction(async (conn) => {
          await conn.query('SELECT pg_advisory_xact_lock(hashtext(?))', [`bastion-audit-partition:${this.db.schema}`]);
          const [found] = await conn.query<{ r: string | null }>('SELECT to_regclass(?)::text AS r', [name]);
          if (found.r !== null) return;
          // Names and bounds are made from numbers here: safe in the statement.
          await conn.exec(
            `CREATE TABLE ${name} PARTITION OF audit_log FOR VALUES FROM ('${monthStart(month)}') TO ('${monthStart(nextMonth(month))}');
             CREATE TRIGGER ${name}_no_truncate BEFORE TRUNCATE ON ${name} FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse();`,
          );
        });
        this.partitionState.set(month, 'exists');
      } catch (err) {
        const code = pgCode(err);
        if (code === '23514') this.partitionState.set(month, 'default');
        else if (code === '42P07') this.partitionState.set(month, 'exists');
        else this.partitionState.set(month, Date.now() + 60_000);
      }
    }
  }

  /** Appended records in order, a page at a time. */
  async records(query: AuditQuery): Promise<StoredAuditRecord[]> {
    // Up to the last record committed when the months were read: every one before it is there too
    // (positions are handed out in commit order), so paging on never skips one committed later.
    const map = await this.monthMap();
    const lo = query.afterSeq + 1;
    if (lo > map.count) return [];
    const rows = await this.db.query<Row>(
      `SELECT seq, recorded, event FROM audit_log WHERE seq BETWEEN ? AND ? AND ${inMonths} ORDER BY seq LIMIT ?`,
      [lo, map.count, ...map.holding(lo, map.count), query.limit],
    );
    return rows.map(stored);
  }

  async recordAt(seq: number): Promise<StoredAuditRecord | undefined> {
    const [row] = await this.at<Row>('seq, recorded, event', seq);
    return row ? stored(row) : undefined;
  }

  /** The chain's head: how many records it holds (the last position, purged ones included) and the last link. */
  async head(): Promise<{ count: number; head: Buffer }> {
    const [row] = await this.db.query<{ count: number; head: Buffer }>('SELECT count, head FROM audit_head');
    return { count: row.count, head: row.head };
  }

  async appendCheckpoint(c: PgCheckpoint): Promise<void> {
    await this.db.query('INSERT INTO audit_checkpoint (count, head, at, jws) VALUES (?, ?, ?, ?)', [c.count, c.head, c.at, c.jws]);
  }

  async checkpoints(): Promise<PgCheckpoint[]> {
    return this.db.query<PgCheckpoint>('SELECT count, head, at, jws FROM audit_checkpoint ORDER BY n');
  }

  /** The link stored for record `seq`, if there is one. */
  async linkAt(seq: number): Promise<Buffer | undefined> {
    const [row] = await this.at<{ hash: Buffer }>('hash', seq);
    return row?.hash;
  }

  private async at<T>(columns: string, seq: number): Promise<T[]> {
    const map = await this.monthMap();
    return this.db.query<T>(`SELECT ${columns} FROM audit_log WHERE seq = ? AND ${inMonths} LIMIT 1`, [seq, ...map.holding(seq, seq)]);
  }

  /** Which months hold which positions, and the last position, as of now (one snapshot). */
  private async monthMap(): Promise<MonthMap> {
    const rows = await this.db.query<{ count: number; month: number | null; lo: number | null; hi: number | null }>(
      'SELECT h.count, m.month, m.lo, m.hi FROM audit_head h LEFT JOIN audit_month m ON true ORDER BY m.lo',
    );
    const spans: Span[] = rows.filter((r) => r.month !== null).map((r) => ({ month: r.month!, lo: r.lo!, hi: r.hi! }));
    return new MonthMap(rows[0]?.count ?? 0, spans);
  }

  async purges(): Promise<PgPurge[]> {
    return this.db.query<PgPurge>('SELECT through, head, before, at, jws FROM audit_purge ORDER BY n');
  }

  /**
   * The whole log with its links in position order, for verifyChain: read through a cursor in one
   * snapshot, a page at a time (every row, a duplicated position included). Stopping early ends it.
   */
  chainRows(): AsyncGenerator<PgChainRow> {
    return this.cursor<PgChainRow>('SELECT seq, recorded, event, hash FROM audit_log ORDER BY seq', []);
  }

  /**
   * The records recorded in [since, until), in position order, read like chainRows (bastion audit
   * export). `recorded` is compared as bytes (COLLATE "C"), as the embedded store compares it,
   * whatever the database's collation.
   */
  recordsBetween(since: string, until: string): AsyncGenerator<Row> {
    return this.cursor<Row>('SELECT seq, recorded, event FROM audit_log WHERE recorded COLLATE "C" >= $1 AND recorded COLLATE "C" < $2 ORDER BY seq', [since, until]);
  }

  /** The rows of a query through a cursor in one snapshot, a page at a time; stopping early ends it. */
  private async *cursor<T extends Row>(sql: string, args: string[]): AsyncGenerator<T> {
    const client = await this.db.pool.connect();
    let failed = false;
    // A connection the server ends between pages must be heard, not stop the process (see Database.withClient).
    const onError = () => (failed = true);
    client.on('error', onError);
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      await client.query(`DECLARE audit_rows NO SCROLL CURSOR FOR ${sql}`, args);
      for (;;) {
        const page = await client.query<T>(`FETCH ${chainPage} FROM audit_rows`);
        yield* page.rows;
        if (page.rows.length < chainPage) break;
      }
    } catch (err) {
      failed = true;
      throw err;
    } finally {
      await client.query('ROLLBACK').catch(() => (failed = true));
      client.off('error', onError);
      client.release(failed);
    }
  }

  /**
   * Removes records 1..through with their search keys, after keeping the signed purge that allows
   * it (the triggers refuse the deletes otherwise), in one transaction. Months wholly covered are
   * dropped rather than deleted row by row. The bulk is deleted beside appends (they never touch
   * positions this low); then, holding the head so appends wait a moment, months are dropped and
   * audit_month made exact, as appends would otherwise change it meanwhile.
   */
  async removeThrough(purge: PgPurge): Promise<void> {
    const through = purge.through;
    const dropped: number[] = [];
    await this.db.transaction(async (conn) => {
      await conn.query('INSERT INTO audit_purge (through, head, before, at, jws) VALUES (?, ?, ?, ?, ?)', [through, purge.head, purge.before, purge.at, purge.jws]);
      await conn.query('DELETE FROM audit_key WHERE seq <= ?', [through]);
      const covered = async () => {
        const own = new Set(await partitionMonths(conn));
        const spans = await conn.query<Span>('SELECT month, lo, hi FROM audit_month WHERE lo <= ? ORDER BY lo', [through]);
        // A month is dropped whole when its partition holds only records the purge covers.
        const whole = (s: Span) => s.month !== 0 && own.has(s.month) && s.hi <= through;
        return { whole: spans.filter(whole), partly: spans.filter((s) => !whole(s)) };
      };
      const deleteIn = async (spans: Span[]) => {
        if (spans.length === 0) return;
        await conn.query(`DELETE FROM audit_log WHERE seq <= ? AND ${inMonths}`, [through, ...new MonthMap(through, spans).holding(0, through)]);
      };
      const before = await covered();
      await deleteIn(before.partly);

      await conn.query('SELECT count FROM audit_head FOR UPDATE');
      const now = await covered();
      // A month that took a record (an old one, late) since is deleted from, not dropped.
      await deleteIn(now.partly.filter((s) => !before.partly.some((b) => b.month === s.month)));
      if (now.whole.length > 0) {
        await conn.exec('LOCK TABLE audit_log IN ACCESS EXCLUSIVE MODE');
        for (const s of now.whole) {
          // Named from a number: safe in the statement.
          await conn.exec(`DROP TABLE ${partitionName(s.month)}`);
          dropped.push(s.month);
        }
      }
      // Each month's first position again, over what stays (a lookup by position starts there).
      await conn.query('DELETE FROM audit_month WHERE hi <= ?', [through]);
      for (const m of now.partly.filter((s) => s.hi > through)) {
        const [first] = await conn.query<{ seq: number }>(
          `SELECT seq FROM audit_log WHERE seq > ? AND seq <= ? AND ${m.month === 0 ? 'at IS NULL' : 'at >= ?::timestamptz AND at < ?::timestamptz'} ORDER BY seq LIMIT 1`,
          m.month === 0 ? [through, m.hi] : [through, m.hi, monthStart(m.month), monthStart(nextMonth(m.month))],
        );
        await conn.query('UPDATE audit_month SET lo = ? WHERE month = ?', [first?.seq ?? m.hi, m.month]);
      }
    });
    for (const month of dropped) this.partitionState.delete(month);
  }

  /** Candidates of an audit trail search, one page in position order (see Store.auditCandidates; positions: store/audit-positions.ts). */
  async candidates(q: AuditCandidateQuery): Promise<StoredAuditRecord[]> {
    const map = await this.monthMap();
    // Each probe of the bisection reads only the months that can hold the record it looks for.
    const range = await candidatePositions(map.first(), map.count, q, async (seq) => (await this.db.query<{ recorded: string }>(
      `SELECT recorded FROM audit_log WHERE seq BETWEEN ? AND ? AND ${inMonths} ORDER BY seq LIMIT 1`,
      [seq, map.count, ...map.around(seq)],
    ))[0]?.recorded);
    if (!range) return [];
    const [lo, hi] = range;
    const order = q.descending ? 'DESC' : 'ASC';
    if (!q.keys) {
      const rows = await this.db.query<Row>(
        `SELECT seq, recorded, event FROM audit_log WHERE seq BETWEEN ? AND ? AND ${inMonths} ORDER BY seq ${order} LIMIT ?`,
        [lo, hi, ...map.holding(lo, hi), q.limit],
      );
      return rows.map(stored);
    }
    const keys = [...new Set(q.keys.map(keyHash))];
    if (keys.length === 0) return [];
    // One ordered range per key (each walks its own stretch of the (key, seq) index), merged;
    // then the records at those positions.
    const seqs = (await this.db.query<{ seq: number }>(
      `SELECT DISTINCT k.seq FROM unnest(?::bigint[]) AS q(key)
       CROSS JOIN LATERAL (SELECT seq FROM audit_key WHERE key = q.key AND seq BETWEEN ? AND ? ORDER BY seq ${order} LIMIT ?) k
       ORDER BY k.seq ${order} LIMIT ?`,
      [keys, lo, hi, q.limit, q.limit],
    )).map((r) => r.seq);
    if (seqs.length === 0) return [];
    const rows = await this.db.query<Row>(
      `SELECT seq, recorded, event FROM audit_log WHERE seq = ANY(?::bigint[]) AND ${inMonths} ORDER BY seq ${order}`,
      // In order: the first and last are the lowest and highest.
      q.descending ? [seqs, ...map.holding(seqs[seqs.length - 1], seqs[0])] : [seqs, ...map.holding(seqs[0], seqs[seqs.length - 1])],
    );
    return rows.map(stored);
  }

}

/**
 * Which months hold which positions (audit_month), to narrow a lookup by position to those
 * months' partitions: a condition on `at`, with the bounds holding() gives, that PostgreSQL prunes
 * partitions by. Rows without a time (in DEFAULT) are always included.
 */
const inMonths = '(at >= ?::timestamptz AND at < ?::timestamptz OR at IS NULL)';
const epoch = '1970-01-01T00:00:00Z';

/** A month's first and last position (month 0: records without a time). */
interface Span {
  month: number;
  lo: number;
  hi: number;
}

class MonthMap {
  /** The last position committed. */
  readonly count: number;
  /** By first position. */
  private readonly spans: Span[];

  constructor(count: number, spans: Span[]) {
    this.count = count;
    this.spans = spans;
  }

  /** The first position stored (undefined when none is). */
  first(): number | undefined {
    return this.spans[0]?.lo;
  }

  /** Bounds of `at` around every month holding a position in lo..hi. */
  holding(lo: number, hi: number): [string, string] {
    let from = Infinity;
    let to = -Infinity;
    for (const s of this.spans) {
      if (s.month === 0 || s.lo > hi || s.hi < lo) continue;
      from = Math.min(from, s.month);
      to = Math.max(to, s.month);
    }
    return from === Infinity ? [epoch, epoch] : [monthStart(from), monthStart(nextMonth(to))];
  }

  /**
   * Bounds of `at` around the months that can hold the first position at or after `seq`: it is no
   * later than the first position of a month that starts at or after `seq` (which exists).
   */
  around(seq: number): [string, string] {
    const next = this.spans.find((s) => s.lo >= seq)?.lo ?? this.count;
    return this.holding(seq, next);
  }
}

function stored(r: Row): StoredAuditRecord {
  return { seq: r.seq, recorded: r.recorded, json: r.event };
}

/** The months the audit log has a partition of. */
async function partitionMonths(conn: Queryable): Promise<number[]> {
  const rows = await conn.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'audit_log'::regclass`,
  );
  return rows.flatMap((r) => {
    const month = /^audit_log_p(\d{6})$/.exec(r.name);
    return month ? [Number(month[1])] : [];
  });
}
