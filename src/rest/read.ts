import type { RestContext, FhirRequest, FhirResponse } from './context.ts';
import type { StoredResource } from '../store/store.ts';
import { badRequest, gone, notFound } from '../fhir/outcome.ts';
import { readHeaders, versionFromEtag } from './headers.ts';
import { shapeFrom, shapeJson } from './result-shape.ts';

export async function read(ctx: RestContext, req: FhirRequest, resourceType: string, id: string): Promise<FhirResponse> {
  const stored = await ctx.reader.read(resourceType, id);
  return respondWithVersion(ctx, req, stored, `${resourceType}/${id}`);
}

export async function vread(ctx: RestContext, req: FhirRequest, resourceType: string, id: string, versionId: string): Promise<FhirResponse> {
  const stored = await ctx.reader.vread(resourceType, id, versionId);
  return respondWithVersion(ctx, req, stored, `${resourceType}/${id}/_history/${versionId}`);
}

function respondWithVersion(ctx: RestContext, req: FhirRequest, stored: StoredResource | undefined, ref: string): FhirResponse {
  if (!stored) throw notFound(`${ref} is not known`);
  const headers = readHeaders(stored);
  if (stored.deleted) {
    const err = gone(`${ref} was deleted (version ${stored.versionId})`);
    Object.assign(err.headers, { etag: headers.etag, 'last-modified': headers['last-modified'] });
    throw err;
  }
  const entities = [`${stored.resourceType}/${stored.id}/_history/${stored.versionId}`];
  if (notModified(req, stored)) return { status: 304, headers, entities };
  const shape = shapeFrom(req.query);
  if (shape.summary === 'count') throw badRequest('_summary=count applies to searches only');
  return { status: 200, headers, json: shapeJson(stored.json!, shape), entities };
}

/** Conditional read (http.html#cread): If-None-Match wins over If-Modified-Since, as in RFC 9110. */
function notModified(req: FhirRequest, stored: StoredResource): boolean {
  if (req.ifNoneMatch !== undefined) {
    if (req.ifNoneMatch.trim() === '*') return true;
    return req.ifNoneMatch.split(',').some((tag) => versionFromEtag(tag, 'If-None-Match') === stored.versionId);
  }
  if (req.ifModifiedSince !== undefined) {
    const since = Date.parse(req.ifModifiedSince);
    // HTTP dates have second precision; compare at that precision.
    if (!Number.isNaN(since)) return Math.floor(Date.parse(stored.lastUpdated) / 1000) * 1000 <= since;
  }
  return false;
}

