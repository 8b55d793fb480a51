import type { Config } from '../../config/config.ts';
import type { Store } from '../../store/store.ts';
import type { ProvenanceSigner } from '../../provenance/provenance-signature.ts';
import type { RestContext } from '../../rest/context.ts';
import type { Bundle, BundleEntry, OperationOutcome, Resource } from '../../fhir/types.ts';
import { consolePrincipal } from '../../auth/authenticate.ts';
import { AuditLog } from '../../audit/audit-log.ts';
import { requestContext } from '../../rest/pipeline.ts';
import { splitConditional } from '../../rest/conditional.ts';
import { isResourceType } from '../../fhir/definitions.ts';
import { FhirError } from '../../fhir/outcome.ts';
import { collectInputs, readLines, readText, type InputFile } from './sources.ts';
import { ConditionalResolver, conditionalReferences, replaceReferences, type Resolution } from './references.ts';
import { BatchWriter, baseRequest, errorMessage, failedEntry, responseEntries, type WriteItem } from './writer.ts';
import { count, newReport, totalResources, type ImportReport, type Source } from './report.ts';
import { sameContent } from './same-content.ts';

export interface ImportOptions {
  store: Store;
  config: Config;
  /**
   * Send transaction and batch Bundles exactly as written: a POST entry creates a new resource with
   * an id the server assigns, so importing a file twice stores it twice. By default (false) a POST
   * entry whose resource carries an id is sent as `PUT Type/id`, which keeps the file's ids and
   * makes re-running the import idempotent.
   */
  serverIds?: boolean;
  /** Resources per transaction when loading NDJSON lines (and entries of collection Bundles). */
  batchSize?: number;
  /** Do not write a resource whose stored content is already the same (default true): re-runs add no versions. */
  skipUnchanged?: boolean;
  /** Called often (at most every 100 ms, and after every file) while the import runs. */
  onProgress?: (progress: ImportProgress) => void;
  /** Signs the Provenance each batch of writes records (as the server does); without it the Provenance is unsigned. */
  provenanceSigner?: ProvenanceSigner;
}

export interface ImportProgress {
  filesDone: number;
  filesTotal: number;
  bytesDone: number;
  bytesTotal: number;
  /** Resources stored or found unchanged so far. */
  resources: number;
  errors: number;
  /** The file being read. */
  file?: string;
}

export const defaultBatchSize = 250;

/**
 * Imports NDJSON files (one resource per line, bulk-data style) and JSON files (a Bundle or a
 * single resource), gzipped or not, through the same pipeline as the REST API: every write is
 * validated, decided, executed, filtered and audited as if a local client had sent it.
 *
 * - NDJSON: a line with an id is `PUT Type/id`, one without is `POST Type`, batched into
 *   transaction Bundles. Conditional references (`Practitioner?identifier=...`) are resolved
 *   against the store first (exactly one match); a line whose target is not there yet is retried
 *   after everything else, and reported if it still matches none.
 * - A transaction or batch Bundle is POSTed to the base as one request (see `serverIds`), so the
 *   pipeline rewrites its `urn:uuid:` references. A transaction is all or nothing.
 * - A collection, searchset or history Bundle is unpacked: its entries load like NDJSON lines
 *   (`urn:uuid:` fullUrls become the ids of the resources that have none).
 * - Any other JSON resource (including document and message Bundles) is stored as it is.
 * - A file whose first record is JSON without a resourceType (a bulk export's log.ndjson or
 *   manifest) is skipped and listed as skipped, not as an error.
 *
 * Errors never stop the import; each names its file and line (and entry for Bundles).
 */
export async function importFiles(paths: string[], options: ImportOptions): Promise<ImportReport> {
  return new Importer(options).run(paths);
}

