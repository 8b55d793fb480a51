import type { IssueSeverity, OperationOutcomeIssue } from '../types.ts';
import { expandValueSet } from './bindings.ts';
import { validationModel, type ComplexType, type DataType, type Prop, type ValidationModel } from './model.ts';
import { checkPrimitive, clip, describe, type PrimitiveType } from './primitives.ts';

/**
 * Structural validation of a FHIR R4 resource in JSON (https://hl7.org/fhir/R4/json.html) against
 * the base StructureDefinitions: known elements only, cardinality, array-ness, primitive types and
 * formats, primitive extensions (`_name`), no nulls or empty objects/arrays, required bindings to
 * value sets that can be expanded locally, contained and nested resources.
 *
 * Invariants (ElementDefinition.constraint, FHIRPath: ele-1, dom-2..dom-6, per-resource rules such
 * as obs-6) are not checked yet. They would plug in at the end of `walkObject`, once an object's
 * structure is known to be sound: look up the constraints compiled for `type.name` and evaluate
 * them with the `fhirpath` engine against the object (resource-level ones in `walkResource`).
 * Profiles (meta.profile) are not validated either.
 */

export interface ValidateOptions {
  /** The resource type the interaction requires (e.g. from the URL of a PUT). */
  expectedType?: string;
}

/** Nesting beyond this is rejected: no real resource comes close and it bounds the recursion. */
export const MAX_DEPTH = 100;
/** Enough to explain any real mistake; more only costs time and memory on garbage input. */
export const MAX_ISSUES = 200;

interface Context {
  readonly model: ValidationModel;
  readonly issues: OperationOutcomeIssue[];
  tooDeep: boolean;
  full: boolean;
}

const ERROR: IssueSeverity = 'error';

