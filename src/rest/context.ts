import type { Config } from '../config/config.ts';
import type { Principal } from '../auth/principal.ts';
import type { Store, StoreReader, StoreWriter } from '../store/store.ts';
import type { Resource } from '../fhir/types.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import type { AuditRecordFacts } from '../audit/audit-record.ts';
import type { AccessFacts } from './access-facts.ts';
import type { Pseudonyms } from '../access/pseudonyms.ts';
import type { ProvenanceSigner } from '../provenance/provenance-signature.ts';

/** A FHIR request, whatever carried it: an HTTP request or an entry of a batch/transaction Bundle. */
export interface FhirRequest {
  method: string;
  /** Path segments after the FHIR base, e.g. ['Patient', '123', '_history', '2']. */
  segments: string[];
  /** Query parameters in order, decoded. */
  query: [string, string][];
  /** Raw query string without `?`, for audit and self links. */
  queryString: string;
  ifMatch?: string;
  ifNoneMatch?: string;
  ifModifiedSince?: string;
  ifNoneExist?: string;
  prefer?: string;
  contentType?: string;
  body?: unknown;
  /** A transaction Bundle chose this id for a create in advance, so references to it resolve. */
  assignedId?: string;
}

export interface FhirResponse {
  status: number;
  headers: Record<string, string>;
  /** A resource to serialize... */
  resource?: Resource;
  /** ...or one already serialized by the store, sent as it is when nothing needs changing. */
  json?: string;
  /** References of resources touched or returned, for the audit trail. */
  entities?: string[];
}

export interface RestContext {
  config: Config;
  principal: Principal;
  audit: AuditLog;
  /** The audit trail, for those who may read it (rest/audit-trail.ts). */
  trail: Pick<Store, 'auditCandidates' | 'auditRecord'>;
  /** Reads: committed data, or inside a transaction Bundle that transaction's view. */
  reader: StoreReader;
  /** Where stored CodeSystems and ValueSets are looked up for :in / :below: never confined (they are definitions, not records). */
  terminology: StoreReader;
  /** Keyed pseudonyms of the de-identified view (researchers); absent: no view is served. */
  pseudonyms?: Pseudonyms;
  /** Facts for access decisions derived from the store's committed data (see access-facts.ts); absent: every check queries. */
  facts?: AccessFacts;
  /** Signs the Provenance of writes and verifies it; absent: Provenance is recorded unsigned. */
  provenanceSigner?: ProvenanceSigner;
  /**
   * What the request's writes recorded, for its audit record: the Provenances
   * (`Provenance/id/_history/1`) and the patients whose records were written; shared by a
   * Bundle's entries, taken by whichever records first.
   */
  written: { provenance: string[]; patients: string[] };
  /** Runs writes atomically: its own transaction, or the enclosing transaction Bundle's. */
  write<T>(work: (tx: StoreWriter) => Promise<T>): Promise<T>;
  /** True while executing entries of a transaction Bundle (nested bundles are refused). */
  inTransaction: boolean;
  /**
   * Inside a transaction Bundle, entries' audit events wait here until the outcome is known, so a
   * rolled-back entry is never recorded as a success.
   */
  pendingAudit?: AuditRecordFacts[];
  /** Runs one request through the whole pipeline (decide, execute, filter, audit): bundle entries use it. */
  dispatch(ctx: RestContext, req: FhirRequest): Promise<FhirResponse>;
}