class Importer {
  private readonly o: ImportOptions;
  private readonly report = newReport();
  private readonly ctx: RestContext;
  private readonly audit: AuditLog;
  private readonly auditErrors: unknown[] = [];
  private readonly resolver: ConditionalResolver;
  private readonly writer: BatchWriter;
  private readonly skipUnchanged: boolean;
  private deferred: WriteItem[] = [];
  private filesTotal = 0;
  private filesDone = 0;
  private bytesTotal = 0;
  private bytesDone = 0;
  private currentFile: string | undefined;
  private lastProgress = 0;

  constructor(options: ImportOptions) {
    this.o = options;
    const { store, config } = options;
    this.skipUnchanged = options.skipUnchanged ?? true;
    this.audit = new AuditLog(store, (err) => this.auditErrors.push(err));
    this.ctx = requestContext(config, store, this.audit, consolePrincipal(), options.provenanceSigner ? { provenanceSigner: options.provenanceSigner } : {});
    this.resolver = new ConditionalResolver(store, config);
    this.writer = new BatchWriter({
      ctx: this.ctx,
      reader: store,
      report: this.report,
      batchSize: options.batchSize ?? defaultBatchSize,
      skipUnchanged: this.skipUnchanged,
      onCommit: () => this.resolver.committed(),
    });
  }

  async run(paths: string[]): Promise<ImportReport> {
    const started = performance.now();
    const { files, errors } = collectInputs(paths);
    this.report.errors.push(...errors);
    this.filesTotal = files.length;
    this.bytesTotal = files.reduce((n, f) => n + f.size, 0);
    let done = 0;
    try {
      for (const file of files) {
        this.currentFile = file.path;
        try {
          const read = file.kind === 'ndjson' ? await this.ndjson(file) : await this.json(file);
          if (read) this.report.files++;
        } catch (err) {
          // Reading failed (I/O, a corrupt .gz): what was read so far still counts.
          this.report.errors.push({ file: file.path, message: `cannot read the file: ${(err as Error).message}` });
        }
        done += file.size;
        this.bytesDone = done;
        this.filesDone++;
        this.progress(true);
      }
      this.currentFile = undefined;
      await this.retryDeferred();
      await this.writer.flush();
    } finally {
      await this.audit.flush();
    }
    if (this.auditErrors.length > 0) {
      this.report.errors.push({ file: '(audit trail)', message: `appending ${this.auditErrors.length} batch(es) of audit records failed: ${(this.auditErrors[0] as Error)?.message}` });
    }
    this.report.bytes = this.bytesTotal;
    this.report.seconds = (performance.now() - started) / 1000;
    this.report.errors.sort(byLocation);
    this.progress(true);
    return this.report;
  }

  // ---- NDJSON ----

  /** False when the file was skipped as not FHIR. */
  private async ndjson(file: InputFile): Promise<boolean> {
    let first = true;
    for await (const { text, line } of readLines(file, (n) => this.read(n))) {
      if (blank(text)) continue;
      const source: Source = { file: file.path, line };
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (err) {
        first = false;
        this.error(source, `invalid JSON: ${jsonError(err)}`);
        continue;
      }
      if (first) {
        first = false;
        if (isObject(value) && value.resourceType === undefined) {
          this.report.skipped.push({ file: file.path, message: 'not FHIR NDJSON: line 1 has no resourceType (a bulk export log?); the file was skipped' });
          return false;
        }
      }
      // No `?` in the line: no conditional reference to look for.
      await this.resource(value, source, text.includes('?'));
      this.progress();
    }
    return true;
  }

  /** One resource from a line or an entry: checked, conditional references resolved, queued. */
  private async resource(value: unknown, source: Source, mayHaveConditional = true): Promise<void> {
    if (!isObject(value)) return this.error(source, 'not a FHIR resource: a JSON object with a resourceType is expected');
    const type = value.resourceType;
    if (typeof type !== 'string') return this.error(source, 'not a FHIR resource: it has no resourceType');
    if (!isResourceType(type)) return this.error(source, `unknown resource type ${JSON.stringify(type)}`);
    const resource = value as Resource;
    if (mayHaveConditional) {
      const r = await this.resolveConditionals(resource);
      if (r.kind === 'missing') {
        this.deferred.push({ resource, source });
        return;
      }
      if (r.kind === 'failed') return this.error(source, r.message);
    }
    await this.writer.add({ resource, source });
  }

