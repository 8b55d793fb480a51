import type { FhirRequest, FhirResponse, RestContext } from './context.ts';
import type { HistoryEntry } from '../store/store.ts';
import { serializeBundle, type RawEntry } from '../fhir/bundle.ts';
import { parseDateRange } from '../fhir/datetime.ts';
import { badRequest } from '../fhir/outcome.ts';
import { etag } from './headers.ts';
import { statusLine } from './bundle-entry.ts';

/**
 * history for an instance, a type or the whole system (http.html#history), newest first. Page links
 * carry `_until`, the time of the first page, so later pages do not shift when writes arrive.
 */
export async function history(ctx: RestContext, req: FhirRequest, resourceType?: string, id?: string): Promise<FhirResponse> {
  const q = parseHistoryParams(req, ctx.config.history);
  const until = q.until ?? new Date().toISOString();
  const page = await ctx.reader.history({ resourceType, id, since: q.since, at: q.at, until, count: q.count, offset: q.offset });
  const base = ctx.config.baseUrl;
  const path = [resourceType, id, '_history'].filter(Boolean).join('/');
  const link = (offset: number) => {
    const p = new URLSearchParams();
    if (q.since) p.set('_since', q.since);
    if (q.at) p.set('_at', q.at);
    p.set('_count', String(q.count));
    p.set('_until', until);
    p.set('_offset', String(offset));
    return `${base}/${path}?${p}`;
  };
  const links = [{ relation: 'self', url: link(q.offset) }];
  if (q.offset + q.count < page.total) links.push({ relation: 'next', url: link(q.offset + q.count) });
  if (q.offset > 0) links.push({ relation: 'previous', url: link(Math.max(0, q.offset - q.count)) });
  const json = serializeBundle(
    { resourceType: 'Bundle', type: 'history', total: page.total, link: links, timestamp: new Date().toISOString() },
    page.entries.map((e) => historyEntry(base, e)),
  );
  return { status: 200, headers: {}, json, entities: page.entries.map((e) => `${e.resourceType}/${e.id}/_history/${e.versionId}`) };
}

function historyEntry(base: string, e: HistoryEntry): RawEntry {
  const url = e.method === 'POST' ? e.resourceType : `${e.resourceType}/${e.id}`;
  const status = statusLine(e.method === 'POST' || (e.versionId === '1' && !e.deleted) ? 201 : 200);
  return {
    fullUrl: `${base}/${e.resourceType}/${e.id}`,
    resourceJson: e.json,
    rest: {
      request: { method: e.method === 'PATCH' ? 'PATCH' : e.method, url },
      response: { status, etag: etag(e.versionId), lastModified: e.lastUpdated },
    },
  };
}

interface HistoryParams {
  since?: string;
  at?: string;
  until?: string;
  count: number;
  offset: number;
}

function parseHistoryParams(req: FhirRequest, limits: { defaultCount: number; maxCount: number }): HistoryParams {
  const out: HistoryParams = { count: limits.defaultCount, offset: 0 };
  for (const [name, value] of req.query) {
    switch (name) {
      case '_since':
      case '_until': {
        const range = parseDateRange(value);
        if (!range || !value.includes('T')) throw badRequest(`${name} must be an instant such as 2024-01-01T00:00:00Z (got "${value}")`);
        out[name === '_since' ? 'since' : 'until'] = new Date(range.start).toISOString();
        break;
      }
      case '_at':
        if (!parseDateRange(value)) throw badRequest(`_at must be a date or dateTime (got "${value}")`);
        out.at = value;
        break;
      case '_count':
        out.count = Math.min(nonNegative(name, value), limits.maxCount);
        break;
      case '_offset':
        out.offset = nonNegative(name, value);
        break;
      case '_format':
      case '_pretty':
        break;
      default:
        throw badRequest(`Unknown parameter "${name}" for history; supported: _since, _at, _count`);
    }
  }
  return out;
}

function nonNegative(name: string, value: string): number {
  if (!/^\d{1,9}$/.test(value)) throw badRequest(`${name} must be a non-negative integer (got "${value}")`);
  return Number(value);
}
