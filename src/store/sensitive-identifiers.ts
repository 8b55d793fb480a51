import fhirpath from 'fhirpath';
import type { Resource } from '../fhir/types.ts';

/**
 * Identifiers held encrypted under their own key, with a blind index for exact search: social
 * security numbers and medical record numbers by default (by system, or by the v2-0203 type SS/MR).
 * A deployment lists its own as FHIRPath expressions that select Identifier elements.
 */
export const defaultSensitiveIdentifiers = [
  "identifier.where(system = 'http://hl7.org/fhir/sid/us-ssn')",
  "identifier.where(type.coding.where(system = 'http://terminology.hl7.org/CodeSystem/v2-0203' and (code = 'SS' or code = 'MR')).exists())",
];

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
  /** Every expression starts at the resource's own `identifier`: a resource without one has none to find. */
  private readonly topLevelOnly: boolean;

  constructor(expressions: readonly string[] = defaultSensitiveIdentifiers) {
    this.selectors = expressions.map((e) => compile(e));
    this.topLevelOnly = expressions.every((e) => /^identifier\b/.test(e.trim()));
  }

  /** Expressions may reach identifiers anywhere, not only a resource's own `identifier`. */
  get customExpressions(): boolean {
    return !this.topLevelOnly;
  }

  /** True when there is nothing to look for in this resource. */
  skip(resource: Resource): boolean {
    return this.selectors.length === 0 || (this.topLevelOnly && (resource as { identifier?: unknown }).identifier === undefined);
  }

  find(resource: Resource): IdentifierElement[] {
    if (this.skip(resource)) return [];
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
