/**
 * Bulk loading of a whole deployment into empty PostgreSQL tables (`bastion migrate`), and the
 * reading back that verifies it. Nothing here knows where the data comes from: the caller hands
 * over pages of rows as the embedded store keeps them (the tables are twins), in order.
 *
 * - Resources keep their rid, versions their seq, version number, lastUpdated, method and
 *   deletion marker. Each body is decoded with the source's codec and encoded with the target's
 *   (sealed under the resource-body key, sensitive identifiers encrypted), version by version:
 *   the AAD binds type, id and version. Many rows per statement (unnest arrays).
 * - The search index of each current version is built from the encoded resource: the rows the
 *   store writes (index-rows.ts), many resources per statement, and its security label bits.
 * - The sequences go on after the largest rid and seq.
 * - The audit trail is appended through PgAuditLog in its order, so each link is recomputed from
 *   the one before: the same records from the same start give the same chain (checked after).
 *   A trail purged after retention starts from its last purge: the signed purges are kept and
 *   the head set to the purge's anchor before appending. Signed checkpoints are copied as they are.
 */
import { createHash, type Hash } from 'node:crypto';
import type { Resource } from '../../fhir/types.ts';
import type { ClientRecord, UserRecord } from '../auth-store.ts';
import type { ResourceCodec } from '../resource-codec.ts';
import type { Database, PgArg } from './database.ts';
import { IndexBatch, indexTables } from './index-rows.ts';
import type { PgAuditLog, PgChainRow, PgCheckpoint, PgPurge } from './audit-log.ts';
import type { ImportedOAuthRecord, PgAuthStore } from './auth-store.ts';

/** A row of `resources` as the source keeps it. */
export interface ImportResource {
  rid: number;
  type: string;
  id: string;
  version: number;
  seq: number;
  lastUpdated: string;
  deleted: boolean;
}

/** A stored version as the source keeps it; `content` as the source's codec stored it (null: a deletion). */
export interface ImportVersion {
  seq: number;
  rid: number;
  type: string;
  id: string;
  version: number;
  lastUpdated: string;
  method: string;
  deleted: boolean;
  /** The resource's current version. */
  current: boolean;
  content: string | Uint8Array | null;
}

/** One audit record with its link, as the source keeps it. */
export type ImportAuditRecord = PgChainRow;

type Page<T> = T[] | Promise<T[]>;

/** Where the data comes from: pages in order (rid, seq), empty once there is no more. */
export interface ImportSource {
  resources(afterRid: number, limit: number): Page<ImportResource>;
  versions(afterSeq: number, limit: number): Page<ImportVersion>;
  auditRecords(afterSeq: number, limit: number): Page<ImportAuditRecord>;
  auditPurges(): Page<PgPurge>;
  auditCheckpoints(): Page<PgCheckpoint>;
  users(): Page<UserRecord>;
  clients(): Page<ClientRecord>;
  /** Protocol records not expired at `now` (epoch seconds). */
  oauth(now: number): Page<ImportedOAuthRecord>;
}

export interface ImportProgress {
  phase: 'resources' | 'versions' | 'audit' | 'check versions' | 'check audit';
  done: number;
  total: number;
}

export interface ImportOptions {
  /** Decodes what the source stored. */
  from: ResourceCodec;
  /** Encodes as the PostgreSQL store does (bodies sealed). */
  to: ResourceCodec;
  onProgress?: (progress: ImportProgress) => void;
  /** Statements in flight at once (the pool must have as many connections). */
  concurrency?: number;
}

export interface ImportedResources {
  resources: number;
  versions: number;
  /** Current versions indexed. */
  indexed: number;
  maxRid: number;
  maxSeq: number;
  /** What every version holds, in seq order (see VersionDigests): compared with versionDigests of the tables after. */
  digests: string[];
}

const resourcePage = 5000;
const versionPage = 500;
/** A version statement is sent once it holds this much body text (bytes travel hex-encoded in arrays). */
const versionBytes = 4 * 1024 * 1024;
const auditPage = 5000;
/** Versions per digest chunk: a mismatch is reported as the chunk it is in. */
export const digestChunk = 1000;

/**
 * Statements run side by side on the pool, at most `limit` at once; the first failure stops
 * further ones and is thrown by add() or drain().
 */
class Inflight {
  private readonly running = new Set<Promise<void>>();
  private failure: { err: unknown } | undefined;
  private readonly limit: number;

  constructor(limit: number) {
    this.limit = limit;
  }

