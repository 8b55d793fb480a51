import fhirpath from 'fhirpath';
import type { Resource } from '../fhir/types.ts';

/**
 * Identifiers held encrypted under their own key, with a blind index for exact search: social
 * security numbers and medical record numbers by default (by system, or by the v2-0203 type SS/MR).
 * A deployment lists its own as FHIRPath expressions that select Identifier elements.
 */
export const defaultSensitiveIdentifiers = [
  "descendants().where(value.exists() and (system = 'http://hl7.org/fhir/sid/us-ssn' or type.coding.where(system = 'http://terminology.hl7.org/CodeSystem/v2-0203' and (code = 'SS' or code = 'MR')).exists()))",
];

const ssnSystem = 'http://hl7.org/fhir/sid/us-ssn';
const v20203 = 'http://terminology.hl7.org/CodeSystem/v2-0203';

export interface IdentifierElement {
  system?: string;
  value?: string;
  _value?: { extension?: { url: string; valueBase64Binary?: string }[] };
  [key: string]: unknown;
}

type Compiled = (resource: Resource) => unknown[];

/** Finds the sensitive Identifier elements of a resource (the objects themselves, to be rewritten in place on a copy). */
export class SensitiveIdentifiers {
  private readonly selectors: Compiled[];
  /** The default expressions, evaluated by a walk of the resource that selects the same elements, without FHIRPath's cost on every write. */
  private readonly native: boolean;

  constructor(expressions: readonly string[] = defaultSensitiveIdentifiers) {
    this.selectors = expressions.map((e) => compile(e));
    this.native = expressions.length === defaultSensitiveIdentifiers.length && expressions.every((e, i) => e === defaultSensitiveIdentifiers[i]);
  }

  /** Whether stored JSON text may hold a sensitive identifier (a cheap test before parsing it). */
  mayHold(text: string): boolean {
    if (this.selectors.length === 0) return false;
    return !this.native || text.includes(ssnSystem) || text.includes(v20203);
  }

  find(resource: Resource): IdentifierElement[] {
    if (this.selectors.length === 0) return [];
    if (this.native) return walk(resource, []);
    const found = new Set<IdentifierElement>();
    for (const select of this.selectors) {
      for (const item of select(resource)) if (isIdentifier(item)) found.add(item);
    }
    return [...found];
  }
}

function compile(expression: string): Compiled {
  try {
    const fn = fhirpath.compile(expression) as unknown as (r: unknown) => unknown[];
    return (resource) => fn(resource);
  } catch (err) {
    throw new Error(`sensitiveIdentifiers: "${expression}" is not a FHIRPath expression (${(err as Error).message})`);
  }
}

function isIdentifier(v: unknown): v is IdentifierElement {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && ('value' in v || '_value' in v);
}

/** Every Identifier-shaped element with a value that is an SSN (by system) or typed SS / MR, anywhere in the resource (contained resources and Reference.identifier too). */
function walk(node: unknown, out: IdentifierElement[]): IdentifierElement[] {
  if (Array.isArray(node)) {
    for (const item of node) walk(item, out);
    return out;
  }
  if (typeof node !== 'object' || node === null) return out;
  const element = node as IdentifierElement & { type?: { coding?: { system?: unknown; code?: unknown }[] } };
  if (('value' in element || '_value' in element) && (element.system === ssnSystem || sensitiveType(element.type))) out.push(element);
  for (const value of Object.values(node)) if (typeof value === 'object' && value !== null) walk(value, out);
  return out;
}

function sensitiveType(type: { coding?: { system?: unknown; code?: unknown }[] } | undefined): boolean {
  return Array.isArray(type?.coding) && type.coding.some((c) => c?.system === v20203 && (c.code === 'SS' || c.code === 'MR'));
}
