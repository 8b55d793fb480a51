import type { FhirRequest, FhirResponse, RestContext } from './context.ts';
import type { Interaction } from '../access/interaction.ts';
import { isResourceType } from '../fhir/definitions.ts';
import { FhirError, badRequest, notFound } from '../fhir/outcome.ts';
import { isValidId } from './resource-body.ts';
import { read, vread } from './read.ts';
import { create } from './create.ts';
import { update, conditionalUpdate } from './update.ts';
import { remove, conditionalRemove } from './delete.ts';
import { patch, conditionalPatch } from './patch.ts';
import { history } from './history.ts';
import { searchType, searchSystem, searchCompartment } from './search.ts';
import { capabilities } from './capabilities.ts';
import { validateOperation } from './validate-operation.ts';
import { everything } from './everything.ts';
import { bundle } from './bundle.ts';
import { readAuditEvent, searchAuditTrail } from './audit-trail.ts';
import { accountingOfDisclosures } from './accounting.ts';
import { verifySignature, verifyOperation } from './verify-signature.ts';
import { isOwnOperationDefinition, readOwnOperationDefinition } from './operation-definitions.ts';
import { accountingOperation } from '../access/audit-trail-access.ts';

export interface Route {
  interaction: Interaction;
  execute(ctx: RestContext, req: FhirRequest): Promise<FhirResponse>;
}