  async add(work: () => Promise<unknown>): Promise<void> {
    this.check();
    while (this.running.size >= this.limit) await Promise.race(this.running);
    this.check();
    const p: Promise<void> = work().then(
      () => undefined,
      (err: unknown) => void (this.failure ??= { err }),
    ).finally(() => this.running.delete(p));
    this.running.add(p);
  }

  async drain(): Promise<void> {
    await Promise.all(this.running);
    this.check();
  }

  private check(): void {
    if (this.failure) throw this.failure.err;
  }
}

/**
 * What the versions hold, as running SHA-256 digests over chunks of `digestChunk` versions in seq
 * order: each version's position, resource, number, time, method, deletion and the JSON a read
 * returns. Computed while copying (from the source's decoded bodies) and again from the tables
 * (decoding what was stored), so equal digests mean every version reads back as the source served it.
 */
export class VersionDigests {
  readonly chunks: string[] = [];
  private hash: Hash = createHash('sha256');
  private n = 0;

  add(v: Omit<ImportVersion, 'content' | 'current'>, json: string | undefined): void {
    const head = JSON.stringify([v.seq, v.rid, v.type, v.id, v.version, v.lastUpdated, v.method, v.deleted ? 1 : 0, json === undefined ? -1 : Buffer.byteLength(json)]);
    this.hash.update(head).update('\n');
    if (json !== undefined) this.hash.update(json);
    if (++this.n % digestChunk === 0) this.close();
  }

  finish(): string[] {
    if (this.n % digestChunk !== 0) this.close();
    return this.chunks;
  }

  private close(): void {
    this.chunks.push(this.hash.digest('hex'));
    this.hash = createHash('sha256');
  }
}

/**
 * Copies every resource and version, builds the search index of the current versions and sets
 * the sequences. The tables must be empty (a new schema).
 */
export async function importResources(db: Database, source: ImportSource, totals: { resources: number; versions: number }, options: ImportOptions): Promise<ImportedResources> {
  const progress = options.onProgress ?? (() => undefined);
  const inflight = new Inflight(options.concurrency ?? 4);
  let resources = 0;
  let maxRid = 0;
  for (;;) {
    const rows = await source.resources(maxRid, resourcePage);
    if (rows.length === 0) break;
    await inflight.add(() => db.query(
      // security: 0 until the current version is indexed (then from its labels, as a write sets it).
      `INSERT INTO resources (rid, type, id, version, seq, last_updated, deleted, security)
       SELECT r, t, i, v, s, l, d, 0 FROM unnest(?::bigint[], ?::text[], ?::text[], ?::integer[], ?::bigint[], ?::text[], ?::smallint[]) AS u(r, t, i, v, s, l, d)`,
      [rows.map((r) => r.rid), rows.map((r) => r.type), rows.map((r) => r.id), rows.map((r) => r.version), rows.map((r) => r.seq),
        rows.map((r) => r.lastUpdated), rows.map((r) => (r.deleted ? 1 : 0))],
    ));
    resources += rows.length;
    maxRid = rows[rows.length - 1].rid;
    progress({ phase: 'resources', done: resources, total: totals.resources });
  }
  // Versions and index rows refer to the resources' rows.
  await inflight.drain();

  const digests = new VersionDigests();
  let versions = 0;
  let indexed = 0;
  let maxSeq = 0;
  let batch = new VersionBatch();
  const send = async (b: VersionBatch) => inflight.add(() => db.query(
    `INSERT INTO resource_versions (seq, rid, type, version, last_updated, method, deleted, content, sealed)
     SELECT * FROM unnest(?::bigint[], ?::bigint[], ?::text[], ?::integer[], ?::text[], ?::text[], ?::smallint[], ?::text[], ?::bytea[])`,
    b.args(),
  ));
  for (;;) {
    const rows = await source.versions(maxSeq, versionPage);
    if (rows.length === 0) break;
    // The index rows of the page's current versions: one statement per table for the page.
    const indexing = new IndexBatch();
    for (const v of rows) {
      if (v.seq <= maxSeq) throw new Error(`the source's versions are not in seq order (${v.seq} after ${maxSeq})`);
      maxSeq = v.seq;
      let json: string | undefined;
      let stored: string | Buffer | null = null;
      if (!v.deleted) {
        if (v.content === null) throw new Error(`${v.type}/${v.id} version ${v.version} has no content and is not a deletion`);
        json = options.from.decode(v.type, v.id, v.version, v.content);
        const encoded = options.to.encode(JSON.parse(json) as Resource & { id: string }, v.version);
        stored = encoded.content;
        if (v.current) {
          indexing.add(v.rid, encoded.indexed);
          indexed++;
        }
      }
      digests.add(v, json);
      batch.add(v, stored);
      versions++;
      if (batch.bytes >= versionBytes) {
        await send(batch);
        batch = new VersionBatch();
      }
    }
    if (batch.size > 0) {
      await send(batch);
      batch = new VersionBatch();
    }
    if (indexing.size > 0) {
      const statements = indexing.statements();
      await inflight.add(() => db.transaction(async (conn) => {
        for (const statement of statements) await conn.query(statement.sql, statement.args as PgArg[]);
      }));
    }
    progress({ phase: 'versions', done: versions, total: totals.versions });
  }
  await inflight.drain();
  // New writes go on after the copied ones, as they would have on the embedded store.
  if (maxSeq > 0) await db.query(`SELECT setval('resource_version_seq', ?)`, [maxSeq]);
  if (maxRid > 0) await db.query(`SELECT setval(pg_get_serial_sequence('resources', 'rid'), ?)`, [maxRid]);
  // The planner's statistics, for the checks after and the first searches.
  await db.exec(`ANALYZE resources, resource_versions, ${indexTables.join(', ')}, search_text`);
  return { resources, versions, indexed, maxRid, maxSeq, digests: digests.finish() };
}

