import type { FhirRequest, FhirResponse, RestContext } from './context.ts';
import type { AuditRecordFacts } from '../audit/audit-record.ts';
import { renderAuditEvent } from '../audit/audit-event.ts';
import { auditEventOf } from '../audit/audit-read.ts';
import { parseAuditSearch, type AuditSearch } from '../audit/audit-search.ts';
import { serializeBundle } from '../fhir/bundle.ts';
import { notFound } from '../fhir/outcome.ts';
import { formParams } from './search.ts';

/** A found audit record: its position (the AuditEvent's id) and its facts. */
export interface FoundRecord {
  seq: number;
  recorded: string;
  facts: AuditRecordFacts;
}

/** Candidates read from the trail per round. */
const pageSize = 500;
/**
 * Candidates tested per request at most: a search whose criteria the index cannot narrow stops
 * here and answers what it found with a next link from where it stopped, rather than holding a
 * connection for minutes over a years-long trail.
 */
const scanBudget = 100_000;

/**
 * Searches the audit trail (rest/router.ts routes every AuditEvent interaction here: the trail
 * is not in the resource store, and the store holds no AuditEvents). Newest first unless `_sort=date`.
 */
export async function searchAuditTrail(ctx: RestContext, req: FhirRequest, fixed: [string, string][] = []): Promise<FhirResponse> {
  const search = parseAuditSearch([...req.query, ...formParams(req), ...fixed], ctx.config.search, ctx.config.baseUrl);
  const found = await findAuditRecords(ctx, search, search.count + 1);
  const page = found.records.slice(0, search.count);
  const base = ctx.config.baseUrl;
  // Links are GETs of the search's own path (without `_search`), with the caller's parameters.
  const path = req.segments.filter((s) => s !== '_search').join('/');
  const link = (cursor: number | undefined) => {
    const p = new URLSearchParams(search.used.filter(([name, value]) => !fixed.some(([f, v]) => f === name && v === value)));
    p.set('_count', String(search.count));
    if (!search.descending) p.set('_sort', 'date');
    if (cursor !== undefined) p.set('_cursor', String(cursor));
    return `${base}/${path}?${p}`;
  };
  const links = [{ relation: 'self', url: link(search.after) }];
  const more = found.records.length > search.count ? page[page.length - 1]?.seq : found.stoppedAt;
  if (more !== undefined && search.count > 0) links.push({ relation: 'next', url: link(more) });
  const json = serializeBundle(
    { resourceType: 'Bundle', type: 'searchset', link: links },
    page.map((r) => ({ fullUrl: `${base}/AuditEvent/${r.seq}`, resourceJson: JSON.stringify(renderAuditEvent(r.facts, String(r.seq))), rest: { search: { mode: 'match' } } })),
  );
  return { status: 200, headers: {}, json, entities: page.map((r) => `AuditEvent/${r.seq}`) };
}

/** One AuditEvent by its id (its position in the trail); its only version is 1. */
export async function readAuditEvent(ctx: RestContext, id: string, versionId?: string): Promise<FhirResponse> {
  const seq = /^[1-9]\d{0,15}$/.test(id) ? Number(id) : undefined;
  const record = seq !== undefined && (versionId === undefined || versionId === '1') ? await ctx.trail.auditRecord(seq) : undefined;
  if (!record) throw notFound(`AuditEvent/${id}${versionId ? `/_history/${versionId}` : ''} is not in the audit trail`);
  const event = auditEventOf(record);
  event.meta = { versionId: '1', lastUpdated: record.recorded };
  return {
    status: 200,
    headers: { etag: 'W/"1"', 'last-modified': new Date(record.recorded).toUTCString() },
    json: JSON.stringify(event),
    entities: [`AuditEvent/${id}`],
  };
}

/**
 * Records matching a search, in its order, up to `want`; `stoppedAt` is where the scan budget ran
 * out before the trail did (the next page goes on from there).
 */
export async function findAuditRecords(ctx: RestContext, search: AuditSearch, want: number): Promise<{ records: FoundRecord[]; stoppedAt?: number }> {
  const records: FoundRecord[] = [];
  let after = search.after;
  let scanned = 0;
  while (records.length < want) {
    if (scanned >= scanBudget) return { records, stoppedAt: after };
    const candidates = await ctx.trail.auditCandidates({
      ...(search.keys ? { keys: search.keys } : {}),
      ...(search.from ? { from: search.from } : {}),
      ...(search.to ? { to: search.to } : {}),
      ...(after !== undefined ? { after } : {}),
      descending: search.descending,
      limit: pageSize,
    });
    for (const c of candidates) {
      const facts = JSON.parse(c.json) as AuditRecordFacts;
      if (search.tests.every((t) => t(facts, c.seq))) {
        records.push({ seq: c.seq, recorded: c.recorded, facts });
        if (records.length >= want) break;
      }
    }
    scanned += candidates.length;
    if (candidates.length < pageSize) break;
    after = candidates[candidates.length - 1].seq;
    // Reading the trail is synchronous: other requests get their turn between pages.
    await new Promise((resolve) => setImmediate(resolve));
  }
  return { records };
}