/** Maps method and path (http.html) to the interaction and the code that performs it. */
export function route(req: FhirRequest): Route {
  const s = req.segments;
  const m = req.method === 'HEAD' ? 'GET' : req.method;
  const query = req.queryString || undefined;
  if (s.length === 0) {
    if (m === 'POST') return { interaction: { kind: bundleKind(req.body) }, execute: bundle };
    if (m === 'GET') return { interaction: { kind: 'search-system', query }, execute: searchSystem };
    throw methodNotAllowed(m, 'the base URL');
  }
  if (s.length === 1 && s[0] === 'metadata') {
    if (m !== 'GET') throw methodNotAllowed(m, 'metadata');
    return { interaction: { kind: 'capabilities' }, execute: capabilities };
  }
  if (s.length === 1 && s[0] === '_history') {
    if (m !== 'GET') throw methodNotAllowed(m, '_history');
    return { interaction: { kind: 'history-system', query }, execute: (ctx, r) => history(ctx, r) };
  }
  const type = s[0];
  if (!isResourceType(type)) throw notFound(`Unknown resource type "${type}"`);
  if (type === 'AuditEvent') return auditTrailRoute(m, s, query);
  if (s.length === 1) return typeLevel(req, m, type, query);
  const second = s[1];
  if (second === '_search' && s.length === 2) {
    if (m !== 'POST') throw methodNotAllowed(m, `${type}/_search`);
    return { interaction: { kind: 'search-type', resourceType: type, query }, execute: (ctx, r) => searchType(ctx, r, type) };
  }
  if (second === '_history' && s.length === 2) {
    if (m !== 'GET') throw methodNotAllowed(m, `${type}/_history`);
    return { interaction: { kind: 'history-type', resourceType: type, query }, execute: (ctx, r) => history(ctx, r, type) };
  }
  if (second === '$validate' && s.length === 2) {
    if (m !== 'POST') throw methodNotAllowed(m, `${type}/$validate`);
    return { interaction: { kind: 'operation', operation: 'validate', resourceType: type }, execute: (ctx, r) => validateOperation(ctx, r, type) };
  }
  if (second.startsWith('$')) throw new FhirError(400, `The operation ${second} is not supported on ${type}`, 'not-supported');
  const id = second;
  if (!isValidId(id)) throw badRequest(`"${id}" is not a valid resource id (1-64 of A-Z a-z 0-9 - .)`);
  if (s.length === 2) return instanceLevel(m, type, id);
  if (s[2] === '_history') {
    if (m !== 'GET') throw methodNotAllowed(m, `${type}/${id}/_history`);
    if (s.length === 3) return { interaction: { kind: 'history-instance', resourceType: type, id, query }, execute: (ctx, r) => history(ctx, r, type, id) };
    if (s.length === 4) {
      const vid = s[3];
      return { interaction: { kind: 'vread', resourceType: type, id, versionId: vid }, execute: (ctx, r) => vread(ctx, r, type, id, vid) };
    }
  }
  if (s[2] === `$${accountingOperation}` && s.length === 3 && type === 'Patient') {
    if (m !== 'GET') throw methodNotAllowed(m, `Patient/${id}/$${accountingOperation}`);
    // Decided as the search of the trail it is, within the patient's compartment (access/audit-trail-access.ts).
    return {
      interaction: { kind: 'search-type', resourceType: 'AuditEvent', operation: accountingOperation, compartment: { type: 'Patient', id }, query },
      execute: (ctx, r) => accountingOfDisclosures(ctx, r, id),
    };
  }
  if (s[2] === 'AuditEvent' && (s.length === 3 || (s.length === 4 && s[3] === '_search')) && type === 'Patient') {
    if (m !== (s.length === 4 ? 'POST' : 'GET')) throw methodNotAllowed(m, `Patient/${id}/AuditEvent`);
    return {
      interaction: { kind: 'search-type', resourceType: 'AuditEvent', query, compartment: { type: 'Patient', id } },
      execute: (ctx, r) => searchAuditTrail(ctx, r, [['patient', `Patient/${id}`]]),
    };
  }
  if (s.length === 3 || (s.length === 4 && s[3] === '_search')) {
    const compartment = compartmentRoute(m, type, id, s[2], s.length === 4, query);
    if (compartment) return compartment;
  }
  if (s[2] === '$everything' && s.length === 3 && type === 'Patient') {
    if (m !== 'GET') throw methodNotAllowed(m, `Patient/${id}/$everything`);
    // Decided as what it is: a search of every type in the patient's compartment.
    return { interaction: { kind: 'search-system', query, operation: 'everything', compartment: { type: 'Patient', id } }, execute: (ctx, r) => everything(ctx, r, id) };
  }
  if (s[2] === `$${verifyOperation}` && s.length === 3 && type === 'Provenance') {
    if (m !== 'GET' && m !== 'POST') throw methodNotAllowed(m, `Provenance/${id}/$${verifyOperation}`);
    return { interaction: { kind: 'operation', operation: verifyOperation, resourceType: 'Provenance', id }, execute: (ctx, r) => verifySignature(ctx, r, id) };
  }
  if (s[2] === '$validate' && s.length === 3) {
    if (m !== 'POST') throw methodNotAllowed(m, `${type}/${id}/$validate`);
    return { interaction: { kind: 'operation', operation: 'validate', resourceType: type, id }, execute: (ctx, r) => validateOperation(ctx, r, type, id) };
  }
  throw notFound(`No FHIR interaction is served at /${s.join('/')}`);
}

/**
 * AuditEvent is the audit trail, not a stored resource: searched and read, never written through
 * the API (the server alone appends to it, and nothing rewrites it).
 */
function auditTrailRoute(m: string, s: string[], query: string | undefined): Route {
  const at = s.slice(0, 2).join('/');
  if (s.length === 1 || (s.length === 2 && s[1] === '_search')) {
    if (m !== (s.length === 2 ? 'POST' : 'GET')) throw appendOnly(m, at);
    return { interaction: { kind: 'search-type', resourceType: 'AuditEvent', query }, execute: (ctx, r) => searchAuditTrail(ctx, r) };
  }
  const id = s[1];
  if (m !== 'GET') throw appendOnly(m, `AuditEvent/${id}`);
  if (!isValidId(id)) throw new FhirError(400, `Only search, read and vread are served on the audit trail (AuditEvent)`, 'not-supported');
  if (s.length === 2) return { interaction: { kind: 'read', resourceType: 'AuditEvent', id }, execute: (ctx) => readAuditEvent(ctx, id) };
  if (s.length === 4 && s[2] === '_history') {
    const vid = s[3];
    return { interaction: { kind: 'vread', resourceType: 'AuditEvent', id, versionId: vid }, execute: (ctx) => readAuditEvent(ctx, id, vid) };
  }
  throw new FhirError(400, `Only search, read and vread are served on the audit trail (AuditEvent)`, 'not-supported');
}

