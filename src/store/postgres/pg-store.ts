import { randomUUID } from 'node:crypto';
import type { Resource } from '../../fhir/types.ts';
import type { SearchRequest } from '../../fhir/search/types.ts';
import type {
  AuditCandidateQuery, AuditQuery, AuditRecord, HistoryPage, HistoryQuery, ReencryptProgress, SearchResult, Store, StoreWriter, StoredAuditRecord, StoredResource,
  UpdateOptions, UpdateResult, WriteMethod,
} from '../store.ts';
import { conflict, FhirError, preconditionFailed } from '../../fhir/outcome.ts';
import { checkIfMatch, refuseAuditEvent, withVersion } from '../write-rules.ts';
import { securityMask } from '../../fhir/security-label-bits.ts';
import { MonotonicClock } from '../clock.ts';
import { ResourceCodec } from '../resource-codec.ts';
import { Database, pgCode, pgCodes, type PgOptions, type Queryable } from './database.ts';
import { ensureSchema, migrate } from './migrate.ts';
import { storeMigrations } from './schema.ts';
import { indexCtes, withCtes } from './index-rows.ts';
import { decodeBody, searchResources } from './search.ts';
import { queryHistory } from './history.ts';
import { BodyCache, type Bodies } from './body-cache.ts';
import { ChangeFeed } from './change-feed.ts';
import { ensureSearchIndex, rebuildSearchIndex } from './search-index.ts';
import { countStale, holdsSealedBodies, reencryptVersions } from './reencrypt.ts';
import { PgAuditLog } from './audit-log.ts';
import { frag } from '../sql/sql-frag.ts';
import type { VersionColumns } from '../sql/history-sql.ts';

export interface PgStoreOptions extends PgOptions {
  /** What resources become in the tables (sealed bodies, encrypted identifiers); default: JSON as written. */
  codec?: ResourceCodec;
  /** This node's name in change notifications (each process adds a random suffix to it). */
  node?: string;
}

/** A current row as the writer reads it. */
interface CurrentRow extends VersionColumns {
  rid: number;
  content: string | null;
  sealed: Buffer | null;
}

const currentSql = `SELECT r.rid, r.type, r.id, r.version, r.last_updated, r.deleted, v.content, v.sealed
  FROM resources r JOIN resource_versions v ON v.seq = r.seq WHERE r.type = ? AND r.id = ?`;
const versionSql = `SELECT r.rid, r.type, r.id, v.version, v.last_updated, v.deleted, v.content, v.sealed
  FROM resources r JOIN resource_versions v ON v.rid = r.rid WHERE r.type = ? AND r.id = ? AND v.version = ?`;

/**
 * The store on PostgreSQL, for one or many stateless Bastion nodes sharing the database. Every read
 * asks the database, so a node serves what any node committed; writes take row locks (an update
 * waits for a concurrent one to the same resource and then sees its version: If-Match is
 * optimistic locking across nodes), and version 1 of an id is claimed by a unique key, so two
 * nodes can never both create it. See docs/deployment.md for the whole design.
 */
export class PgStore implements Store {
  readonly db: Database;
  private readonly codec: ResourceCodec;
  private readonly audit: PgAuditLog;
  private readonly feed: ChangeFeed;
  private readonly bodies = new BodyCache(16 * 1024 * 1024);
  private readonly clock = new MonotonicClock();
  /** This node's commits per type (see generation()). */
  private readonly commitsByType = new Map<string, number>();
  /** Re-indexes (every type's search results may differ after one). */
  private reindexed = 0;

  private constructor(db: Database, codec: ResourceCodec, audit: PgAuditLog, feed: ChangeFeed) {
    this.db = db;
    this.codec = codec;
    this.audit = audit;
    this.feed = feed;
    this.parts = { codec, clock: this.clock, feed, bodies: this.bodies };
  }

