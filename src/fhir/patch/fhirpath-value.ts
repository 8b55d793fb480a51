import { PatchProblem, isPlainObject, model, upperFirst } from './fhirpath-tree.ts';
import type { Json, Value } from './fhirpath-tree.ts';

/**
 * Turning a FHIRPath Patch `value` part into FHIR JSON, checked against the R4 model: the element
 * must exist, choice elements get their type suffix, lists become arrays, and the value's type
 * must fit the element ("Servers SHALL return an error if the type is wrong"). Datatypes arrive as
 * `value[x]`; backbone (anonymous) elements arrive as nested parts, one per child element.
 * Invariants and terminology are left to resource validation, which runs on the patched result.
 */

/** What the model says about one child element. */
export interface ElementInfo {
  /** JSON name, with the type suffix for choice elements. */
  key: string;
  /** Name without a choice type suffix. */
  base: string;
  /** FHIR type (`string`, `HumanName`, `BackboneElement`, `Resource`, `System.String`). */
  type: string;
  repeating: boolean;
  /** Model path its own children hang off: its datatype, or its own path for backbone elements. */
  typePath: string;
  /** Type suffixes of a choice element. */
  choices?: string[];
}

const IDENTIFIER = /^[A-Za-z][A-Za-z0-9_]*$/;
const MAX_DEPTH = 50;

/**
 * The child `name` of an element whose model path is `typePath`. `name` may be a choice element's
 * base name (`deceased`, typed by `valueType`) or its JSON name (`deceasedBoolean`).
 */
export function childElement(typePath: string, name: string, valueType: string | undefined): ElementInfo {
  if (!IDENTIFIER.test(name)) throw new PatchProblem(400, `"${name}" is not a valid element name`);
  const typedBase = choiceBase(typePath, name);
  const base = typedBase ?? name;
  const raw = `${typePath}.${base}`;
  const path = model.pathsDefinedElsewhere[raw] ?? raw;
  const repeating = Boolean(model.path2Repeating[raw] || model.path2Repeating[path]);
  const choices = Object.hasOwn(model.choiceTypePaths, path) ? model.choiceTypePaths[path] : undefined;
  if (choices) {
    const suffix = typedBase ? name.slice(base.length) : valueType && upperFirst(valueType);
    if (!suffix) throw new PatchProblem(422, `"${name}" is a choice element (${name}[x]); give the value as value[x] so its type is known`);
    if (!choices.includes(suffix)) {
      throw new PatchProblem(422, `${base}[x] in ${typePath} cannot be ${suffix}; allowed: ${choices.join(', ')}`);
    }
    const type = model.path2Type[path + suffix] ?? valueType ?? suffix;
    return { key: base + suffix, base, type, repeating, typePath: typePathOf(path + suffix, type), choices };
  }
  const type = Object.hasOwn(model.path2Type, path) ? model.path2Type[path] : undefined;
  if (!type) throw new PatchProblem(422, `"${name}" is not an element of ${typePath}`);
  return { key: name, base: name, type, repeating, typePath: typePathOf(path, type) };
}

/** For a JSON name such as `valueQuantity`, the choice element's base name (`value`), if it is one. */
export function choiceBase(typePath: string, key: string): string | undefined {
  for (let i = 1; i < key.length; i++) {
    if (!/[A-Z]/.test(key[i])) continue;
    const base = key.slice(0, i);
    const path = `${typePath}.${base}`;
    const choices = Object.hasOwn(model.choiceTypePaths, path) ? model.choiceTypePaths[path] : undefined;
    if (choices?.includes(key.slice(i))) return base;
  }
  return undefined;
}

function typePathOf(path: string, type: string): string {
  return type === 'BackboneElement' || type === 'Element' ? path : type;
}

/** The FHIR type a value part declares, if it declares one (nested parts do not). */
export function declaredType(part: Json): string | undefined {
  const key = valueKeys(part)[0];
  if (key === 'resource') {
    const r = part.resource;
    return isPlainObject(r) && typeof r.resourceType === 'string' ? r.resourceType : undefined;
  }
  if (key === undefined || key === 'part') return undefined;
  const suffix = key.slice('value'.length);
  const primitive = suffix.charAt(0).toLowerCase() + suffix.slice(1);
  return Object.hasOwn(model.type2Parent, primitive) && isPrimitive(primitive) ? primitive : suffix;
}

function valueKeys(part: Json): string[] {
  return Object.keys(part).filter((k) => /^value[A-Z]/.test(k) || k === 'resource' || k === 'part');
}