function appendOnly(method: string, what: string): FhirError {
  return new FhirError(405, `${method} is not allowed on ${what}: the audit trail is searched and read; the server alone appends to it`, 'not-supported');
}

function typeLevel(req: FhirRequest, m: string, type: string, query: string | undefined): Route {
  switch (m) {
    case 'GET':
      return { interaction: { kind: 'search-type', resourceType: type, query }, execute: (ctx, r) => searchType(ctx, r, type) };
    case 'POST':
      return { interaction: { kind: 'create', resourceType: type, query: req.ifNoneExist }, execute: (ctx, r) => create(ctx, r, type) };
    case 'PUT':
      requireCriteria(query, 'Conditional update');
      return { interaction: { kind: 'update', resourceType: type, query }, execute: (ctx, r) => conditionalUpdate(ctx, r, type) };
    case 'DELETE':
      requireCriteria(query, 'Conditional delete');
      return { interaction: { kind: 'delete', resourceType: type, query }, execute: (ctx, r) => conditionalRemove(ctx, r, type) };
    case 'PATCH':
      requireCriteria(query, 'Conditional patch');
      return { interaction: { kind: 'patch', resourceType: type, query }, execute: (ctx, r) => conditionalPatch(ctx, r, type) };
    default:
      throw methodNotAllowed(m, type);
  }
}

function instanceLevel(m: string, type: string, id: string): Route {
  const at = { resourceType: type, id };
  if (m === 'GET' && type === 'OperationDefinition' && isOwnOperationDefinition(id)) {
    return { interaction: { kind: 'read', ...at }, execute: (ctx) => readOwnOperationDefinition(ctx, id) };
  }
  switch (m) {
    case 'GET': return { interaction: { kind: 'read', ...at }, execute: (ctx, r) => read(ctx, r, type, id) };
    case 'PUT': return { interaction: { kind: 'update', ...at }, execute: (ctx, r) => update(ctx, r, type, id) };
    case 'DELETE': return { interaction: { kind: 'delete', ...at }, execute: (ctx, r) => remove(ctx, r, type, id) };
    case 'PATCH': return { interaction: { kind: 'patch', ...at }, execute: (ctx, r) => patch(ctx, r, type, id) };
    default: throw methodNotAllowed(m, `${type}/${id}`);
  }
}

/** `Patient/123/Observation` and `Patient/123/*` (http.html#vsearch); POST with `/_search`. */
function compartmentRoute(m: string, compartmentType: string, id: string, target: string, post: boolean, query: string | undefined): Route | undefined {
  if (target !== '*' && !isResourceType(target)) return undefined;
  if (m !== (post ? 'POST' : 'GET')) throw methodNotAllowed(m, `${compartmentType}/${id}/${target}${post ? '/_search' : ''}`);
  const resourceType = target === '*' ? undefined : target;
  return {
    interaction: { kind: resourceType ? 'search-type' : 'search-system', resourceType, query, compartment: { type: compartmentType, id } },
    execute: (ctx, r) => searchCompartment(ctx, r, compartmentType, id, resourceType),
  };
}

function requireCriteria(query: string | undefined, what: string): void {
  if (!query) throw badRequest(`${what} needs search criteria in the URL, e.g. ?identifier=system|value`);
}

function bundleKind(body: unknown): 'batch' | 'transaction' {
  return (body as { type?: unknown } | undefined)?.type === 'transaction' ? 'transaction' : 'batch';
}

function methodNotAllowed(method: string, what: string): FhirError {
  return new FhirError(405, `${method} is not allowed on ${what}`, 'not-supported');
}