  static async open(options: PgStoreOptions): Promise<PgStore> {
    const db = new Database(options);
    try {
      await ensureSchema(db);
      await migrate(db, 'store', storeMigrations);
      await refuseUnfinishedMigration(db);
      const codec = options.codec ?? new ResourceCodec(undefined);
      // Tables indexed the way of an older Bastion are indexed again before anything is served.
      await ensureSearchIndex(db, codec);
      const audit = await PgAuditLog.open(db);
      // The suffix tells this process's own notifications from the others', even where two nodes
      // were given one name (one shared environment file): they would otherwise ignore each other.
      const feed = new ChangeFeed(db, `${options.node ?? 'node'}:${randomUUID()}`);
      await feed.start();
      return new PgStore(db, codec, audit, feed);
    } catch (err) {
      await db.close().catch(() => undefined);
      throw err;
    }
  }

  async read(resourceType: string, id: string): Promise<StoredResource | undefined> {
    const [row] = await this.db.query<CurrentRow>(currentSql, [resourceType, id]).catch(rethrow);
    return row && this.stored(row);
  }

  async vread(resourceType: string, id: string, versionId: string): Promise<StoredResource | undefined> {
    if (!/^[1-9]\d{0,8}$/.test(versionId)) return undefined;
    const [row] = await this.db.query<CurrentRow>(versionSql, [resourceType, id, Number(versionId)]).catch(rethrow);
    return row && this.stored(row);
  }

  history(query: HistoryQuery): Promise<HistoryPage> {
    return queryHistory(this.db, this.codec, query, this.bodies).catch(rethrow);
  }

  search(request: SearchRequest): Promise<SearchResult> {
    return searchResources(this.db, this.codec, request, this.bodies).catch(rethrow);
  }

  generation(resourceTypes: readonly string[]): number {
    let n = this.feed.changes(resourceTypes) + this.reindexed;
    for (const type of resourceTypes) n += this.commitsByType.get(type) ?? 0;
    return n;
  }

  blindIndex(value: string): string {
    return this.codec.blind(value);
  }

  async transaction<T>(work: (tx: StoreWriter) => Promise<T>): Promise<T> {
    const written = new Set<string>();
    try {
      const result = await this.db.transaction((conn) => work(new PgWriter(conn, this, written)));
      for (const type of written) this.commitsByType.set(type, (this.commitsByType.get(type) ?? 0) + 1);
      return result;
    } catch (err) {
      throw asOutcome(err);
    }
  }

  async reindex(): Promise<number> {
    const n = await rebuildSearchIndex(this.db, this.codec);
    this.reindexed++;
    return n;
  }

  reencrypt(onProgress?: (progress: ReencryptProgress) => void): Promise<ReencryptProgress> {
    return reencryptVersions(this.db, this.codec, onProgress);
  }

  staleCount(): Promise<number> {
    return countStale(this.db, this.codec);
  }

  holdsSealedBodies(): Promise<boolean> {
    return holdsSealedBodies(this.db);
  }

  appendAudit(records: AuditRecord[]): Promise<number> {
    return this.audit.append(records);
  }

  auditRecords(query: AuditQuery): Promise<StoredAuditRecord[]> {
    return this.audit.records(query);
  }

  auditCandidates(query: AuditCandidateQuery): Promise<StoredAuditRecord[]> {
    return this.audit.candidates(query);
  }

  auditRecord(seq: number): Promise<StoredAuditRecord | undefined> {
    return this.audit.recordAt(seq);
  }

  auditHead(): Promise<{ count: number; head: Buffer }> {
    return this.audit.head();
  }

  appendAuditCheckpoint(checkpoint: { count: number; head: Buffer; at: string; jws: string }): Promise<void> {
    return this.audit.appendCheckpoint(checkpoint);
  }

  /** The audit trail itself (verification, retention). */
  get auditLog(): PgAuditLog {
    return this.audit;
  }

  async close(): Promise<void> {
    await this.audit.close();
    await this.feed.stop();
    await this.db.close();
  }

