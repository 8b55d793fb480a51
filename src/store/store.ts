import type { Resource } from '../fhir/types.ts';
import type { SearchRequest } from '../fhir/search/types.ts';

/** One stored version of a resource. `json` is the exact serialization served to clients. */
export interface StoredResource {
  resourceType: string;
  id: string;
  versionId: string;
  /** FHIR instant, UTC, millisecond precision. */
  lastUpdated: string;
  deleted: boolean;
  /** The resource with meta.versionId and meta.lastUpdated set; undefined for a deletion marker. */
  json: string | undefined;
}

export type WriteMethod = 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface HistoryEntry extends StoredResource {
  method: WriteMethod;
}

export interface HistoryQuery {
  resourceType?: string;
  id?: string;
  /** Only versions last updated at or after this instant. */
  since?: string;
  /** Only the version current at this instant, per resource. */
  at?: string;
  /** Only versions last updated at or before this instant: keeps later pages stable under writes. */
  until?: string;
  count: number;
  offset: number;
}

export interface HistoryPage {
  entries: HistoryEntry[];
  total: number;
}

export interface SearchResult {
  /** Matches for this page, in the requested order. */
  matches: StoredResource[];
  /** Resources added by _include / _revinclude. */
  included: StoredResource[];
  /** Present when the request asked for a total. */
  total?: number;
  /**
   * Continuation tokens for the pages after and before this one, when there are such pages. They
   * mark a position in the sort order rather than a count of rows, so a page fetched later
   * neither repeats nor skips a resource because others were created or deleted meanwhile.
   */
  next?: string;
  previous?: string;
}

export interface AuditRecord {
  recorded: string;
  json: string;
}

export interface StoredAuditRecord extends AuditRecord {
  /** Position in the log: increasing, never reused. */
  seq: number;
}

export interface AuditQuery {
  /** Records after this position (0: from the start). */
  afterSeq: number;
  limit: number;
}

/** One page of candidates for an audit trail search: the caller tests each against the criteria. */
export interface AuditCandidateQuery {
  /** Records carrying any of these search keys (audit/audit-index.ts); absent: any record. */
  keys?: string[];
  /** Records recorded at or after this instant, give or take the minutes an append may lag (the caller tests the exact time). */
  from?: string;
  /** Records recorded before this instant, likewise. */
  to?: string;
  /** Continue past this position: below it when descending, above it when ascending. */
  after?: number;
  descending: boolean;
  limit: number;
}

export interface UpdateOptions {
  /** Fail with 412 unless the current version is this one. */
  ifMatch?: string;
  method?: WriteMethod;
  /** The server chose the id (a conditional update that matched nothing): the client cannot be probing for it. */
  serverAssignedId?: boolean;
}

export interface UpdateResult {
  stored: StoredResource;
  created: boolean;
}

/** Reads see committed data only (or, inside a transaction, that transaction's own writes). */
export interface StoreReader {
  /** The current version, including a deletion marker; undefined if the id never existed. */
  read(resourceType: string, id: string): Promise<StoredResource | undefined>;
  vread(resourceType: string, id: string, versionId: string): Promise<StoredResource | undefined>;
  history(query: HistoryQuery): Promise<HistoryPage>;
  search(request: SearchRequest): Promise<SearchResult>;
}

export interface StoreWriter extends StoreReader {
  /** Stores version 1 of a resource whose id the caller chose; 409 if that id already exists. */
  create(resource: Resource & { id: string }): Promise<StoredResource>;
  /** Stores a new version, or version 1 when the id is new (update-as-create). */
  update(resource: Resource & { id: string }, options?: UpdateOptions): Promise<UpdateResult>;
  /** Records a deletion marker; undefined when there was nothing current to delete. */
  delete(resourceType: string, id: string, options?: UpdateOptions): Promise<StoredResource | undefined>;
  /**
   * Holds, until this transaction ends, a lock that every other transaction naming the same key
   * waits for, on whichever node it runs: what a conditional create searched for cannot be created
   * by another meanwhile. Absent where transactions run one at a time anyway (the embedded store).
   */
  lock?(key: string): Promise<void>;
}

export interface Store extends StoreReader {
  /**
   * Runs `work` atomically: every write in it commits together or not at all. Throwing rolls
   * everything back. Transactions are serialised, so `work` sees a stable view.
   */
  transaction<T>(work: (tx: StoreWriter) => Promise<T>): Promise<T>;
  /**
   * A number that changes whenever resources of these types may have changed since it was last
   * asked (a commit writing one of them, or any other process's commit): what is derived from
   * them is reusable while it stays the same.
   */
  generation(resourceTypes: readonly string[]): number;
  /** The keyed blind index of a sensitive identifier's value (what the index holds instead of it); absent when identifiers are not protected. */
  blindIndex?(value: string): string;
  /** Appends audit records to the append-only, chained audit log; resolves with the first one's position once committed. */
  appendAudit(records: AuditRecord[]): Promise<number>;
  /**
   * Rebuilds the search index of every current resource from its content, in one transaction
   * (after the search parameter definitions changed). Returns how many resources were indexed.
   */
  reindex(): Promise<number>;
  /**
   * Brings every stored version to the current keys and settings (after a key rotation, or
   * sealing turned on), in small batches between other writes; resolves with what it did.
   */
  reencrypt?(onProgress?: (progress: ReencryptProgress) => void): Promise<ReencryptProgress>;
  /** How many stored versions are not under the current keys and settings. */
  staleCount?(): Promise<number>;
  /** Whether any stored version is sealed (app-level body encryption was on when it was written). */
  holdsSealedBodies?(): Promise<boolean>;
  /** Appended audit records in order, a page at a time. */
  auditRecords(query: AuditQuery): Promise<StoredAuditRecord[]>;
  /** Audit records that may match a search, a page at a time (audit/audit-search.ts tests them). */
  auditCandidates(query: AuditCandidateQuery): Promise<StoredAuditRecord[]>;
  /** The audit record at this position. */
  auditRecord(seq: number): Promise<StoredAuditRecord | undefined>;
  /** The audit chain's head now: how many records it holds and the last one's link. */
  auditHead(): Promise<{ count: number; head: Buffer }>;
  /** Keeps a signed checkpoint of the chain's head with the audit trail (append-only). */
  appendAuditCheckpoint(checkpoint: { count: number; head: Buffer; at: string; jws: string }): Promise<void>;
  close(): Promise<void>;
}

/** The re-encryption job's state. */
export interface ReencryptProgress {
  /** Versions examined so far, of `total`. */
  examined: number;
  total: number;
  /** Versions rewritten under the current keys. */
  rewritten: number;
  /** Versions that did not decrypt (altered): left as they are, and the keys they need are kept. */
  unreadable: number;
}