/** Versions as columns, for one unnest statement. */
class VersionBatch {
  size = 0;
  bytes = 0;
  private readonly seq: number[] = [];
  private readonly rid: number[] = [];
  private readonly type: string[] = [];
  private readonly version: number[] = [];
  private readonly lastUpdated: string[] = [];
  private readonly method: string[] = [];
  private readonly deleted: number[] = [];
  private readonly content: (string | null)[] = [];
  private readonly sealed: (Buffer | null)[] = [];

  add(v: ImportVersion, stored: string | Buffer | null): void {
    this.seq.push(v.seq);
    this.rid.push(v.rid);
    this.type.push(v.type);
    this.version.push(v.version);
    this.lastUpdated.push(v.lastUpdated);
    this.method.push(v.method);
    this.deleted.push(v.deleted ? 1 : 0);
    this.content.push(typeof stored === 'string' ? stored : null);
    this.sealed.push(stored !== null && typeof stored !== 'string' ? stored : null);
    this.size++;
    this.bytes += stored === null ? 0 : typeof stored === 'string' ? stored.length : stored.length * 2;
  }

  args(): PgArg[] {
    // Arrays with NULLs and bytes: pg writes them as array literals (bytes hex-encoded).
    return [this.seq, this.rid, this.type, this.version, this.lastUpdated, this.method, this.deleted, this.content, this.sealed] as unknown as PgArg[];
  }
}

/** The digests of what the tables hold (see VersionDigests), every body decoded with `codec` as a read would. */
export async function versionDigests(db: Database, codec: ResourceCodec, total: number, onProgress?: (p: ImportProgress) => void): Promise<string[]> {
  const digests = new VersionDigests();
  const page = (after: number) => db.query<{ seq: number; rid: number; type: string; id: string; version: number; last_updated: string; method: string; deleted: number; content: string | null; sealed: Buffer | null }>(
    `SELECT v.seq, v.rid, v.type, r.id, v.version, v.last_updated, v.method, v.deleted, v.content, v.sealed
     FROM resource_versions v JOIN resources r ON r.rid = v.rid WHERE v.seq > ? ORDER BY v.seq LIMIT ?`,
    [after, 2000],
  );
  let done = 0;
  let next = page(0);
  for (;;) {
    const rows = await next;
    if (rows.length === 0) break;
    // The next page is read while this one is decoded.
    next = page(rows[rows.length - 1].seq);
    for (const r of rows) {
      const body = r.sealed ?? r.content;
      const json = body === null ? undefined : codec.decode(r.type, r.id, r.version, body);
      digests.add({ seq: r.seq, rid: r.rid, type: r.type, id: r.id, version: r.version, lastUpdated: r.last_updated, method: r.method, deleted: r.deleted === 1 }, json);
    }
    done += rows.length;
    onProgress?.({ phase: 'check versions', done, total });
  }
  return digests.finish();
}

