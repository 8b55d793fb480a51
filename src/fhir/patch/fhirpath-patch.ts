import fhirpath from 'fhirpath';
import { FhirError, issue } from '../outcome.ts';
import type { Resource } from '../types.ts';
import {
  PatchProblem, elementObject, insertAt, isPlainObject, moveWithin, removeAt, select, slotOf, writeAt,
} from './fhirpath-tree.ts';
import type { FpNode, Json } from './fhirpath-tree.ts';
import { buildValue, childElement, choiceBase, declaredType } from './fhirpath-value.ts';

/**
 * The FHIR patch interaction in FHIRPath Patch form (R4 fhirpatch.html): a Parameters resource
 * with one `operation` parameter per change. Operations apply in order to a copy of the resource;
 * the first that fails aborts the whole patch. A malformed Parameters is a 400; an operation that
 * does not fit this resource (path matching nothing or several elements, wrong type, index out of
 * range) is a 422. Every diagnostic names the operation, counted from 0 like Parameters.parameter.
 */

type OpType = 'add' | 'insert' | 'delete' | 'replace' | 'move';

export interface FhirPathPatchOperation {
  index: number;
  type: OpType;
  /** As the client wrote it, for messages. */
  path: string;
  /** What is evaluated (see quoteKeywordMembers). */
  expression: string;
  name?: string;
  value?: Json;
  at?: number;
  source?: number;
  destination?: number;
}

/** Which parts each operation takes; all are required. */
const PARTS: Record<OpType, string[]> = {
  add: ['type', 'path', 'name', 'value'],
  insert: ['type', 'path', 'value', 'index'],
  delete: ['type', 'path'],
  replace: ['type', 'path', 'value'],
  move: ['type', 'path', 'source', 'destination'],
};

export function applyFhirPathPatch(resource: Resource, parameters: unknown): Resource {
  const operations = parseFhirPathPatch(parameters);
  const doc = structuredClone(resource);
  for (const op of operations) {
    try {
      perform(doc, op);
    } catch (err) {
      if (err instanceof PatchProblem) throw opError(err.status, op.index, err.message, op);
      throw err;
    }
    if (doc.id !== resource.id) {
      throw new FhirError(422, [issue('error', 'business-rule', `${describeOp(op)}: the resource id is assigned by the server and cannot be patched`, [`Parameters.parameter[${op.index}]`])]);
    }
  }
  return doc;
}

export function parseFhirPathPatch(parameters: unknown): FhirPathPatchOperation[] {
  if (!isPlainObject(parameters) || parameters.resourceType !== 'Parameters') {
    throw new FhirError(400, [issue('error', 'invalid', 'FHIRPath Patch body must be a Parameters resource')]);
  }
  const list = parameters.parameter ?? [];
  if (!Array.isArray(list)) throw new FhirError(400, [issue('error', 'invalid', 'Parameters.parameter must be a list')]);
  return list.map((p, index) => parseOperation(p, index));
}

function parseOperation(param: unknown, index: number): FhirPathPatchOperation {
  const fail = (msg: string) => opError(400, index, msg);
  if (!isPlainObject(param) || param.name !== 'operation') throw fail('each parameter must be named "operation"');
  const rawParts = (param as Json).part;
  if (!Array.isArray(rawParts)) throw fail('operation has no parts');
  const parts = new Map<string, Json>();
  for (const p of rawParts) {
    if (!isPlainObject(p) || typeof p.name !== 'string') throw fail('every part must have a name');
    if (parts.has(p.name)) throw fail(`part "${p.name}" is given more than once`);
    parts.set(p.name, p);
  }
  const type = parts.get('type')?.valueCode;
  if (typeof type !== 'string' || !Object.hasOwn(PARTS, type)) {
    throw fail(`part "type" must be a valueCode of add | insert | delete | replace | move (got ${JSON.stringify(type) ?? 'nothing'})`);
  }
  const op = type as OpType;
  for (const name of parts.keys()) if (!PARTS[op].includes(name)) throw fail(`part "${name}" is not used by ${op}`);
  for (const name of PARTS[op]) if (!parts.has(name)) throw fail(`${op} needs the "${name}" part`);

  const path = parts.get('path')?.valueString;
  if (typeof path !== 'string' || path.trim() === '') throw fail('part "path" must be a non-empty valueString');
  const expression = quoteKeywordMembers(path);
  try {
    fhirpath.parse(expression);
  } catch (err) {
    throw fail(`path "${path}" is not valid FHIRPath: ${err instanceof Error ? err.message : String(err)}`);
  }
  const out: FhirPathPatchOperation = { index, type: op, path, expression };
  if (parts.has('name')) {
    const name = parts.get('name')?.valueString;
    if (typeof name !== 'string' || name === '') throw fail('part "name" must be a non-empty valueString');
    out.name = name;
  }
  if (parts.has('value')) out.value = parts.get('value');
  for (const [part, field] of [['index', 'at'], ['source', 'source'], ['destination', 'destination']] as const) {
    if (!parts.has(part)) continue;
    const n = parts.get(part)?.valueInteger;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw fail(`part "${part}" must be a valueInteger of 0 or more`);
    out[field] = n;
  }
  if ((op === 'insert' || op === 'move') && !splitListPath(expression)) {
    throw fail(`${op} needs a path that ends with the name of a list element, e.g. Patient.identifier (got "${path}")`);
  }
  return out;
}