  /** @internal for PgWriter */
  stored(row: CurrentRow, bodies: Bodies = this.bodies): StoredResource {
    const content = row.sealed ?? row.content;
    return {
      resourceType: row.type, id: row.id, versionId: String(row.version), lastUpdated: row.last_updated, deleted: row.deleted === 1,
      json: content === null ? undefined : decodeBody(this.codec, bodies, row.type, row.id, row.version, content),
    };
  }

  /** @internal what PgWriter shares with the store (made once: every write reads it). */
  readonly parts: { codec: ResourceCodec; clock: MonotonicClock; feed: ChangeFeed; bodies: BodyCache };
}

/**
 * Reads and writes on one connection, inside its transaction. Its reads take decoded bodies from
 * the cache but never add to it: they may see the transaction's own writes, which may roll back.
 */
class PgWriter implements StoreWriter {
  private readonly conn: Queryable;
  private readonly store: PgStore;
  private readonly written: Set<string>;
  /** Current rows this transaction read, by reference: an update that locks the version it read need not read it again. */
  private readonly readRows = new Map<string, CurrentRow>();

  constructor(conn: Queryable, store: PgStore, written: Set<string>) {
    this.conn = conn;
    this.store = store;
    this.written = written;
  }

  async read(resourceType: string, id: string): Promise<StoredResource | undefined> {
    const [row] = await this.conn.query<CurrentRow>(currentSql, [resourceType, id]);
    if (row) this.readRows.set(`${resourceType}/${id}`, row);
    return row && this.store.stored(row, this.store.parts.bodies.committedOnly);
  }

  async vread(resourceType: string, id: string, versionId: string): Promise<StoredResource | undefined> {
    if (!/^[1-9]\d{0,8}$/.test(versionId)) return undefined;
    const [row] = await this.conn.query<CurrentRow>(versionSql, [resourceType, id, Number(versionId)]);
    return row && this.store.stored(row, this.store.parts.bodies.committedOnly);
  }

  history(query: HistoryQuery): Promise<HistoryPage> {
    return queryHistory(this.conn, this.store.parts.codec, query, this.store.parts.bodies.committedOnly);
  }

  search(request: SearchRequest): Promise<SearchResult> {
    return searchResources(this.conn, this.store.parts.codec, request, this.store.parts.bodies.committedOnly);
  }

  async lock(key: string): Promise<void> {
    // A 64-bit hash of the key: a collision only makes two unrelated transactions wait for each other.
    // Of its keyed blind index, not the key: criteria may name an SSN, and pg_locks shows the hash
    // to every database role (an unkeyed hash of nine digits is reversed by trying them all).
    await this.conn.query('SELECT pg_advisory_xact_lock(hashtextextended(?, 0))', [this.store.parts.codec.blind(key)]);
  }

  async create(resource: Resource & { id: string }): Promise<StoredResource> {
    const created = await this.insertFirst(resource);
    if (!created) throw conflict(`${resource.resourceType}/${resource.id} already exists`);
    return created;
  }

  async update(resource: Resource & { id: string }, options: UpdateOptions = {}): Promise<UpdateResult> {
    const ref = `${resource.resourceType}/${resource.id}`;
    for (;;) {
      const current = await this.lockCurrent(resource.resourceType, resource.id);
      if (!current) {
        if (options.ifMatch !== undefined) throw preconditionFailed(`${ref} does not exist, so it cannot be at version ${options.ifMatch}`);
        const created = await this.insertFirst(resource, options.method ?? 'PUT');
        // Another node created it between the two statements: update that one instead.
        if (created) return { stored: created, created: true };
        continue;
      }
      checkIfMatch(current, options.ifMatch, ref);
      const stored = await this.writeNext(resource, current, options.method ?? 'PUT');
      return { stored, created: current.deleted === 1 };
    }
  }

