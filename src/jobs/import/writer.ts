import type { FhirRequest, FhirResponse, RestContext } from '../../rest/context.ts';
import type { StoreReader } from '../../store/store.ts';
import type { Bundle, BundleEntry, Resource } from '../../fhir/types.ts';
import { FhirError } from '../../fhir/outcome.ts';
import { count, type ImportReport, type Source } from './report.ts';
import { sameContent } from './same-content.ts';

/** One resource to store: PUT Type/id when it has an id (idempotent), POST Type otherwise. */
export interface WriteItem {
  resource: Resource;
  source: Source;
}

interface Pending extends WriteItem {
  /** `Type/id` for a PUT; undefined for a POST. */
  key: string | undefined;
  /** Whether a current version existed when it was queued: a PUT then updates, else creates. */
  exists: boolean;
}

export interface WriterOptions {
  ctx: RestContext;
  /** Committed data, to compare with (skip unchanged) before writing. */
  reader: StoreReader;
  report: ImportReport;
  batchSize: number;
  skipUnchanged: boolean;
  /** Called after every commit (conditional-reference misses must be looked up again). */
  onCommit: () => void;
  /** Retries of a transaction without its failing entry before falling back to one request per resource. */
  maxRetries?: number;
}

/**
 * Stores resources through the REST pipeline in transaction Bundles of `batchSize` entries, so a
 * batch costs one commit. A Bundle that fails names the entry at fault: that resource is reported
 * and the rest are sent again, so one bad line fails only itself. After `maxRetries` such failures
 * in one batch (or a failure that names no entry) the remaining resources go one request each.
 */
export class BatchWriter {
  private readonly o: WriterOptions;
  private pending: Pending[] = [];
  private keys = new Set<string>();
  private types = new Set<string>();

  constructor(options: WriterOptions) {
    this.o = options;
  }

  /** Whether a resource of this type waits, uncommitted, in the current batch. */
  hasPending(resourceType: string): boolean {
    return this.types.has(resourceType);
  }

  async add(item: WriteItem): Promise<void> {
    const { resource } = item;
    const key = typeof resource.id === 'string' ? `${resource.resourceType}/${resource.id}` : undefined;
    // The same resource twice in one transaction would be ambiguous: commit the first one first.
    if (key && this.keys.has(key)) await this.flush();
    let exists = false;
    if (key) {
      const current = await this.o.reader.read(resource.resourceType, resource.id!);
      exists = !!current && !current.deleted;
      if (exists && this.o.skipUnchanged && current!.json !== undefined && sameContent(current!.json, resource)) {
        count(this.o.report, resource.resourceType, 'unchanged');
        return;
      }
      this.keys.add(key);
    }
    this.pending.push({ ...item, key, exists });
    this.types.add(resource.resourceType);
    if (this.pending.length >= this.o.batchSize) await this.flush();
  }

  async flush(): Promise<void> {
    const items = this.pending;
    if (items.length === 0) return;
    this.pending = [];
    this.keys = new Set();
    this.types = new Set();
    await this.send(items);
    this.o.onCommit();
  }

  private async send(items: Pending[]): Promise<void> {
    let remaining = items;
    let retries = 0;
    const maxRetries = this.o.maxRetries ?? 8;
    while (remaining.length > 0) {
      if (remaining.length === 1) return this.sendOne(remaining[0]);
      const bundle: Bundle = { resourceType: 'Bundle', type: 'transaction', entry: remaining.map(entryFor) };
      try {
        await this.o.ctx.dispatch(this.o.ctx, baseRequest(bundle));
        for (const item of remaining) this.counted(item);
        return;
      } catch (err) {
        const failed = failedEntry(err);
        if (!failed || failed.index >= remaining.length || retries >= maxRetries) {
          for (const item of remaining) await this.sendOne(item);
          return;
        }
        retries++;
        this.error(remaining[failed.index].source, failed.message);
        remaining = remaining.filter((_, i) => i !== failed.index);
      }
    }
  }

  private async sendOne(item: Pending): Promise<void> {
    try {
      await this.o.ctx.dispatch(this.o.ctx, resourceRequest(item));
      this.counted(item);
    } catch (err) {
      this.error(item.source, errorMessage(err));
    }
  }

  private counted(item: Pending): void {
    count(this.o.report, item.resource.resourceType, item.exists ? 'updated' : 'created');
  }

  private error(source: Source, message: string): void {
    this.o.report.errors.push({ ...source, message });
  }
}

function entryFor(item: Pending): BundleEntry {
  const type = item.resource.resourceType;
  return {
    resource: item.resource,
    request: item.key ? { method: 'PUT', url: `${type}/${encodeURIComponent(item.resource.id!)}` } : { method: 'POST', url: type },
  };
}

function resourceRequest(item: Pending): FhirRequest {
  const type = item.resource.resourceType;
  return {
    method: item.key ? 'PUT' : 'POST',
    segments: item.key ? [type, item.resource.id!] : [type],
    query: [],
    queryString: '',
    contentType: 'application/fhir+json',
    body: item.resource,
  };
}

/** A POST of a batch or transaction Bundle to the FHIR base, as the HTTP layer would build it. */
export function baseRequest(bundle: Bundle): FhirRequest {
  return { method: 'POST', segments: [], query: [], queryString: '', contentType: 'application/fhir+json', body: bundle };
}

const entryPrefix = /^Transaction failed at entry (\d+)(?::\s*)?/;

/** The entry a failed transaction names (src/rest/bundle.ts failedEntry), and its own message. */
export function failedEntry(err: unknown): { index: number; message: string } | undefined {
  if (!(err instanceof FhirError)) return undefined;
  const m = entryPrefix.exec(err.issues[0]?.diagnostics ?? '');
  if (!m) return undefined;
  const issues = err.issues.map((i) => ({ ...i, diagnostics: i.diagnostics?.replace(entryPrefix, '') || undefined }));
  return { index: Number(m[1]), message: describeIssues(new FhirError(err.status, issues)) };
}

/** An OperationOutcome (or any error) as one line: `expression: diagnostics; ...`. */
export function errorMessage(err: unknown): string {
  if (err instanceof FhirError) return describeIssues(err);
  return `internal error: ${err instanceof Error ? err.message : String(err)}`;
}

function describeIssues(err: FhirError): string {
  const parts = err.issues.slice(0, 3).map((i) => {
    const text = i.diagnostics ?? i.details?.text ?? i.code;
    const at = i.expression?.[0];
    return at && !text.includes(at) ? `${at}: ${text}` : text;
  });
  if (err.issues.length > 3) parts.push(`and ${err.issues.length - 3} more issues`);
  return `${parts.join('; ')} (${err.status})`;
}

/** The entries of a batch-response or transaction-response the pipeline returned as JSON text. */
export function responseEntries(res: FhirResponse): BundleEntry[] {
  const body = (res.json !== undefined ? JSON.parse(res.json) : res.resource) as Bundle | undefined;
  return body?.entry ?? [];
}
