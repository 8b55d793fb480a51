import jsonpatch from 'fast-json-patch';
import type { Operation } from 'fast-json-patch';
import { FhirError, badRequest, issue, unprocessable } from '../outcome.ts';
import type { Resource } from '../types.ts';

/**
 * The FHIR patch interaction in `application/json-patch+json` (RFC 6902) form. The patch document
 * is checked here, at the boundary, so that anything structurally wrong is a 400 naming the
 * operation, and anything that only fails against this resource (missing path, failed `test`)
 * is a 422, as FHIR's http.html#patch asks for patches that cannot be applied.
 */

const OPS = new Set(['add', 'remove', 'replace', 'move', 'copy', 'test']);
const NEEDS_VALUE = new Set(['add', 'replace', 'test']);
const NEEDS_FROM = new Set(['move', 'copy']);
/** Elements the server assigns; a client may `test` them but never change them. */
const SERVER_OWNED = new Set(['/id', '/resourceType']);

export function applyJsonPatch(resource: Resource, patch: unknown): Resource {
  try {
    return apply(resource, patch);
  } catch (err) {
    // Cloning and comparing recurse; absurdly deep values end in a stack overflow, not a 500.
    if (err instanceof RangeError) throw badRequest('JSON Patch document is nested too deeply');
    throw err;
  }
}

function apply(resource: Resource, patch: unknown): Resource {
  const ops = parseJsonPatch(patch);
  let doc: unknown = structuredClone(resource);
  for (const [index, op] of ops.entries()) {
    try {
      doc = jsonpatch.applyOperation(doc, op, true, true, true, index).newDocument;
    } catch (err) {
      throw translateError(err, op, index);
    }
  }
  checkIdentity(resource, doc);
  return doc as Resource;
}

/** Validates the document's shape and returns fresh operations (the library applies values by reference). */
export function parseJsonPatch(patch: unknown): Operation[] {
  if (!Array.isArray(patch)) throw badRequest('JSON Patch document must be a JSON array of operations');
  return patch.map((raw, index) => parseOperation(raw, index));
}

function parseOperation(raw: unknown, index: number): Operation {
  const where = `JSON Patch operation ${index}`;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw badRequest(`${where} must be a JSON object`);
  const o = raw as Record<string, unknown>;
  if (typeof o.op !== 'string' || !OPS.has(o.op)) {
    throw badRequest(`${where}: "op" must be one of add, remove, replace, move, copy, test (got ${describe(o.op)})`);
  }
  const op = o.op;
  const path = checkPointer(o.path, `${where} (${op}): "path"`);
  const out: Record<string, unknown> = { op, path };
  if (NEEDS_FROM.has(op)) {
    const from = checkPointer(o.from, `${where} (${op}): "from"`);
    if (op === 'move' && path.startsWith(from + '/')) {
      throw badRequest(`${where} (move): "from" ${from} is a parent of "path" ${path}; a value cannot be moved into itself`);
    }
    out.from = from;
  }
  if (NEEDS_VALUE.has(op)) {
    if (!('value' in o) || o.value === undefined) throw badRequest(`${where} (${op}): "value" is required`);
    out.value = structuredClone(o.value);
  }
  if (op !== 'test') {
    const touched = op === 'move' ? [path, out.from as string] : [path];
    const owned = touched.find((p) => SERVER_OWNED.has(p));
    if (owned) {
      throw new FhirError(422, [issue('error', 'business-rule', `${where} (${op}) would change ${owned}, which the server assigns and a patch cannot modify`)]);
    }
  }
  return out as unknown as Operation;
}

/** RFC 6901 syntax, plus a refusal of names that reach JavaScript's object machinery. */
function checkPointer(value: unknown, what: string): string {
  if (typeof value !== 'string') throw badRequest(`${what} must be a string JSON Pointer (got ${describe(value)})`);
  if (value === '') return value;
  if (!value.startsWith('/')) throw badRequest(`${what} "${value}" must be empty or start with "/"`);
  if (/~(?![01])/.test(value)) throw badRequest(`${what} "${value}" has an invalid escape: "~" must be followed by 0 or 1`);
  for (const token of value.slice(1).split('/')) {
    const name = token.replace(/~1/g, '/').replace(/~0/g, '~');
    if (name in Object.prototype || name === 'prototype') {
      throw badRequest(`${what} "${value}" uses the reserved name "${name}"`);
    }
  }
  return value;
}

function translateError(err: unknown, op: Operation, index: number): FhirError {
  const where = `JSON Patch operation ${index} (${op.op} ${op.path})`;
  if (err instanceof jsonpatch.JsonPatchError) {
    switch (err.name) {
      case 'TEST_OPERATION_FAILED':
        return unprocessable([issue('error', 'processing', `${where} failed: the value at the path does not equal the given value`)]);
      case 'OPERATION_PATH_UNRESOLVABLE':
      case 'OPERATION_PATH_CANNOT_ADD':
        return unprocessable([issue('error', 'processing', `${where}: the path does not exist in the resource`)]);
      case 'OPERATION_FROM_UNRESOLVABLE':
        return unprocessable([issue('error', 'processing', `${where}: "from" ${'from' in op ? op.from : ''} does not exist in the resource`)]);
      case 'OPERATION_PATH_ILLEGAL_ARRAY_INDEX':
        return unprocessable([issue('error', 'processing', `${where}: the path addresses a list with something other than an index or "-"`)]);
      case 'OPERATION_VALUE_OUT_OF_BOUNDS':
        return unprocessable([issue('error', 'processing', `${where}: the index is past the end of the list`)]);
      default:
        return badRequest(`${where}: ${err.message}`);
    }
  }
  // The library signals prototype access with a TypeError; the pointer check should make this unreachable.
  if (err instanceof TypeError) return badRequest(`${where}: the path is not allowed`);
  throw err;
}

/** Root-level operations ("" path) can replace the whole document, so identity is checked on the result too. */
function checkIdentity(before: Resource, after: unknown): void {
  const ok = typeof after === 'object' && after !== null && !Array.isArray(after)
    && (after as Resource).resourceType === before.resourceType && (after as Resource).id === before.id;
  if (!ok) {
    throw new FhirError(422, [issue('error', 'business-rule',
      `JSON Patch result must still be the ${before.resourceType}${before.id ? `/${before.id}` : ''} resource: resourceType and id cannot be changed`)]);
  }
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  return JSON.stringify(v)?.slice(0, 60) ?? typeof v;
}