  async delete(resourceType: string, id: string, options: UpdateOptions = {}): Promise<StoredResource | undefined> {
    const current = await this.lockCurrent(resourceType, id);
    checkIfMatch(current, options.ifMatch, `${resourceType}/${id}`);
    if (!current || current.deleted === 1) return undefined;
    return this.writeNext({ resourceType, id }, current, 'DELETE');
  }

  /** The current row, locked until the transaction ends: a concurrent writer of the same resource waits, then sees this one's version. */
  private async lockCurrent(resourceType: string, id: string): Promise<CurrentRow | undefined> {
    // Locked alone, then read. A lock waited for re-checks the query against the row's new version,
    // but with the joined version row of the old snapshot, which no longer joins (seq moved on):
    // the resource would seem not to exist (a delete lost, an If-Match answered "does not exist").
    const [locked] = await this.conn.query<{ version: number }>('SELECT version FROM resources WHERE type = ? AND id = ? FOR UPDATE', [resourceType, id]);
    if (!locked) return undefined;
    // The locked row is the latest version. When this transaction already read that version (a
    // version never changes), its row serves; otherwise a statement of its own reads it, seeing
    // what committed before the lock was granted.
    const ref = `${resourceType}/${id}`;
    const read = this.readRows.get(ref);
    this.readRows.delete(ref);
    if (read && read.version === locked.version) return read;
    const [row] = await this.conn.query<CurrentRow>(currentSql, [resourceType, id]);
    return row;
  }

  /** Version 1 of a new id, claimed by the (type, id) key; undefined when the id exists (here or on another node). */
  private async insertFirst(resource: Resource & { id: string }, method: WriteMethod = 'POST'): Promise<StoredResource | undefined> {
    refuseAuditEvent(resource.resourceType);
    const { codec, clock } = this.store.parts;
    const lastUpdated = clock.now();
    const encoded = codec.encode(withVersion(resource, '1', lastUpdated) as Resource & { id: string }, 1);
    const body = bodyColumns(encoded.content);
    const statement = withCtes(
      [
        frag(
          `w AS (INSERT INTO resources (type, id, version, seq, last_updated, deleted, security) VALUES (?, ?, 1, nextval('resource_version_seq'), ?, 0, ?)` +
            ' ON CONFLICT (type, id) DO NOTHING RETURNING rid, seq)',
          resource.resourceType, resource.id, lastUpdated, securityMask(encoded.indexed),
        ),
        frag(
          'v AS (INSERT INTO resource_versions (seq, rid, type, version, last_updated, method, deleted, content, sealed) SELECT w.seq, w.rid, ?, 1, ?, ?, 0, ?, ? FROM w)',
          resource.resourceType, lastUpdated, method, body.content, body.sealed,
        ),
        ...indexCtes(encoded.indexed, undefined, false),
      ],
      this.notify(resource.resourceType),
    );
    const rows = await this.conn.query<{ rid: number }>(statement.sql, statement.args);
    this.written.add(resource.resourceType);
    if (rows.length === 0) return undefined;
    return { resourceType: resource.resourceType, id: resource.id, versionId: '1', lastUpdated, deleted: false, json: encoded.json };
  }

  /** The version after `current` (locked by lockCurrent): a new body, or a deletion marker. */
  private async writeNext(resource: Resource & { id: string }, current: CurrentRow, method: WriteMethod): Promise<StoredResource> {
    refuseAuditEvent(resource.resourceType);
    const { codec, clock } = this.store.parts;
    const deleted = method === 'DELETE';
    const version = current.version + 1;
    clock.notBefore(current.last_updated);
    const lastUpdated = clock.now();
    const encoded = deleted ? undefined : codec.encode(withVersion(resource, String(version), lastUpdated) as Resource & { id: string }, version);
    const body = bodyColumns(encoded?.content);
    const currentContent = current.sealed ?? current.content;
    const previous = current.deleted === 0 && currentContent !== null ? codec.indexedOf(current.type, current.id, current.version, currentContent) : undefined;
    const statement = withCtes(
      [
        frag(
          `w AS (UPDATE resources SET version = ?, seq = nextval('resource_version_seq'), last_updated = ?, deleted = ?, security = ? WHERE rid = ? RETURNING rid, seq)`,
          version, lastUpdated, deleted ? 1 : 0, encoded ? securityMask(encoded.indexed) : 0, current.rid,
        ),
        frag(
          'v AS (INSERT INTO resource_versions (seq, rid, type, version, last_updated, method, deleted, content, sealed) SELECT w.seq, w.rid, ?, ?, ?, ?, ?, ?, ? FROM w)',
          resource.resourceType, version, lastUpdated, method, deleted ? 1 : 0, body.content, body.sealed,
        ),
        ...indexCtes(encoded?.indexed, previous, true),
      ],
      this.notify(resource.resourceType),
    );
    await this.conn.query(statement.sql, statement.args);
    this.written.add(resource.resourceType);
    return { resourceType: resource.resourceType, id: resource.id, versionId: String(version), lastUpdated, deleted, json: encoded?.json };
  }

