import fhirpath from 'fhirpath';
import r4 from 'fhirpath/fhir-context/r4';
import type { Resource } from '../types.ts';

/**
 * Finding and changing, in a resource's JSON, the elements a FHIRPath expression selects. The
 * fhirpath engine (with `resolveInternalTypes: false`) returns ResourceNodes that keep their parent
 * node, property name and list index; from those we recover the JSON object and key to mutate.
 * FHIR JSON splits primitives in two (`birthDate` and `_birthDate` for its id/extensions, aligned
 * arrays for lists), so every mutation here keeps both halves in step.
 */

export const model = r4;

export type Json = Record<string, unknown>;

/** A problem with one patch operation; the caller adds which operation it was. */
export class PatchProblem extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** The fields of fhirpath's ResourceNode that we rely on. */
export interface FpNode {
  parentResNode: FpNode | null;
  /** Model path of the node's type: `Patient`, `Patient.contact` (backbone), `HumanName`, `date`. */
  path: string | null;
  /** Element name; for choice elements sometimes without the type suffix (`deceased`). */
  propName: string | null | undefined;
  index: number | null | undefined;
  data: unknown;
  _data: unknown;
  fhirNodeDataType: string | null;
}

/** Where an element's value lives: `owner[key]`, or `owner[key][index]` for a list item. */
export interface Slot {
  owner: Json;
  key: string;
  index: number | null;
  /** The node whose data is `owner`, or whose `_` half is `owner` when `ownerIsExtras`. */
  ownerNode: FpNode;
  ownerIsExtras: boolean;
}

export function isPlainObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype;
}

function isNode(v: unknown): v is FpNode {
  return typeof v === 'object' && v !== null && 'parentResNode' in v && 'propName' in v && 'data' in v;
}

/** Evaluates `expression` on `doc`; every result must be an element of `doc` itself. */
export function select(doc: Resource, expression: string): FpNode[] {
  let out: unknown[];
  try {
    // trace() would otherwise print resource content (PHI) to stdout.
    out = fhirpath.evaluate(doc, expression, { resource: doc, rootResource: doc }, model, { resolveInternalTypes: false, traceFn: () => {} }) as unknown[];
  } catch (err) {
    throw new PatchProblem(422, `evaluating the path failed: ${err instanceof Error ? err.message : String(err)}`);
  }
  return out.map((n) => {
    // Literals, computed values and anything reached outside the resource have no way back into `doc`.
    if (!isNode(n) || rootOf(n).data !== doc) {
      throw new PatchProblem(422, 'the path selects something that is not an element of the resource being patched');
    }
    return n;
  });
}

function rootOf(n: FpNode): FpNode {
  let cur = n;
  while (cur.parentResNode) cur = cur.parentResNode;
  return cur;
}

export function isRoot(n: FpNode): boolean {
  return n.parentResNode === null;
}

export function slotOf(node: FpNode): Slot {
  const parent = node.parentResNode;
  if (!parent) throw new PatchProblem(422, 'the path selects the resource itself, which a patch cannot replace or delete');
  const ownerIsExtras = !isPlainObject(parent.data);
  const owner = ownerIsExtras ? parent._data : parent.data;
  if (!isPlainObject(owner) || typeof node.propName !== 'string') {
    throw new PatchProblem(422, 'the selected element cannot be located in the resource');
  }
  const key = jsonKey(owner, node.propName, node.fhirNodeDataType);
  const index = typeof node.index === 'number' ? node.index : null;
  return { owner, key, index, ownerNode: parent, ownerIsExtras };
}

/** The JSON name of a node: the engine reports choice elements by their base name (`value` for `valueQuantity`). */
function jsonKey(owner: Json, propName: string, type: string | null): string {
  const has = (k: string) => Object.hasOwn(owner, k) || Object.hasOwn(owner, '_' + k);
  if (has(propName)) return propName;
  if (type) {
    const typed = propName + upperFirst(type);
    if (has(typed)) return typed;
  }
  const found = Object.keys(owner).map((k) => k.replace(/^_/, ''))
    .find((k) => k.startsWith(propName) && /^[A-Z]/.test(k.slice(propName.length)));
  if (found) return found;
  throw new PatchProblem(422, `the selected element "${propName}" cannot be located in the resource`);
}