function report(ctx: Context, code: string, diagnostics: string, expression: string): void {
  if (ctx.full) return;
  if (ctx.issues.length >= MAX_ISSUES) {
    ctx.full = true;
    ctx.issues.push({ severity: ERROR, code: 'too-costly', diagnostics: `Validation stopped after ${MAX_ISSUES} issues`, expression: [expression] });
    return;
  }
  ctx.issues.push({ severity: ERROR, code, diagnostics, expression: [expression] });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function validateResource(resource: unknown, options?: ValidateOptions): OperationOutcomeIssue[] {
  const ctx: Context = { model: validationModel(), issues: [], tooDeep: false, full: false };
  try {
    walkResource(ctx, resource, '', 0, options?.expectedType);
  } catch (err) {
    // Only a bug can get here (or a hostile object with throwing getters); say so rather than crash a write.
    report(ctx, 'exception', `Validation failed unexpectedly: ${err instanceof Error ? err.message : String(err)}`, 'Resource');
  }
  return ctx.issues;
}

/** `path` is the location of the resource itself: '' at the top, 'Bundle.entry[0].resource' inside. */
function walkResource(ctx: Context, value: unknown, path: string, depth: number, expectedType?: string): void {
  const where = path || 'Resource';
  if (!isObject(value)) {
    report(ctx, 'structure', `A resource must be a JSON object, found ${describe(value)}`, where);
    return;
  }
  const resourceType = value.resourceType;
  if (resourceType === undefined) {
    report(ctx, 'required', "The resource has no 'resourceType'", where);
    return;
  }
  const type = typeof resourceType === 'string' ? ctx.model.resources.get(resourceType) : undefined;
  if (!type) {
    const shown = typeof resourceType === 'string' ? `'${clip(resourceType)}'` : describe(resourceType);
    report(ctx, 'value', `resourceType ${shown} is not a known FHIR R4 resource type`, path ? `${path}.resourceType` : 'resourceType');
    return;
  }
  if (expectedType !== undefined && resourceType !== expectedType) {
    report(ctx, 'invalid', `Expected a ${expectedType} resource, found ${type.name}`, path || type.name);
  }
  walkObject(ctx, value, type, path || type.name, depth + 1);
}

function walkObject(ctx: Context, obj: Record<string, unknown>, type: ComplexType, path: string, depth: number): void {
  if (depth > MAX_DEPTH) {
    if (!ctx.tooDeep) report(ctx, 'structure', `Elements are nested more than ${MAX_DEPTH} levels deep`, path);
    ctx.tooDeep = true;
    return;
  }
  const props = type.props;
  let count = 0;
  // The choice ([x]) variants present in this object, to reject two types of one element.
  let choices: Prop[] | undefined;
  for (const key in obj) {
    if (!Object.hasOwn(obj, key)) continue;
    count++;
    const value = obj[key];
    if (key === 'resourceType' && type.isResource) continue;
    const isExtension = key.charCodeAt(0) === 95; // '_'
    const name = isExtension ? key.slice(1) : key;
    const prop = props.get(name);
    if (!prop) {
      report(ctx, 'structure', `Unknown element '${clip(key)}' in ${type.name}`, `${path}.${name}`);
      continue;
    }
    const element = prop.element;
    if (element.isChoice) {
      if (!choices) choices = [];
      const clash = choices.find((p) => p.element === element && p !== prop);
      if (clash) {
        const base = prop.segment.slice(0, prop.segment.indexOf('.'));
        const names = element.keys.filter((k) => k === name || props.get(k) === clash).join("' and '");
        report(ctx, 'structure', `Only one type of ${element.path} is allowed, found '${names}'`, `${path}.${base}`);
        continue;
      }
      if (!choices.includes(prop)) choices.push(prop);
    }
    const where = `${path}.${prop.segment}`;
    if (isExtension) {
      if (prop.type.kind !== 'primitive' || prop.isAttribute) {
        report(ctx, 'structure', `'${key}' is not allowed: ${name} is not a primitive element that can carry extensions`, where);
      } else {
        walkPrimitiveExtensions(ctx, obj, name, value, prop, where, depth);
      }
      continue;
    }
    if (value === null) {
      report(ctx, 'structure', `${name} is null; absent elements must be omitted, not null`, where);
      continue;
    }
    if (element.isArray) {
      if (!Array.isArray(value)) {
        report(ctx, 'structure', `${name} repeats (max ${element.max === Infinity ? '*' : element.max}) and must be a JSON array`, where);
        walkValue(ctx, value, prop, where, depth);
        continue;
      }
      walkArray(ctx, obj, name, value, prop, where, depth);
      continue;
    }
    if (Array.isArray(value)) {
      report(ctx, 'structure', `${name} does not repeat (max 1) and must not be an array`, where);
      continue;
    }
    walkValue(ctx, value, prop, where, depth);
  }
  if (count === 0) {
    report(ctx, 'structure', `Empty object at ${path}; elements with no content must be omitted`, path);
    return;
  }
  for (const element of type.required) {
    if (!hasAny(obj, element.keys)) {
      const name = element.path.slice(element.path.lastIndexOf('.') + 1);
      report(ctx, 'required', `Missing required element ${element.path} (min ${element.min})`, `${path}.${name.replace('[x]', '')}`);
    }
  }
}

/** Whether the object has the element, as a value or as a `_name` extension-only primitive. */
function hasAny(obj: Record<string, unknown>, keys: readonly string[]): boolean {
  for (const key of keys) {
    if (Object.hasOwn(obj, key) || Object.hasOwn(obj, `_${key}`)) return true;
  }
  return false;
}

function walkArray(ctx: Context, obj: Record<string, unknown>, name: string, value: unknown[], prop: Prop, where: string, depth: number): void {
  const element = prop.element;
  if (value.length === 0) {
    report(ctx, 'structure', `${name} is an empty array; absent elements must be omitted`, where);
    return;
  }
  if (value.length > element.max) {
    report(ctx, 'structure', `${name} has ${value.length} entries, more than the ${element.max} allowed`, where);
  }
  if (value.length < element.min) {
    report(ctx, 'required', `${name} has ${value.length} entries, fewer than the ${element.min} required`, where);
  }
  // Nulls are allowed only as placeholders aligned with a `_name` entry (json.html, primitive arrays).
  const extensions = prop.type.kind === 'primitive' ? obj[`_${name}`] : undefined;
  for (let i = 0; i < value.length; i++) {
    const item = value[i];
    if (item === null) {
      if (!Array.isArray(extensions) || !isObject(extensions[i])) {
        report(ctx, 'structure', `${name}[${i}] is null without a matching _${name}[${i}] extension`, `${where}[${i}]`);
      }
      continue;
    }
    walkValue(ctx, item, prop, `${where}[${i}]`, depth);
  }
}

/** `_name`: the id/extensions of a primitive (an object), or of each entry of a primitive array. */
function walkPrimitiveExtensions(ctx: Context, obj: Record<string, unknown>, name: string, value: unknown, prop: Prop, where: string, depth: number): void {
  const elementType = ctx.model.primitiveElement;
  if (!prop.element.isArray) {
    if (!isObject(value)) {
      report(ctx, 'structure', `_${name} must be a JSON object holding id and/or extension, found ${describe(value)}`, where);
      return;
    }
    walkObject(ctx, value, elementType, where, depth + 1);
    return;
  }
  if (!Array.isArray(value)) {
    report(ctx, 'structure', `_${name} must be a JSON array aligned with ${name}, found ${describe(value)}`, where);
    return;
  }
  const values = obj[name];
  if (value.length === 0) {
    report(ctx, 'structure', `_${name} is an empty array; absent elements must be omitted`, where);
    return;
  }
  if (values !== undefined && (!Array.isArray(values) || values.length !== value.length)) {
    report(ctx, 'structure', `_${name} must have one entry per entry of ${name} (use null where there is nothing to add)`, where);
  }
  for (let i = 0; i < value.length; i++) {
    const item = value[i];
    if (item === null) {
      const partner = Array.isArray(values) ? values[i] : undefined;
      if (partner === null || partner === undefined) {
        report(ctx, 'structure', `_${name}[${i}] is null and ${name}[${i}] has no value`, `${where}[${i}]`);
      }
      continue;
    }
    if (!isObject(item)) {
      report(ctx, 'structure', `_${name}[${i}] must be a JSON object or null, found ${describe(item)}`, `${where}[${i}]`);
      continue;
    }
    walkObject(ctx, item, elementType, `${where}[${i}]`, depth + 1);
  }
}

function walkValue(ctx: Context, value: unknown, prop: Prop, where: string, depth: number): void {
  const type: DataType = prop.type;
  if (type.kind === 'primitive') {
    checkValue(ctx, value, type, prop, where);
    return;
  }
  if (type.kind === 'resource') {
    walkResource(ctx, value, where, depth);
    return;
  }
  if (!isObject(value)) {
    report(ctx, 'structure', `${where.slice(where.lastIndexOf('.') + 1)} must be a JSON object (${type.name}), found ${describe(value)}`, where);
    return;
  }
  walkObject(ctx, value, type, where, depth + 1);
  const binding = prop.element.requiredBinding;
  if (binding !== undefined && (type.name === 'Coding' || type.name === 'CodeableConcept')) checkCodings(ctx, value, type.name, binding, where);
}

function checkValue(ctx: Context, value: unknown, type: PrimitiveType, prop: Prop, where: string): void {
  const problem = checkPrimitive(type, value);
  if (problem !== undefined) {
    report(ctx, 'value', `Invalid ${type.name} at ${where}: ${problem}`, where);
    return;
  }
  const binding = prop.element.requiredBinding;
  if (binding !== undefined && type.name === 'code') {
    const expansion = expandValueSet(binding);
    if (expansion && !expansion.codes.has(value as string)) {
      report(ctx, 'code-invalid', `'${clip(value as string)}' is not in the required value set ${binding}${listCodes(expansion.codes)}`, where);
    }
  }
}

/**
 * For Coding/CodeableConcept under a required binding, a coding from one of the value set's code
 * systems must use a code of the value set. Codings from other systems are left alone: R4 lets a
 * CodeableConcept carry translations, and rejecting them would need the full "at least one coding
 * from the value set" rule, which real data (text-only concepts) often does not meet.
 */
function checkCodings(ctx: Context, value: Record<string, unknown>, typeName: string, binding: string, where: string): void {
  const expansion = expandValueSet(binding);
  if (!expansion) return;
  const codings = typeName === 'Coding' ? [value] : Array.isArray(value.coding) ? value.coding : [];
  for (let i = 0; i < codings.length; i++) {
    const coding = codings[i];
    if (!isObject(coding) || typeof coding.system !== 'string' || typeof coding.code !== 'string') continue;
    const codes = expansion.bySystem.get(coding.system);
    if (codes && !codes.has(coding.code)) {
      const at = typeName === 'Coding' ? `${where}.code` : `${where}.coding[${i}].code`;
      report(ctx, 'code-invalid', `'${clip(coding.code)}' is not a code of ${coding.system} in the required value set ${binding}${listCodes(codes)}`, at);
    }
  }
}

function listCodes(codes: ReadonlySet<string>): string {
  return codes.size <= 12 ? ` (allowed: ${[...codes].join(', ')})` : '';
}
