import { randomUUID } from 'node:crypto';
import type { FhirRequest, FhirResponse, RestContext } from './context.ts';
import type { Bundle, BundleEntry, OperationOutcomeIssue, Resource } from '../fhir/types.ts';
import type { StoreWriter } from '../store/store.ts';
import { serializeBundle, type RawEntry } from '../fhir/bundle.ts';
import { FhirError, badRequest, issue, notFound, preconditionFailed } from '../fhir/outcome.ts';
import { entryRequest, entryResponse, errorResponse } from './bundle-entry.ts';
import { findMatches, lockCriteria, splitConditional } from './conditional.ts';
import { searchReaderFor } from './confinement.ts';
import { consentsIn } from './access-facts.ts';
import { rewriteReferences } from './references.ts';
import { settleTransactionAudit } from '../audit/audit-log.ts';
import type { AuditRecordFacts } from '../audit/audit-record.ts';

/** POST of a batch or transaction Bundle to the base (http.html#transaction). */
export async function bundle(ctx: RestContext, req: FhirRequest): Promise<FhirResponse> {
  const b = req.body as Bundle | undefined;
  if (!b || typeof b !== 'object' || b.resourceType !== 'Bundle') throw badRequest('POST to the base URL takes a Bundle of type batch or transaction');
  if (b.type !== 'batch' && b.type !== 'transaction') throw badRequest(`Bundle.type must be batch or transaction (got ${JSON.stringify(b.type)})`, ['Bundle.type']);
  if (b.entry !== undefined && !Array.isArray(b.entry)) throw badRequest('Bundle.entry must be an array', ['Bundle.entry']);
  if (ctx.inTransaction) throw badRequest('A batch or transaction cannot be nested in a transaction');
  const entries = b.entry ?? [];
  const raw = b.type === 'batch' ? await batch(ctx, entries) : await transaction(ctx, entries);
  const json = serializeBundle({ resourceType: 'Bundle', id: randomUUID(), type: `${b.type}-response`, timestamp: new Date().toISOString() }, raw);
  return { status: 200, headers: {}, json };
}

/** Each entry on its own: one failing does not affect the others. */
async function batch(ctx: RestContext, entries: BundleEntry[]): Promise<RawEntry[]> {
  const out: RawEntry[] = [];
  for (let i = 0; i < entries.length; i++) {
    try {
      const req = entryRequest(entries[i], i, ctx.config.baseUrl);
      const { fullUrl, resourceJson, response } = entryResponse(await ctx.dispatch(ctx, req));
      out.push({ fullUrl, resourceJson, rest: { response: response as never } });
    } catch (err) {
      out.push({ rest: errorResponse(err) as never });
    }
  }
  return out;
}

const order: Record<string, number> = { DELETE: 0, POST: 1, PUT: 2, PATCH: 2, GET: 3, HEAD: 3 };

/** All entries or none. Any failure rolls everything back and the error names the entry. */
async function transaction(ctx: RestContext, entries: BundleEntry[]): Promise<RawEntry[]> {
  const requests = entries.map((e, i) => {
    try {
      return entryRequest(e, i, ctx.config.baseUrl);
    } catch (err) {
      throw failedEntry(err, i);
    }
  });
  const pendingAudit: AuditRecordFacts[] = [];
  try {
    const results = await ctx.write((tx) => runTransaction(ctx, tx, entries, requests, pendingAudit));
    settleTransactionAudit(ctx.audit, pendingAudit, true);
    return results;
  } catch (err) {
    settleTransactionAudit(ctx.audit, pendingAudit, false);
    throw err;
  }
}

async function runTransaction(
  ctx: RestContext, tx: StoreWriter, entries: BundleEntry[], requests: FhirRequest[], pendingAudit: AuditRecordFacts[],
): Promise<RawEntry[]> {
  const inner: RestContext = { ...ctx, reader: tx, write: (work) => work(tx), inTransaction: true, pendingAudit };
  const ids = await assignIdentities(ctx, tx, entries, requests);
  for (let i = 0; i < requests.length; i++) {
    if (requests[i].body && typeof requests[i].body === 'object') {
      requests[i].body = await rewriteReferences(requests[i].body as Resource, ids, (ref) => resolveConditional(ctx, tx, ref, i));
    }
  }
  const sequence = requests.map((_, i) => i).sort((a, b) => order[requests[a].method] - order[requests[b].method] || a - b);
  const results: RawEntry[] = new Array(requests.length);
  for (const i of sequence) {
    let res: FhirResponse;
    try {
      res = await ctx.dispatch(inner, requests[i]);
    } catch (err) {
      throw failedEntry(err, i);
    }
    const { fullUrl, resourceJson, response } = entryResponse(res);
    results[i] = { fullUrl, resourceJson, rest: { response: response as never } };
  }
  return results;
}