function perform(doc: Resource, op: FhirPathPatchOperation): void {
  switch (op.type) {
    case 'add': {
      const node = exactlyOne(select(doc, op.expression), op);
      if (!node.path) throw new PatchProblem(422, 'the path selects an element the R4 model does not describe');
      const value = op.value as Json;
      const info = childElement(node.path, op.name as string, declaredType(value));
      const built = buildValue(value, info, 'value');
      const target = elementObject(node);
      if (info.repeating) {
        const list = target[info.key];
        insertAt(target, info.key, Array.isArray(list) ? list.length : 0, built);
        return;
      }
      // For a choice element any of its typed names counts as "already there".
      const names = info.choices ? info.choices.map((suffix) => info.base + suffix) : [info.key];
      const taken = names.find((k) => Object.hasOwn(target, k) || Object.hasOwn(target, '_' + k));
      if (taken) throw new PatchProblem(422, `"${taken}" already has a value and does not repeat; use replace`);
      target[info.key] = built.value;
      if (built.extras) target['_' + info.key] = built.extras;
      return;
    }
    case 'insert':
    case 'move': {
      const { container, name } = splitListPath(op.expression) as { container: string; name: string };
      const node = exactlyOne(container === '' ? select(doc, '$this') : select(doc, container), op, container || op.path);
      if (!node.path) throw new PatchProblem(422, 'the path selects an element the R4 model does not describe');
      const info = childElement(node.path, name, op.value ? declaredType(op.value) : undefined);
      if (!info.repeating) throw new PatchProblem(422, `"${name}" is not a list in ${node.path}`);
      if (op.type === 'move') {
        moveWithin(elementObject(node), info.key, op.source as number, op.destination as number);
        return;
      }
      const built = buildValue(op.value as Json, info, 'value');
      insertAt(elementObject(node), info.key, op.at as number, built);
      return;
    }
    case 'delete': {
      const nodes = select(doc, op.expression);
      if (nodes.length === 0) return;
      const node = exactlyOne(nodes, op);
      removeAt(slotOf(node));
      return;
    }
    case 'replace': {
      const node = exactlyOne(select(doc, op.expression), op);
      const slot = slotOf(node);
      const value = op.value as Json;
      const ownerPath = slot.ownerNode.path;
      if (!ownerPath) {
        writeAt(slot, slot.key, buildValue(value, {}, 'value'));
        return;
      }
      // A choice element may change type (deceasedBoolean -> deceasedDateTime), which changes its JSON name.
      // Nested parts declare no type, so they keep the current one.
      const type = declaredType(value);
      const info = childElement(ownerPath, type ? choiceBase(ownerPath, slot.key) ?? slot.key : slot.key, type);
      writeAt(slot, info.key, buildValue(value, info, 'value'));
      return;
    }
  }
}

const GERUND: Record<OpType, string> = { add: 'adding', insert: 'inserting', delete: 'deleting', replace: 'replacing', move: 'moving' };

function exactlyOne(nodes: FpNode[], op: FhirPathPatchOperation, path = op.path): FpNode {
  if (nodes.length === 0) throw new PatchProblem(422, `no content found at ${path} when ${GERUND[op.type]}`);
  if (nodes.length > 1) throw new PatchProblem(422, `${path} matches ${nodes.length} elements; ${op.type} needs exactly one`);
  return nodes[0];
}

/**
 * `Patient.name.where(use = 'official').given` -> container `Patient.name.where(use = 'official')`,
 * list `given`. Insert and move address a list, which FHIRPath flattens into its items, so the
 * list is found as a named child of one container element (an empty list still has a container).
 */
export function splitListPath(path: string): { container: string; name: string } | undefined {
  let depth = 0;
  let quote: string | null = null;
  let lastDot = -1;
  for (let i = 0; i < path.length; i++) {
    const c = path[i];
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = null;
    } else if (c === "'" || c === '`') quote = c;
    else if ('([{'.includes(c)) depth++;
    else if (')]}'.includes(c)) depth--;
    else if (c === '.' && depth === 0) lastDot = i;
  }
  const m = /^(?:([A-Za-z_][A-Za-z0-9_]*)|`([A-Za-z_][A-Za-z0-9_]*)`)$/.exec(path.slice(lastDot + 1).trim());
  if (!m) return undefined;
  return { container: lastDot < 0 ? '' : path.slice(0, lastDot).trim(), name: m[1] ?? m[2] };
}

/**
 * `Narrative.div` is an element, but `div` (like `mod`) is also a FHIRPath operator, so the grammar
 * only accepts it quoted. Clients (and the official FHIR patch tests) write `Patient.text.div`;
 * after a `.` it can only be a member name, so it is quoted for the parser.
 */
function quoteKeywordMembers(path: string): string {
  let out = '';
  let quote: string | null = null;
  for (let i = 0; i < path.length; i++) {
    const c = path[i];
    out += c;
    if (quote) {
      if (c === '\\') out += path[++i] ?? '';
      else if (c === quote) quote = null;
      continue;
    }
    if (c === "'" || c === '`') quote = c;
    const m = c === '.' ? /^(div|mod)(?![A-Za-z0-9_])/.exec(path.slice(i + 1)) : null;
    if (m) {
      out += `\`${m[1]}\``;
      i += m[1].length;
    }
  }
  return out;
}

function describeOp(op: FhirPathPatchOperation): string {
  return `FHIRPath Patch operation ${op.index} (${op.type} ${op.path})`;
}

function opError(status: number, index: number, message: string, op?: FhirPathPatchOperation): FhirError {
  const where = op ? describeOp(op) : `FHIRPath Patch operation ${index}`;
  const code = status === 400 ? 'invalid' : 'processing';
  return new FhirError(status, [issue('error', code, `${where}: ${message}`, [`Parameters.parameter[${index}]`])]);
}
