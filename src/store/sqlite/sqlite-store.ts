import type { Resource } from '../../fhir/types.ts';
import type { SearchRequest } from '../../fhir/search/types.ts';
import type {
  AuditCandidateQuery, AuditQuery, AuditRecord, HistoryPage, ReencryptProgress, StoredAuditRecord, HistoryQuery, SearchResult, Store, StoreWriter, StoredResource, UpdateOptions, UpdateResult, WriteMethod,
} from '../store.ts';
import { conflict } from '../../fhir/outcome.ts';
import { checkIfMatch, refuseAuditEvent, withVersion } from '../write-rules.ts';
import { MonotonicClock } from '../clock.ts';
import { openEncrypted, type Db } from './open.ts';
import { migrate } from './migrations.ts';
import { prepareStatements, type CurrentRow, type Statements } from './statements.ts';
import { queryHistory } from './history.ts';
import { WriteQueue } from './write-queue.ts';
import { WalSync } from './wal-sync.ts';
import { Checkpointer } from './checkpointer.ts';
import { AuditWriter } from './audit-writer.ts';
import { adoptLegacyAudit, appendCheckpoint, auditHead, chainExisting, indexExisting, migrateAudit } from './audit-schema.ts';
import { auditCandidates, auditRecordAt } from './audit-candidates.ts';
import { CurrentCache } from './current-cache.ts';
import { indexResource, searchResources } from './search.ts';
import { ensureSearchIndex, rebuildSearchIndex } from './search-index.ts';
import { ResourceCodec } from '../resource-codec.ts';
import { countStale, reencryptVersions } from './reencrypt.ts';

export interface SqliteStoreOptions {
  path: string;
  key: Buffer;
  /**
   * Told of checkpoint failures (an error code, never data); the WAL keeps the data meanwhile.
   * By default a process warning, so a failing checkpoint is never silent.
   */
  onBackgroundError?: (code: string) => void;
  /** What resources become in the file (encrypted identifiers, sealed bodies); default: JSON as written. */
  codec?: ResourceCodec;
}

/**
 * The embedded store: one encrypted SQLite file. Reads use their own connection, so they never see
 * a transaction's uncommitted writes; writes go through one writer connection, group-committed.
 */
export class SqliteStore implements Store {
  private readonly writer: Db;
  private readonly reader: Db;
  private readonly readerSql: Statements;
  private readonly cache: CurrentCache;
  private readonly queue: WriteQueue;
  private readonly walSync: WalSync;
  private readonly checkpointer: Checkpointer;
  private readonly auditReader: Db;
  private readonly auditWriter: AuditWriter;
  private readonly tx: SqliteWriter;
  /** Commits that wrote each type (this process's): see generation(). */
  private readonly commitsByType = new Map<string, number>();
  private readonly codec: ResourceCodec;

  constructor(options: SqliteStoreOptions) {
    this.codec = options.codec ?? new ResourceCodec(undefined);
    this.writer = openEncrypted(options.path, options.key, { callerSyncsCommits: true });
    // Checkpoints run in a worker thread (see checkpoint-worker.ts), never inside a commit here.
    this.writer.pragma('wal_autocheckpoint = 0');
    // After a checkpoint the WAL restarts from its beginning; this caps the file it leaves behind.
    this.writer.pragma(`journal_size_limit = ${64 * 1024 * 1024}`);
    migrate(this.writer);
    // A file indexed the way of an older Bastion is indexed again, before anything is served.
    ensureSearchIndex(this.writer, this.codec);
    // The audit log has a file of its own, appended by a worker thread, so auditing neither
    // contends for the store's write lock nor runs on the request thread.
    // Beside the store file: `bastion.db` has `bastion-audit.db`.
    const auditPath = options.path.replace(/(\.db)?$/, '-audit.db');
    this.auditReader = openEncrypted(auditPath, options.key);
    migrateAudit(this.auditReader);
    adoptLegacyAudit(this.writer, this.auditReader);
    chainExisting(this.auditReader);
    indexExisting(this.auditReader);
    this.auditWriter = new AuditWriter(auditPath, options.key);
    this.reader = openEncrypted(options.path, options.key);
    this.readerSql = prepareStatements(this.reader);
    this.cache = new CurrentCache(this.reader.prepare('PRAGMA data_version').pluck(), 32 * 1024 * 1024);
    this.walSync = new WalSync(options.path);
    // Called as each commit lands: the cache forgets, then the commit is made durable.
    // The writer's own data_version moves only with other connections' commits: another process's.
    const writerDataVersion = this.writer.prepare('PRAGMA data_version').pluck();
    let writerVersion = writerDataVersion.get();
    this.queue = new WriteQueue(this.writer, () => {
      const now = writerDataVersion.get();
      this.cache.invalidate(now !== writerVersion);
      writerVersion = now;
      for (const type of this.tx.written) this.commitsByType.set(type, (this.commitsByType.get(type) ?? 0) + 1);
      this.tx.written.clear();
      return this.walSync.sync();
    });
    this.checkpointer = new Checkpointer(options.path, options.key, options.onBackgroundError ?? ((code) => process.emitWarning(`store checkpoint failed: ${code}`)));
    this.tx = new SqliteWriter(this.writer, this.codec);
  }