/**
 * Decides the id behind every entry's fullUrl before anything is written, so that references
 * between entries can be rewritten whatever the processing order.
 */
async function assignIdentities(ctx: RestContext, tx: StoreWriter, entries: BundleEntry[], requests: FhirRequest[]): Promise<Map<string, string>> {
  const ids = new Map<string, string>();
  const touched = new Map<string, number>();
  for (let i = 0; i < requests.length; i++) {
    const req = requests[i];
    const fullUrl = entries[i].fullUrl;
    const type = req.segments[0];
    let id: string | undefined;
    if (req.method === 'POST' && req.segments.length === 1) {
      if (req.ifNoneExist !== undefined) {
        const criteria = req.ifNoneExist.replace(new RegExp(`^${type}\\?`), '').replace(/^\?/, '');
        await lockCriteria(tx, type, criteria);
        const matches = await findMatches(searchReaderFor(ctx.principal, tx, type, await consentsIn(ctx.facts)), ctx.config, type, criteria, ctx.terminology);
        if (matches.length > 1) throw failedEntry(preconditionFailed(`If-None-Exist matched several ${type} resources`), i);
        id = matches[0]?.id;
      }
      if (!id) id = req.assignedId = randomUUID();
    } else if (req.method === 'PUT' && req.segments.length === 1 && req.queryString) {
      await lockCriteria(tx, type, req.queryString);
      const matches = await findMatches(searchReaderFor(ctx.principal, tx, type, await consentsIn(ctx.facts)), ctx.config, type, req.queryString, ctx.terminology);
      if (matches.length > 1) throw failedEntry(preconditionFailed(`The conditional update matched several ${type} resources`), i);
      const chosen = (req.body as Resource | undefined)?.id;
      id = matches[0]?.id ?? chosen ?? randomUUID();
      if (req.body && typeof req.body === 'object' && !matches[0]) (req.body as Resource).id = id;
      // The server chose it: the client cannot be probing for an id it never named.
      if (!matches[0] && chosen === undefined) req.assignedId = id;
    } else if ((req.method === 'PUT' || req.method === 'PATCH' || req.method === 'DELETE') && req.segments.length === 2) {
      id = req.segments[1];
    }
    // http.html#trules: entries that write the same resource make the transaction fail.
    if (id && type && req.method !== 'GET' && req.method !== 'HEAD') {
      const key = `${type}/${id}`;
      const earlier = touched.get(key);
      if (earlier !== undefined) throw failedEntry(badRequest(`${key} is also written by entry ${earlier}; a transaction may touch each resource once`), i);
      touched.set(key, i);
    }
    if (fullUrl && id && type) {
      if (ids.has(fullUrl)) throw failedEntry(badRequest(`fullUrl ${fullUrl} appears more than once`), i);
      ids.set(fullUrl, `${type}/${id}`);
      // An absolute fullUrl under our base also names the resource by its relative reference.
    }
  }
  return ids;
}

/** A conditional reference (`Patient?identifier=...`) must match exactly one resource (http.html#trules). */
async function resolveConditional(ctx: RestContext, tx: StoreWriter, reference: string, index: number): Promise<string | undefined> {
  const cond = splitConditional(reference);
  if (!cond) return undefined;
  const matches = await findMatches(searchReaderFor(ctx.principal, tx, cond.resourceType, await consentsIn(ctx.facts)), ctx.config, cond.resourceType, cond.criteria, ctx.terminology);
  if (matches.length === 0) throw failedEntry(notFound(`The conditional reference ${reference} matches no resource`), index);
  if (matches.length > 1) throw failedEntry(preconditionFailed(`The conditional reference ${reference} matches several resources`), index);
  return `${cond.resourceType}/${matches[0].id}`;
}

function failedEntry(err: unknown, index: number): FhirError {
  if (!(err instanceof FhirError)) return new FhirError(500, `Transaction failed at entry ${index}`, 'exception');
  const issues: OperationOutcomeIssue[] = err.issues.map((i) => ({ ...i, diagnostics: `Transaction failed at entry ${index}: ${i.diagnostics ?? i.code}` }));
  if (issues.length === 0) issues.push(issue('error', 'processing', `Transaction failed at entry ${index}`));
  return new FhirError(err.status, issues, 'processing', err.headers);
}