/** Builds the JSON for `part` as the content of an element of the given type. */
export function buildValue(part: Json, target: { type?: string; typePath?: string }, label: string, depth = 0): Value {
  const keys = valueKeys(part);
  if (keys.length !== 1) {
    throw new PatchProblem(400, `${label} must have exactly one of value[x], resource or part (found ${keys.length ? keys.join(', ') : 'none'})`);
  }
  const key = keys[0];
  if (key === 'part') {
    if (target.type && (isPrimitive(target.type) || target.type === 'Resource')) {
      throw new PatchProblem(422, `${label} is given as parts, but the element has type ${target.type}`);
    }
    return { value: buildObject(part.part, target.typePath, label, depth + 1) };
  }
  if (key === 'resource') {
    const r = part.resource;
    if (!isPlainObject(r) || typeof r.resourceType !== 'string') throw new PatchProblem(400, `${label}: resource must be a FHIR resource`);
    if (target.type && !['Resource', 'DomainResource', r.resourceType].includes(target.type)) {
      throw new PatchProblem(422, `${label} is a ${r.resourceType} resource, but the element has type ${target.type}`);
    }
    return { value: structuredClone(r) };
  }
  const type = declaredType(part) as string;
  if (!Object.hasOwn(model.type2Parent, type)) throw new PatchProblem(400, `${label}: ${key} does not name a FHIR data type`);
  const value = part[key];
  const problem = typeProblem(type, value, target.type);
  if (problem) throw new PatchProblem(problem.status, `${label}: ${problem.message}`);
  const extras = part['_' + key];
  if (extras !== undefined && !isPlainObject(extras)) throw new PatchProblem(400, `${label}: _${key} must be an object`);
  return extras === undefined ? { value: structuredClone(value) } : { value: structuredClone(value), extras: structuredClone(extras) };
}

/** An anonymous element from parts: each part is named for a child element and carries its value. */
function buildObject(parts: unknown, typePath: string | undefined, label: string, depth: number): Json {
  if (!Array.isArray(parts) || parts.length === 0) throw new PatchProblem(400, `${label}: part must be a non-empty list`);
  // Recursive elements (Extension.extension, Questionnaire.item) would otherwise let a client exhaust the stack.
  if (depth > MAX_DEPTH) throw new PatchProblem(400, `${label}: parts are nested more than ${MAX_DEPTH} levels deep`);
  const obj: Json = {};
  for (const [i, part] of parts.entries()) {
    const where = `${label}.part[${i}]`;
    if (!isPlainObject(part) || typeof part.name !== 'string') throw new PatchProblem(400, `${where} must be an object with a name`);
    const info: ElementInfo | undefined = typePath ? childElement(typePath, part.name, declaredType(part)) : undefined;
    if (!info && !IDENTIFIER.test(part.name)) throw new PatchProblem(400, `"${part.name}" is not a valid element name`);
    const key = info?.key ?? part.name;
    const v = buildValue(part, { type: info?.type, typePath: info?.typePath }, `${where} (${part.name})`, depth);
    if (info?.repeating) {
      const values = (obj[key] ??= []) as unknown[];
      values.push(v.value);
      if (v.extras || obj['_' + key]) {
        const extras = (obj['_' + key] ??= values.slice(0, -1).map(() => null)) as unknown[];
        extras.push(v.extras ?? null);
      }
    } else {
      if (Object.hasOwn(obj, key)) throw new PatchProblem(422, `${where}: "${part.name}" is not a repeating element but is given more than once`);
      obj[key] = v.value;
      if (v.extras) obj['_' + key] = v.extras;
    }
  }
  return obj;
}

export function isPrimitive(type: string): boolean {
  return /^[a-z]/.test(type) || type.startsWith('System.');
}

function jsonKind(type: string): 'boolean' | 'number' | 'string' {
  if (type === 'boolean' || type === 'System.Boolean') return 'boolean';
  if (['integer', 'unsignedInt', 'positiveInt', 'decimal', 'integer64', 'System.Integer', 'System.Decimal'].includes(type)) return 'number';
  return 'string';
}

/** The family a complex type belongs to for assignment: Age, SimpleQuantity, ... count as Quantity. */
function family(type: string): string {
  let t = type;
  for (let p = model.type2Parent[t]; p && !['Element', 'BackboneElement', 'DataType', 'Resource', 'DomainResource'].includes(p); p = model.type2Parent[t]) t = p;
  return t;
}

function typeProblem(valueType: string, value: unknown, elementType: string | undefined): { status: number; message: string } | undefined {
  if (isPrimitive(valueType)) {
    // integer64 is sent as a string in R4B+; R4 has no such type, so numbers only.
    if (typeof value !== jsonKind(valueType)) return { status: 400, message: `a ${valueType} value must be a JSON ${jsonKind(valueType)}` };
  } else if (!isPlainObject(value)) {
    return { status: 400, message: `a ${valueType} value must be a JSON object` };
  }
  if (!elementType) return undefined;
  const mismatch = { status: 422, message: `a ${valueType} value cannot be used for an element of type ${elementType}` };
  if (isPrimitive(elementType) !== isPrimitive(valueType)) return mismatch;
  if (isPrimitive(elementType)) return jsonKind(elementType) === jsonKind(valueType) ? undefined : mismatch;
  if (['Element', 'BackboneElement'].includes(elementType)) {
    return { status: 422, message: `the element is a backbone element; give its content as nested parts, not as ${valueType}` };
  }
  if (elementType === 'Resource') return { status: 422, message: 'the element holds a resource; give it in the "resource" of the value part' };
  return family(valueType) === family(elementType) ? undefined : mismatch;
}