  async read(resourceType: string, id: string): Promise<StoredResource | undefined> {
    let stored = this.cache.get(resourceType, id);
    if (!stored) {
      stored = readCurrent(this.readerSql, this.codec, resourceType, id);
      if (stored) this.cache.set(stored);
    }
    return stored;
  }

  generation(resourceTypes: readonly string[]): number {
    let n = this.cache.outsideCommits();
    for (const type of resourceTypes) n += this.commitsByType.get(type) ?? 0;
    return n;
  }

  blindIndex(value: string): string {
    return this.codec.blind(value);
  }

  async vread(resourceType: string, id: string, versionId: string): Promise<StoredResource | undefined> {
    return readVersion(this.readerSql, this.codec, resourceType, id, versionId);
  }

  async history(query: HistoryQuery): Promise<HistoryPage> {
    return queryHistory(this.reader, this.codec, query);
  }

  async search(request: SearchRequest): Promise<SearchResult> {
    return searchResources(this.reader, this.codec, request, this.cache);
  }

  transaction<T>(work: (tx: StoreWriter) => Promise<T>): Promise<T> {
    return this.queue.run(() => work(this.tx));
  }

  async reindex(): Promise<number> {
    // In chunks of its own transactions: wait until queued writes are in, then nothing else runs
    // until it is done (it is synchronous).
    await this.queue.run(async () => undefined);
    const n = rebuildSearchIndex(this.writer, this.codec);
    this.cache.invalidate(true);
    return n;
  }

  reencrypt(onProgress?: (progress: ReencryptProgress) => void): Promise<ReencryptProgress> {
    return reencryptVersions(this.writer, this.codec, (work) => this.queue.run(async () => work()), onProgress);
  }

  async staleCount(): Promise<number> {
    return countStale(this.reader, this.codec);
  }

  async holdsSealedBodies(): Promise<boolean> {
    return this.reader.prepare(`SELECT 1 FROM resource_versions WHERE typeof(content) = 'blob' LIMIT 1`).get() !== undefined;
  }

  appendAudit(records: AuditRecord[]): Promise<number> {
    return this.auditWriter.append(records);
  }

  async auditCandidates(query: AuditCandidateQuery): Promise<StoredAuditRecord[]> {
    return auditCandidates(this.auditReader, query);
  }

  async auditRecord(seq: number): Promise<StoredAuditRecord | undefined> {
    return auditRecordAt(this.auditReader, seq);
  }

  async auditHead(): Promise<{ count: number; head: Buffer }> {
    return auditHead(this.auditReader);
  }

  async appendAuditCheckpoint(checkpoint: { count: number; head: Buffer; at: string; jws: string }): Promise<void> {
    appendCheckpoint(this.auditReader, checkpoint);
  }

  async auditRecords(query: AuditQuery): Promise<StoredAuditRecord[]> {
    const rows = this.auditReader
      .prepare<[number, number], { seq: number; recorded: string; event: string }>('SELECT seq, recorded, event FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?')
      .all(query.afterSeq, query.limit);
    return rows.map((r) => ({ seq: r.seq, recorded: r.recorded, json: r.event }));
  }

  async close(): Promise<void> {
    // Let queued writes finish before the connections go.
    await this.queue.run(async () => undefined);
    await this.walSync.close();
    await this.checkpointer.stop();
    await this.auditWriter.close();
    this.auditReader.close();
    this.reader.close();
    this.writer.close();
  }
}

/** Reads and writes on the writer connection, inside the current transaction. */
class SqliteWriter implements StoreWriter {
  /** Types written since the last commit (a rolled-back write is counted too: that only costs a re-derivation). */
  readonly written = new Set<string>();
  private readonly db: Db;
  private readonly sql: Statements;
  private readonly clock = new MonotonicClock();
  private readonly codec: ResourceCodec;