  /** Rewrites every conditional reference to the one resource it selects, or says why it cannot (yet). */
  private async resolveConditionals(resource: Resource): Promise<{ kind: 'ok' } | Exclude<Resolution, { kind: 'resolved' }>> {
    const refs = conditionalReferences(resource);
    if (refs.length === 0) return { kind: 'ok' };
    const targets = new Map<string, string>();
    for (const ref of refs) {
      let r = await this.resolver.resolve(ref);
      // The target may be waiting in the current batch: commit it and look again.
      if (r.kind === 'missing' && this.writer.hasPending(splitConditional(ref)!.resourceType)) {
        await this.writer.flush();
        r = await this.resolver.resolve(ref);
      }
      if (r.kind !== 'resolved') return r;
      targets.set(ref, r.target);
    }
    replaceReferences(resource, (ref) => targets.get(ref));
    return { kind: 'ok' };
  }

  /** Lines whose conditional references matched nothing on the first pass: again, until nothing changes. */
  private async retryDeferred(): Promise<void> {
    let items = this.deferred;
    this.deferred = [];
    while (items.length > 0) {
      await this.writer.flush();
      const next: { item: WriteItem; message: string }[] = [];
      let progressed = false;
      for (const item of items) {
        const r = await this.resolveConditionals(item.resource);
        if (r.kind === 'ok') {
          progressed = true;
          await this.writer.add(item);
        } else if (r.kind === 'missing') {
          next.push({ item, message: r.message });
        } else {
          this.error(item.source, r.message);
        }
        this.progress();
      }
      if (!progressed) {
        for (const { item, message } of next) this.error(item.source, message);
        break;
      }
      items = next.map((n) => n.item);
    }
  }

  // ---- JSON files ----