  /** The statement's result, telling the other nodes (at commit) that this type changed. */
  private notify(type: string) {
    const { feed } = this.store.parts;
    return frag('SELECT w.rid, pg_notify(?, ?) FROM w', feed.channel, `${feed.node}|${type}`);
  }
}

function bodyColumns(content: string | Buffer | undefined): { content: string | null; sealed: Buffer | null } {
  if (content === undefined) return { content: null, sealed: null };
  return typeof content === 'string' ? { content, sealed: null } : { content: null, sealed: content };
}

/** A schema `bastion migrate` began filling and never finished holds part of a store: serving it would lose the rest. */
async function refuseUnfinishedMigration(db: Database): Promise<void> {
  const [row] = await db.query<{ value: string }>(`SELECT value FROM store_meta WHERE key = 'migration'`);
  if (row) throw new Error(`schema ${db.schema} holds an unfinished bastion migrate (${row.value}): drop the schema and migrate again`);
}

function rethrow(err: unknown): never {
  throw asOutcome(err);
}

/** Connection failures (Node's, or PostgreSQL's classes 08 and 57P: shutting down, restarting). */
function unavailable(err: unknown): boolean {
  const code = pgCode(err);
  return code !== undefined && (/^08/.test(code) || /^57P0[1-4]$/.test(code) || ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND'].includes(code));
}

/**
 * Failures a client can meet when nodes contend: two transactions that lock the same resources
 * in opposite orders (one is chosen to fail), or a serialisation failure, are a 409 the client
 * may retry; nothing of the failed transaction was stored.
 */
function asOutcome(err: unknown): unknown {
  const code = pgCode(err);
  if (code === pgCodes.deadlockDetected || code === pgCodes.serializationFailure || code === pgCodes.lockNotAvailable) {
    return new FhirError(409, 'The transaction conflicted with a concurrent one on another request and was rolled back; it can be retried', 'conflict');
  }
  if (unavailable(err) || /Connection terminated|timeout exceeded when trying to connect/i.test((err as Error)?.message ?? '')) {
    return new FhirError(503, 'The database cannot be reached just now; try again shortly', 'transient');
  }
  // A statement timeout the database (its role or the URL's options) sets, or an administrator's cancel.
  if (code === pgCodes.queryCanceled) return new FhirError(503, 'The database cancelled the request (it ran longer than the database allows, or was stopped); try again, or narrow it', 'timeout');
  // PostgreSQL text holds no NUL character: a value carrying one cannot be matched or stored.
  if (code === '22021' || code === '22P05') return new FhirError(400, 'A value contains a character that cannot be stored (NUL)', 'invalid');
  // A limit of PostgreSQL's met by what the client sent: a code too long for a btree entry, a text
  // too long for a tsvector (1 MB of words). Nothing of it was stored.
  if (code === pgCodes.programLimitExceeded) {
    return new FhirError(422, 'A value is too large for the database to index (a code of thousands of characters, or about a million words of text)', 'too-long');
  }
  return err;
}
