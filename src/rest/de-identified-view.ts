import { randomUUID } from 'node:crypto';
import type { FhirRequest, FhirResponse, RestContext } from './context.ts';
import type { Interaction } from '../access/interaction.ts';
import type { Pseudonyms } from '../access/pseudonyms.ts';
import { deIdentify, reachesIdentifier, researcherMaySearch } from '../access/de-identification.ts';
import { searchParam } from '../fhir/search/params.ts';
import { FhirError, notFound } from '../fhir/outcome.ts';

/**
 * The de-identified view (researchers): what they send speaks in pseudonyms and is translated to
 * real ids before the interaction runs; what leaves is de-identified (access/de-identification.ts)
 * with every id pseudonymised, links rebuilt from the researcher's own query, and no header or
 * message that would carry a real id, a version or an exact time. Only reads and type searches
 * (cohort queries, `_summary=count` included) are served on it.
 */
export async function onDeIdentifiedView(
  ctx: RestContext, req: FhirRequest, interaction: Interaction, run: (ctx: RestContext, req: FhirRequest) => Promise<FhirResponse>,
): Promise<FhirResponse> {
  const pseudonyms = ctx.pseudonyms;
  if (!pseudonyms) throw new FhirError(403, 'Access denied: this server has no de-identification key, so the de-identified view is not available', 'forbidden');
  const real = new Map<string, string>();
  let translated: FhirRequest;
  if (interaction.kind === 'read' && req.segments.length === 2) {
    const [type, pseudonym] = req.segments;
    const id = pseudonyms.decode(type, pseudonym);
    if (id === undefined) throw notFound(`${type}/${pseudonym} is not known`);
    real.set(id, pseudonym);
    translated = { ...req, segments: [type, id] };
  } else if (interaction.kind === 'search-type' && req.method === 'GET' && interaction.resourceType && !interaction.compartment) {
    translated = { ...req, query: req.query.map(([name, value]) => [name, translateParam(interaction.resourceType!, name, value, pseudonyms, real)]) };
  } else {
    throw new FhirError(403, 'Access denied: researchers see the de-identified view, which serves reads and GET searches of one resource type only (no compartment searches, history or operations)', 'forbidden');
  }
  let response: FhirResponse;
  try {
    response = await run(ctx, translated);
  } catch (err) {
    throw err instanceof FhirError ? redacted(err, real) : err;
  }
  return deIdentifiedResponse(response, pseudonyms, ctx.config.baseUrl, req);
}

/** A search parameter the view allows, its pseudonyms decoded: `_id` values and references. */
function translateParam(resourceType: string, name: string, value: string, pseudonyms: Pseudonyms, real: Map<string, string>): string {
  const [code, modifier] = name.split(':');
  const param = searchParam(resourceType, code);
  const verdict = researcherMaySearch(name, param?.type ?? 'special', value);
  if (!verdict.ok) throw new FhirError(403, `Access denied: ${verdict.reason}`, 'forbidden');
  const identifying = code === '_sort'
    ? value.split(',').map((k) => k.replace(/^-/, '')).find((k) => reachesIdentifier(searchParam(resourceType, k)?.expression))
    : reachesIdentifier(param?.expression) ? code : undefined;
  if (identifying) throw new FhirError(403, `Access denied: ${identifying} reaches an identifier, which the de-identified view removes`, 'forbidden');
  const decode = (type: string, pseudonym: string) => {
    const id = pseudonyms.decode(type, pseudonym);
    if (id !== undefined) real.set(id, pseudonym);
    return id;
  };
  // What is not a pseudonym of this view matches nothing: a real id must not confirm itself.
  const nothing = `nothing-${randomUUID()}`;
  if (code === '_id') return value.split(',').map((v) => decode(resourceType, v) ?? nothing).join(',');
  if (param?.type !== 'reference' || modifier === 'missing') return value;
  return value.split(',').map((v) => {
    const typed = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})$/.exec(v);
    if (typed) {
      const id = decode(typed[1], typed[2]);
      return `${typed[1]}/${id ?? nothing}`;
    }
    // A bare id: the parameter's modifier or its target types say which type it names.
    const targets = modifier ? [modifier] : param.targets;
    for (const type of targets) {
      const id = decode(type, v);
      if (id !== undefined) return `${type}/${id}`;
    }
    return `${targets[0] ?? 'Patient'}/${nothing}`;
  }).join(',');
}

function deIdentifiedResponse(response: FhirResponse, pseudonyms: Pseudonyms, baseUrl: string, asked: FhirRequest): FhirResponse {
  const body = response.json !== undefined ? JSON.parse(response.json) as Record<string, unknown> : response.resource as Record<string, unknown> | undefined;
  const headers = { ...response.headers };
  // Versions and exact times are not part of the view; locations carry real ids.
  for (const h of ['etag', 'last-modified', 'location', 'content-location']) delete headers[h];
  if (!body) return { ...response, headers };
  const out = deIdentify(body, pseudonyms);
  if (out.resourceType === 'Bundle') {
    for (const entry of (out.entry ?? []) as { fullUrl?: string }[]) {
      if (entry.fullUrl) entry.fullUrl = `${baseUrl}/${entry.fullUrl}`;
    }
    if (Array.isArray(out.link)) out.link = (out.link as { relation: string; url: string }[]).map((l) => ({ relation: l.relation, url: askedLink(l.url, asked) }));
  }
  const { json: _json, resource: _resource, ...rest } = response;
  return { ...rest, headers, json: JSON.stringify(out) };
}

/** A paging link in the researcher's terms: their query (pseudonyms and all), with the page position the server chose. */
function askedLink(url: string, asked: FhirRequest): string {
  const generated = new URL(url);
  const params = new URLSearchParams(asked.query.filter(([name]) => !['_count', '_cursor', '_offset'].includes(name)));
  for (const name of ['_count', '_cursor', '_offset']) {
    const v = generated.searchParams.get(name);
    if (v !== null) params.set(name, v);
  }
  return `${generated.origin}${generated.pathname}?${params}`;
}

/** The same error, with the real ids it may name replaced by the researcher's pseudonyms. */
function redacted(err: FhirError, real: Map<string, string>): FhirError {
  if (real.size === 0) return err;
  const hide = (text: string | undefined) => {
    if (text === undefined) return text;
    let out = text;
    for (const [id, pseudonym] of real) out = out.split(id).join(pseudonym);
    return out;
  };
  const issues = err.issues.map((i) => ({ ...i, ...(i.diagnostics !== undefined ? { diagnostics: hide(i.diagnostics) } : {}) }));
  return new FhirError(err.status, issues);
}