  /** False when the file was skipped as not FHIR. */
  private async json(file: InputFile): Promise<boolean> {
    const text = await readText(file);
    this.read(file.size);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      const at = /\(line (\d+) column \d+\)$/.exec((err as Error).message);
      this.error({ file: file.path, line: at ? Number(at[1]) : undefined }, `invalid JSON: ${(err as Error).message}`);
      return true;
    }
    if (isObject(value) && value.resourceType === undefined) {
      this.report.skipped.push({ file: file.path, message: 'not FHIR JSON: it has no resourceType (a bulk export manifest?); the file was skipped' });
      return false;
    }
    const bundle = value as Bundle;
    if (isObject(value) && bundle.resourceType === 'Bundle' && (bundle.type === 'transaction' || bundle.type === 'batch')) {
      await this.postBundle(file, bundle);
    } else if (isObject(value) && bundle.resourceType === 'Bundle' && ['collection', 'searchset', 'history'].includes(bundle.type)) {
      await this.unpack(file, bundle);
    } else {
      await this.resource(value, { file: file.path, line: 1 });
    }
    // Errors of this file are all known now: give its Bundle entries line numbers while the text is at hand.
    await this.writer.flush();
    if (isObject(value) && Array.isArray(bundle.entry)) this.locateEntries(file, text, bundle.entry);
    return true;
  }

  /**
   * A transaction or batch Bundle: one POST to the base. Unless `serverIds`, POST entries with an
   * id become `PUT Type/id`; entries already stored with the same content are left out (their
   * `urn:uuid:` references are rewritten here, the others by the pipeline).
   */
  private async postBundle(file: InputFile, bundle: Bundle): Promise<void> {
    await this.writer.flush();
    if (bundle.entry !== undefined && !Array.isArray(bundle.entry)) return this.error({ file: file.path }, 'Bundle.entry must be an array');
    const entries = bundle.entry ?? [];
    if (!this.o.serverIds) for (const e of entries) keepId(e);
    const dropped = this.skipUnchanged && !this.o.serverIds ? await this.unchangedEntries(entries) : new Map<number, string>();
    const kept: number[] = [];
    for (let i = 0; i < entries.length; i++) if (!dropped.has(i)) kept.push(i);
    if (dropped.size > 0) {
      const droppedIds = new Map<string, string>();
      for (const [i, ref] of dropped) {
        if (entries[i].fullUrl) droppedIds.set(entries[i].fullUrl!, ref);
        count(this.report, entries[i].resource!.resourceType, 'unchanged');
      }
      for (const i of kept) if (entries[i].resource) replaceReferences(entries[i].resource, (ref) => droppedIds.get(ref));
    }
    if (kept.length === 0) return;
    let entriesOut: BundleEntry[];
    try {
      const res = await this.ctx.dispatch(this.ctx, baseRequest({ ...bundle, entry: kept.map((i) => entries[i]) }));
      entriesOut = responseEntries(res);
    } catch (err) {
      const failed = failedEntry(err);
      if (failed && failed.index < kept.length) {
        const rolledBack = bundle.type === 'transaction' ? '; the transaction was rolled back, so nothing from this file was imported' : '';
        return this.error({ file: file.path, entry: kept[failed.index] }, failed.message + rolledBack);
      }
      return this.error({ file: file.path }, errorMessage(err));
    }
    kept.forEach((i, k) => {
      const e = entries[i];
      const response = entriesOut[k]?.response;
      const status = Number.parseInt(response?.status ?? '', 10);
      const type = e.resource?.resourceType ?? e.request?.url?.split(/[/?]/)[0] ?? 'Bundle';
      if (!(status < 400)) {
        const outcome = response?.outcome as OperationOutcome | undefined;
        const err = outcome?.issue ? new FhirError(status || 500, outcome.issue) : new FhirError(status || 500, `the entry failed (${response?.status ?? 'no status'})`);
        this.error({ file: file.path, entry: i }, errorMessage(err));
        return;
      }
      const method = e.request?.method;
      if (method === 'PUT' || method === 'PATCH') count(this.report, type, status === 201 ? 'created' : 'updated');
      else if (method === 'POST') count(this.report, type, status === 201 ? 'created' : 'unchanged');
    });
  }

  /** Entries `PUT Type/id` whose resource, references resolved, equals what is stored: index -> `Type/id`. */
  private async unchangedEntries(entries: BundleEntry[]): Promise<Map<number, string>> {
    const ids = new Map<string, string>();
    const puts: { i: number; type: string; id: string }[] = [];
    entries.forEach((e, i) => {
      const target = plainPut(e);
      if (!target) return;
      puts.push({ i, ...target });
      if (e.fullUrl) ids.set(e.fullUrl, `${target.type}/${target.id}`);
    });
    const out = new Map<number, string>();
    for (const { i, type, id } of puts) {
      const current = await this.o.store.read(type, id);
      if (!current || current.deleted || current.json === undefined) continue;
      const copy = structuredClone(entries[i].resource!);
      let predictable = true;
      replaceReferences(copy, (ref) => {
        const to = ids.get(ref);
        if (to === undefined && (/^urn:/.test(ref) || splitConditional(ref))) predictable = false;
        return to;
      });
      if (predictable && sameContent(current.json, copy)) out.set(i, `${type}/${id}`);
    }
    return out;
  }

  /** A collection, searchset or history Bundle: its resources, loaded like NDJSON lines. */
  private async unpack(file: InputFile, bundle: Bundle): Promise<void> {
    const entries = Array.isArray(bundle.entry) ? bundle.entry : [];
    const ids = new Map<string, string>();
    for (const e of entries) {
      const r = e?.resource;
      if (!isObject(r) || typeof r.resourceType !== 'string') continue;
      // A resource known only by its urn:uuid fullUrl keeps that uuid as its id: re-runs stay idempotent.
      if (r.id === undefined && typeof e.fullUrl === 'string' && /^urn:uuid:[0-9a-fA-F-]{36}$/.test(e.fullUrl)) r.id = e.fullUrl.slice(9).toLowerCase();
      if (typeof e.fullUrl === 'string' && typeof r.id === 'string') ids.set(e.fullUrl, `${r.resourceType}/${r.id}`);
    }
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i];
      if (e?.search?.mode === 'outcome' || e?.request?.method === 'DELETE') continue;
      if (!e || e.resource === undefined) continue;
      replaceReferences(e.resource, (ref) => ids.get(ref));
      await this.resource(e.resource, { file: file.path, entry: i });
      this.progress();
    }
  }

  /** Fills in the line of each Bundle entry an error or a deferred resource of this file names. */
  private locateEntries(file: InputFile, text: string, entries: BundleEntry[]): void {
    const lineOf = (s: Source) => {
      if (s.file !== file.path || s.entry === undefined || s.line !== undefined) return;
      const fullUrl = entries[s.entry]?.fullUrl;
      if (typeof fullUrl !== 'string') return;
      const m = new RegExp(`"fullUrl"\\s*:\\s*${escapeRegExp(JSON.stringify(fullUrl))}`).exec(text);
      if (m) s.line = lineAt(text, m.index);
    };
    for (const e of this.report.errors) lineOf(e);
    for (const d of this.deferred) lineOf(d.source);
  }

  // ---- bookkeeping ----

  private error(source: Source, message: string): void {
    this.report.errors.push({ ...source, message });
  }

  private read(bytes: number): void {
    this.bytesDone += bytes;
    this.progress();
  }

  private progress(force = false): void {
    if (!this.o.onProgress) return;
    const now = performance.now();
    if (!force && now - this.lastProgress < 100) return;
    this.lastProgress = now;
    this.o.onProgress({
      filesDone: this.filesDone,
      filesTotal: this.filesTotal,
      bytesDone: Math.min(this.bytesDone, this.bytesTotal),
      bytesTotal: this.bytesTotal,
      resources: totalResources(this.report),
      errors: this.report.errors.length,
      file: this.currentFile,
    });
  }
}