/** Counts and facts both stores can give, compared after a migration. */
export interface StoreFacts {
  /** Per type: resources, of them live (not deleted), and versions. */
  types: Record<string, { resources: number; live: number; versions: number }>;
  /** Rows per search index table (search_string, ...). */
  index: Record<string, number>;
  /** Resources whose security label bits are set: rid -> bits. */
  security: Record<string, number>;
  /** Digest of every resources row (rid, type, id, version, seq, lastUpdated, deleted) in rid order. */
  resourceRows: string;
}

/** The facts of a store's tables, through `query` (the SQL is the same on both stores). */
export async function storeFacts(query: <T>(sql: string, args?: number[]) => Promise<T[]>): Promise<StoreFacts> {
  const types: StoreFacts['types'] = {};
  for (const r of await query<{ type: string; n: number; live: number }>('SELECT type, count(*) AS n, sum(CASE WHEN deleted = 0 THEN 1 ELSE 0 END) AS live FROM resources GROUP BY type')) {
    types[r.type] = { resources: Number(r.n), live: Number(r.live), versions: 0 };
  }
  for (const r of await query<{ type: string; n: number }>('SELECT type, count(*) AS n FROM resource_versions GROUP BY type')) {
    (types[r.type] ??= { resources: 0, live: 0, versions: 0 }).versions = Number(r.n);
  }
  const index: Record<string, number> = {};
  for (const table of indexTables) index[table] = Number((await query<{ n: number }>(`SELECT count(*) AS n FROM ${table}`))[0].n);
  const security: Record<string, number> = {};
  for (const r of await query<{ rid: number; security: number }>('SELECT rid, security FROM resources WHERE security <> 0 ORDER BY rid')) security[String(r.rid)] = Number(r.security);
  const hash = createHash('sha256');
  for (let after = 0; ;) {
    const rows = await query<{ rid: number; type: string; id: string; version: number; seq: number; last_updated: string; deleted: number }>(
      'SELECT rid, type, id, version, seq, last_updated, deleted FROM resources WHERE rid > ? ORDER BY rid LIMIT 10000', [after],
    );
    if (rows.length === 0) break;
    for (const r of rows) hash.update(JSON.stringify([Number(r.rid), r.type, r.id, Number(r.version), Number(r.seq), r.last_updated, Number(r.deleted)])).update('\n');
    after = Number(rows[rows.length - 1].rid);
  }
  return { types, index, security, resourceRows: hash.digest('hex') };
}

export interface ImportedAudit {
  records: number;
  /** The last position (purged ones included). */
  last: number;
  checkpoints: number;
  purges: number;
}

/**
 * Appends the source's audit records, in order, to the empty PostgreSQL trail, after its purges
 * (the chain goes on from the last one's anchor), then its signed checkpoints. `expected` is the
 * number of records, for progress.
 */
export async function importAudit(db: Database, log: PgAuditLog, source: ImportSource, expected: number, onProgress?: (p: ImportProgress) => void): Promise<ImportedAudit> {
  const [head] = await db.query<{ count: number }>('SELECT count FROM audit_head');
  const [present] = await db.query<{ n: number }>('SELECT count(*) AS n FROM audit_log');
  if (head.count !== 0 || present.n !== 0) throw new Error('the target audit trail is not empty');
  const purges = await source.auditPurges();
  let last = 0;
  if (purges.length > 0) {
    for (const p of purges) await db.query('INSERT INTO audit_purge (through, head, before, at, jws) VALUES (?, ?, ?, ?, ?)', [p.through, p.head, p.before, p.at, p.jws]);
    const anchor = purges[purges.length - 1];
    // The head moves forward only (a trigger): from nothing to the anchor the kept records chain from.
    await db.query('UPDATE audit_head SET count = ?, head = ?', [anchor.through, anchor.head]);
    last = anchor.through;
  }
  let records = 0;
  for (;;) {
    const rows = await source.auditRecords(last, auditPage);
    if (rows.length === 0) break;
    if (rows[0].seq !== last + 1) {
      throw new Error(last === 0 && purges.length === 0
        ? `the source's audit trail starts at record ${rows[0].seq}, not 1, and no purge says why`
        : `the source's audit trail skips from record ${last} to ${rows[0].seq}`);
    }
    const first = await log.append(rows.map((r) => ({ recorded: r.recorded, json: r.event })));
    if (first !== rows[0].seq) throw new Error(`audit record ${rows[0].seq} was appended at position ${first}`);
    records += rows.length;
    last = rows[rows.length - 1].seq;
    onProgress?.({ phase: 'audit', done: records, total: expected });
  }
  const checkpoints = await source.auditCheckpoints();
  for (const c of checkpoints) await log.appendCheckpoint(c);
  return { records, last, checkpoints: checkpoints.length, purges: purges.length };
}

