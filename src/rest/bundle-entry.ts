import type { BundleEntry } from '../fhir/types.ts';
import type { FhirRequest, FhirResponse } from './context.ts';
import { badRequest, FhirError, operationOutcome } from '../fhir/outcome.ts';

const methods = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']);

/** A Bundle entry's request as a FhirRequest; its URL is relative to the base (or absolute under it). */
export function entryRequest(entry: BundleEntry, index: number, baseUrl: string): FhirRequest {
  const r = entry.request;
  const where = `Bundle.entry[${index}].request`;
  if (!r || typeof r !== 'object') throw badRequest(`Entry ${index} has no request`, [where]);
  if (typeof r.method !== 'string' || !methods.has(r.method)) throw badRequest(`Entry ${index} has an invalid request.method`, [`${where}.method`]);
  if (typeof r.url !== 'string' || r.url === '') throw badRequest(`Entry ${index} has no request.url`, [`${where}.url`]);
  let url = r.url.startsWith(baseUrl + '/') ? r.url.slice(baseUrl.length + 1) : r.url;
  if (/^[a-z]+:/i.test(url)) throw badRequest(`Entry ${index}: request.url must be relative to this server (got ${r.url})`, [`${where}.url`]);
  url = url.replace(/^\//, '');
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const queryString = q < 0 ? '' : url.slice(q + 1);
  let segments: string[];
  try {
    segments = path === '' ? [] : path.split('/').map(decodeURIComponent);
  } catch {
    throw badRequest(`Entry ${index}: request.url is not a valid URL`, [`${where}.url`]);
  }
  const resource = entry.resource;
  const isPatch = r.method === 'PATCH';
  return {
    method: r.method,
    segments,
    query: [...new URLSearchParams(queryString)],
    queryString,
    ifMatch: r.ifMatch,
    ifNoneMatch: r.ifNoneMatch,
    ifModifiedSince: r.ifModifiedSince,
    ifNoneExist: r.ifNoneExist,
    // In a Bundle a patch can only travel as a resource: Binary holding JSON Patch, or Parameters.
    contentType: isPatch && resource?.resourceType === 'Binary' ? 'application/json-patch+json' : 'application/fhir+json',
    body: isPatch && resource?.resourceType === 'Binary' ? binaryJson(resource, index) : resource,
  };
}

function binaryJson(resource: Record<string, unknown>, index: number): unknown {
  try {
    return JSON.parse(Buffer.from(String(resource.data ?? ''), 'base64').toString('utf8'));
  } catch {
    throw badRequest(`Entry ${index}: the Binary of a JSON Patch must hold the patch document as base64 JSON`);
  }
}

const reasons: Record<number, string> = {
  200: 'OK', 201: 'Created', 204: 'No Content', 304: 'Not Modified', 400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found',
  405: 'Method Not Allowed', 409: 'Conflict', 410: 'Gone', 412: 'Precondition Failed', 413: 'Payload Too Large',
  415: 'Unsupported Media Type', 422: 'Unprocessable Entity', 500: 'Internal Server Error',
};

export function statusLine(status: number): string {
  return `${status} ${reasons[status] ?? ''}`.trim();
}

/** The response part of an entry of a batch-response or transaction-response. */
export function entryResponse(res: FhirResponse): { fullUrl?: string; resourceJson?: string; response: Record<string, unknown> } {
  const response: Record<string, unknown> = { status: statusLine(res.status) };
  if (res.headers.location) response.location = res.headers.location;
  if (res.headers.etag) response.etag = res.headers.etag;
  if (res.headers['last-modified']) response.lastModified = new Date(res.headers['last-modified']).toISOString();
  let resourceJson = res.json ?? (res.resource ? JSON.stringify(res.resource) : undefined);
  if (res.resource?.resourceType === 'OperationOutcome') {
    response.outcome = res.resource;
    resourceJson = undefined;
  }
  const fullUrl = res.headers.location?.replace(/\/_history\/[^/]+$/, '');
  return { fullUrl, resourceJson, response };
}

export function errorResponse(err: unknown): { response: Record<string, unknown> } {
  const e = err instanceof FhirError ? err : new FhirError(500, 'Internal error processing this entry', 'exception');
  return { response: { status: statusLine(e.status), outcome: operationOutcome(e.issues) } };
}