/** `POST Type` of a resource that has an id becomes `PUT Type/id` (conditional creates stay as they are). */
function keepId(e: BundleEntry): void {
  const r = e?.request;
  const res = e?.resource;
  if (!r || r.method !== 'POST' || r.ifNoneExist !== undefined || !isObject(res) || typeof res.id !== 'string') return;
  if (typeof r.url !== 'string' || r.url.replace(/^\//, '') !== res.resourceType) return;
  e.request = { ...r, method: 'PUT', url: `${res.resourceType}/${encodeURIComponent(res.id)}` };
}

/** An unconditional `PUT Type/id` of a resource with that type and id. */
function plainPut(e: BundleEntry): { type: string; id: string } | undefined {
  const r = e?.request;
  const res = e?.resource;
  if (!r || r.method !== 'PUT' || r.ifMatch !== undefined || typeof r.url !== 'string' || !isObject(res)) return undefined;
  const m = /^\/?([A-Za-z]+)\/([^/?]+)$/.exec(r.url);
  if (!m || m[1] !== res.resourceType || typeof res.id !== 'string' || safeDecode(m[2]) !== res.id) return undefined;
  return { type: m[1], id: res.id };
}

/** V8's JSON.parse message; within one NDJSON line "position 44 (line 1 column 45)" says no more than "column 45". */
function jsonError(err: unknown): string {
  const message = (err as Error).message;
  return message.replace(/ in JSON at position \d+ \(line 1 column (\d+)\)$/, ' at column $1');
}

function safeDecode(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function blank(text: string): boolean {
  return text.length === 0 || text.trim().length === 0;
}

function lineAt(text: string, index: number): number {
  let line = 1;
  for (let i = text.indexOf('\n'); i >= 0 && i < index; i = text.indexOf('\n', i + 1)) line++;
  return line;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function byLocation(a: Source, b: Source): number {
  return a.file < b.file ? -1 : a.file > b.file ? 1 : (a.line ?? a.entry ?? 0) - (b.line ?? b.entry ?? 0);
}