export interface ImportedAuth {
  users: number;
  clients: number;
  oauth: number;
  /** Protocol records per model. */
  models: Record<string, number>;
}

/** Users and clients through the AuthStore interface (sealed and MACed as any write), protocol records as they are keyed. */
export async function importAuth(target: PgAuthStore, source: ImportSource, now: number): Promise<ImportedAuth> {
  const users = await source.users();
  for (const u of users) await target.addUser(u);
  const clients = await source.clients();
  for (const c of clients) await target.addClient(c);
  const oauth = await source.oauth(now);
  await target.importOAuth(oauth);
  const models: Record<string, number> = {};
  for (const r of oauth) models[r.model] = (models[r.model] ?? 0) + 1;
  return { users: users.length, clients: clients.length, oauth: oauth.length, models };
}

/** What a schema holds before anything is created in it. */
export interface TargetSchema {
  exists: boolean;
  /** Tables, sequences, views, functions and types in it. */
  objects: number;
  /** Bastion's tables are there (bastion_schema). */
  bastion: boolean;
  /** A migration that never finished left its mark (store_meta `migration`). */
  unfinished?: string;
}

export async function inspectSchema(db: Database): Promise<TargetSchema> {
  const [ns] = await db.query<{ oid: number }>('SELECT oid::bigint AS oid FROM pg_namespace WHERE nspname = ?', [db.schema]);
  if (!ns) return { exists: false, objects: 0, bastion: false };
  const [{ n }] = await db.query<{ n: number }>(
    `SELECT (SELECT count(*) FROM pg_class WHERE relnamespace = ?::oid)
          + (SELECT count(*) FROM pg_proc WHERE pronamespace = ?::oid)
          + (SELECT count(*) FROM pg_type WHERE typnamespace = ?::oid AND typrelid = 0 AND typelem = 0) AS n`,
    [ns.oid, ns.oid, ns.oid],
  );
  const [marker] = await db.query<{ r: string | null }>('SELECT to_regclass(?)::text AS r', [`${db.schema}.bastion_schema`]);
  let unfinished: string | undefined;
  const [meta] = await db.query<{ r: string | null }>('SELECT to_regclass(?)::text AS r', [`${db.schema}.store_meta`]);
  if (meta.r !== null) {
    const [row] = await db.query<{ value: string }>(`SELECT value FROM store_meta WHERE key = 'migration'`);
    unfinished = row?.value;
  }
  return { exists: true, objects: Number(n), bastion: marker.r !== null, ...(unfinished !== undefined ? { unfinished } : {}) };
}

/** Marks the schema as being filled by a migration (until finishMigration): a retry after a crash knows it was never complete. */
export async function markUnfinished(db: Database, what: string): Promise<void> {
  await db.query(`INSERT INTO store_meta (key, value) VALUES ('migration', ?)`, [what]);
}

export async function finishMigration(db: Database): Promise<void> {
  await db.query(`DELETE FROM store_meta WHERE key = 'migration'`);
}

/**
 * Removes everything a failed migration created: the schema itself when it made it, else (the
 * schema was there, empty) every object now in it. Run with the store's pools closed.
 */
export async function dropImported(db: Database, createdSchema: boolean): Promise<void> {
  // The name was checked against schemaName (database.ts): safe in the statement.
  if (createdSchema) {
    await db.exec(`DROP SCHEMA IF EXISTS ${db.schema} CASCADE`);
    return;
  }
  await db.transaction(async (conn) => {
    const tables = await conn.query<{ name: string }>(
      `SELECT c.oid::regclass::text AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = ? AND c.relkind IN ('r', 'p') AND NOT c.relispartition`, [db.schema],
    );
    // Names as PostgreSQL quotes them (regclass, regprocedure): safe in the statements.
    for (const t of tables) await conn.exec(`DROP TABLE IF EXISTS ${t.name} CASCADE`);
    const sequences = await conn.query<{ name: string }>(
      `SELECT c.oid::regclass::text AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ? AND c.relkind = 'S'`, [db.schema],
    );
    for (const q of sequences) await conn.exec(`DROP SEQUENCE IF EXISTS ${q.name} CASCADE`);
    const functions = await conn.query<{ name: string }>(
      `SELECT p.oid::regprocedure::text AS name FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = ?`, [db.schema],
    );
    for (const f of functions) await conn.exec(`DROP FUNCTION IF EXISTS ${f.name} CASCADE`);
  });
}