  constructor(db: Db, codec: ResourceCodec) {
    this.db = db;
    this.sql = prepareStatements(db);
    this.codec = codec;
  }

  async read(resourceType: string, id: string): Promise<StoredResource | undefined> {
    return readCurrent(this.sql, this.codec, resourceType, id);
  }

  async vread(resourceType: string, id: string, versionId: string): Promise<StoredResource | undefined> {
    return readVersion(this.sql, this.codec, resourceType, id, versionId);
  }

  async history(query: HistoryQuery): Promise<HistoryPage> {
    return queryHistory(this.db, this.codec, query);
  }

  async search(request: SearchRequest): Promise<SearchResult> {
    return searchResources(this.db, this.codec, request);
  }

  async create(resource: Resource & { id: string }): Promise<StoredResource> {
    if (this.sql.current.get(resource.resourceType, resource.id)) {
      throw conflict(`${resource.resourceType}/${resource.id} already exists`);
    }
    return this.writeVersion(resource, undefined, 'POST');
  }

  async update(resource: Resource & { id: string }, options: UpdateOptions = {}): Promise<UpdateResult> {
    const current = this.sql.current.get(resource.resourceType, resource.id);
    checkIfMatch(current, options.ifMatch, `${resource.resourceType}/${resource.id}`);
    const stored = this.writeVersion(resource, current, options.method ?? 'PUT');
    return { stored, created: !current || current.deleted === 1 };
  }

  async delete(resourceType: string, id: string, options: UpdateOptions = {}): Promise<StoredResource | undefined> {
    const current = this.sql.current.get(resourceType, id);
    checkIfMatch(current, options.ifMatch, `${resourceType}/${id}`);
    if (!current || current.deleted === 1) return undefined;
    return this.writeVersion({ resourceType, id }, current, 'DELETE');
  }

  private writeVersion(resource: Resource & { id: string }, current: CurrentRow | undefined, method: WriteMethod): StoredResource {
    // The audit trail has its own file (migration 8 moved out any AuditEvent the store had).
    refuseAuditEvent(resource.resourceType);
    this.written.add(resource.resourceType);
    const deleted = method === 'DELETE';
    const version = current ? current.version + 1 : 1;
    // Taken from the file within the write lock, so several processes on one store never collide.
    const latest = this.sql.latest.get();
    this.clock.notBefore(latest?.last_updated);
    const lastUpdated = this.clock.now();
    const seq = (latest?.seq ?? 0) + 1;
    const encoded = deleted ? undefined : this.codec.encode(withVersion(resource, String(version), lastUpdated) as Resource & { id: string }, version);
    let rid: number;
    if (current) {
      rid = current.rid;
      this.sql.updateResource.run(version, seq, lastUpdated, deleted ? 1 : 0, rid);
    } else {
      rid = Number(this.sql.insertResource.run(resource.resourceType, resource.id, version, seq, lastUpdated, deleted ? 1 : 0).lastInsertRowid);
    }
    this.sql.insertVersion.run(seq, rid, resource.resourceType, version, lastUpdated, method, deleted ? 1 : 0, encoded?.content ?? null);
    // A deleted current version has no index rows; a live one's rows are updated where they differ.
    const previous = current && current.deleted === 0 && current.content !== null ? this.codec.indexedOf(current.type, current.id, current.version, current.content) : undefined;
    indexResource(this.db, rid, encoded?.indexed, current === undefined || current.deleted === 1, previous);
    return { resourceType: resource.resourceType, id: resource.id, versionId: String(version), lastUpdated, deleted, json: encoded?.json };
  }
}

function readCurrent(sql: Statements, codec: ResourceCodec, resourceType: string, id: string): StoredResource | undefined {
  const row = sql.current.get(resourceType, id);
  if (!row) return undefined;
  return {
    resourceType: row.type, id: row.id, versionId: String(row.version), lastUpdated: row.last_updated,
    deleted: row.deleted === 1, json: row.content === null ? undefined : codec.decode(row.type, row.id, row.version, row.content),
  };
}

function readVersion(sql: Statements, codec: ResourceCodec, resourceType: string, id: string, versionId: string): StoredResource | undefined {
  if (!/^[1-9]\d{0,9}$/.test(versionId)) return undefined;
  const row = sql.version.get(resourceType, id, Number(versionId));
  if (!row) return undefined;
  return {
    resourceType: row.type, id: row.id, versionId: String(row.version), lastUpdated: row.last_updated,
    deleted: row.deleted === 1, json: row.content === null ? undefined : codec.decode(row.type, row.id, row.version, row.content),
  };
}