export function upperFirst(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

export function valueAt(slot: Slot): unknown {
  const v = slot.owner[slot.key];
  return slot.index === null ? v : Array.isArray(v) ? v[slot.index] : undefined;
}

/** The JSON object children are added to: the element itself, or a primitive's `_` half. */
export function elementObject(node: FpNode): Json {
  if (isPlainObject(node.data)) return node.data;
  if (isRoot(node)) throw new PatchProblem(422, 'the path does not select an element');
  const s = slotOf(node);
  const extrasKey = '_' + s.key;
  if (s.index === null) {
    if (!isPlainObject(s.owner[extrasKey])) s.owner[extrasKey] = {};
    return s.owner[extrasKey] as Json;
  }
  const extras = alignedExtras(s.owner, s.key);
  if (!isPlainObject(extras[s.index])) extras[s.index] = {};
  return extras[s.index] as Json;
}

/** The `_key` list, created as nulls matching `key`'s length when absent. */
function alignedExtras(owner: Json, key: string): unknown[] {
  const extrasKey = '_' + key;
  if (!Array.isArray(owner[extrasKey])) {
    const values = owner[key];
    owner[extrasKey] = Array.isArray(values) ? values.map(() => null) : [];
  }
  return owner[extrasKey] as unknown[];
}

export interface Value {
  value: unknown;
  /** A primitive's id/extensions, stored under `_key`. */
  extras?: Json;
}

/** Replaces the element in `slot` (value and extensions) with `v`, stored under `newKey`. */
export function writeAt(slot: Slot, newKey: string, v: Value): void {
  const { owner, key, index } = slot;
  if (index === null) {
    delete owner[key];
    delete owner['_' + key];
    owner[newKey] = v.value;
    if (v.extras) owner['_' + newKey] = v.extras;
    return;
  }
  const values = listOf(owner, key);
  values[index] = v.value;
  owner[key] = values;
  if (v.extras) alignedExtras(owner, key)[index] = v.extras;
  else if (Array.isArray(owner['_' + key])) (owner['_' + key] as unknown[])[index] = null;
  tidyList(owner, key);
}

export function insertAt(owner: Json, key: string, index: number, v: Value): void {
  const values = listOf(owner, key);
  if (index > values.length) {
    throw new PatchProblem(422, `index ${index} is past the end of the list "${key}", which has ${values.length} item(s)`);
  }
  const extras = v.extras || Array.isArray(owner['_' + key]) ? alignedExtras(owner, key) : null;
  values.splice(index, 0, v.value);
  owner[key] = values;
  extras?.splice(index, 0, v.extras ?? null);
  tidyList(owner, key);
}

export function moveWithin(owner: Json, key: string, source: number, destination: number): void {
  const values = listOf(owner, key);
  for (const [what, i] of [['source', source], ['destination', destination]] as const) {
    if (i >= values.length) {
      throw new PatchProblem(422, `${what} index ${i} is outside the list "${key}", which has ${values.length} item(s)`);
    }
  }
  for (const list of [values, owner['_' + key]]) {
    if (Array.isArray(list)) list.splice(destination, 0, ...list.splice(source, 1));
  }
}

function listOf(owner: Json, key: string): unknown[] {
  const v = owner[key];
  if (v === undefined) return Array.isArray(owner['_' + key]) ? (owner['_' + key] as unknown[]).map(() => null) : [];
  if (!Array.isArray(v)) throw new PatchProblem(422, `"${key}" holds a single value, not a list`);
  return v;
}

/** Removes the element in `slot`, then any parent it leaves empty (FHIR JSON has no empty objects). */
export function removeAt(slot: Slot): void {
  const { owner, key, index } = slot;
  if (index === null) {
    delete owner[key];
    delete owner['_' + key];
  } else {
    for (const k of [key, '_' + key]) {
      const list = owner[k];
      if (Array.isArray(list)) list.splice(index, 1);
    }
    tidyList(owner, key);
  }
  if (Object.keys(owner).length > 0 || isRoot(slot.ownerNode)) return;
  const parent = slotOf(slot.ownerNode);
  if (!slot.ownerIsExtras) {
    removeAt(parent);
    return;
  }
  // The emptied object was a primitive's `_` half: drop it, and the primitive too if it had no value.
  if (parent.index === null) delete parent.owner['_' + parent.key];
  else {
    const extras = parent.owner['_' + parent.key];
    if (Array.isArray(extras)) extras[parent.index] = null;
    tidyList(parent.owner, parent.key);
  }
  if (valueAt(parent) === undefined || valueAt(parent) === null) removeAt(parent);
}

/** Drops lists that became empty and `_` lists that no longer carry anything. */
function tidyList(owner: Json, key: string): void {
  const values = owner[key];
  const extras = owner['_' + key];
  if (Array.isArray(extras) && extras.every((e) => e === null)) delete owner['_' + key];
  if (Array.isArray(values) && (values.length === 0 || (values.every((v) => v === null) && !Array.isArray(owner['_' + key])))) {
    delete owner[key];
  }
}
