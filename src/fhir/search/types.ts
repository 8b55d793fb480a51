/**
 * A parsed FHIR search, independent of HTTP and of any store. The parser (src/fhir/search/parse.ts)
 * builds it from query parameters; each store turns it into its own query language. Values are
 * already validated and converted (dates to millisecond ranges, strings normalized), so a store
 * never re-parses user input.
 */
export interface SearchRequest {
  /** The types searched: one for a type-level search, several for `_type`; empty means every type. */
  resourceTypes: string[];
  /** Criteria ANDed together; each criterion's values are ORed. */
  criteria: SearchCriterion[];
  /**
   * Restrictions added by the access layer, not by the client: every constraint must hold, and a
   * constraint holds when any one of its criteria does (e.g. a patient compartment: `patient` OR
   * `subject` OR `performer`). A criterion on a parameter a type lacks never holds for that type.
   */
  constraints?: SearchConstraint[];
  /** The criteria select a handful of rows (an _id): test the constraints on each row instead of listing what they admit. */
  probeConstraints?: boolean;
  sort: SortKey[];
  count: number;
  offset: number;
  /**
   * Where the page starts: a continuation token from an earlier result's `next` or `previous`
   * (store-defined, opaque to everyone else). Replaces `offset` when given.
   */
  cursor?: string;
  total: 'none' | 'estimate' | 'accurate';
  include: IncludeSpec[];
  revinclude: IncludeSpec[];
}

export interface SearchConstraint {
  anyOf: SearchCriterion[];
}

export type SearchParamType = 'number' | 'date' | 'string' | 'token' | 'reference' | 'composite' | 'quantity' | 'uri' | 'special';

export type Prefix = 'eq' | 'ne' | 'gt' | 'lt' | 'ge' | 'le' | 'sa' | 'eb' | 'ap';

/**
 * One parameter of the query. `kind` says which index is consulted and how; `code` names the search
 * parameter (`_id` and `_lastUpdated` are answered from the resource table itself).
 */
export type SearchCriterion =
  | StringCriterion
  | TokenCriterion
  | TokenTextCriterion
  | TokenOfTypeCriterion
  | TokenInCriterion
  | TokenSubsumesCriterion
  | ReferenceCriterion
  | ReferenceIdentifierCriterion
  | DateCriterion
  | NumberCriterion
  | QuantityCriterion
  | UriCriterion
  | MissingCriterion
  | ChainCriterion
  | HasCriterion
  | NearCriterion
  | TextCriterion
  | ListCriterion
  | CompositeCriterion
  | ForTypesCriterion
  | AllOfCriterion
  | AnyOfCriterion
  | InSetCriterion
  | NotCriterion;

export interface StringCriterion {
  kind: 'string';
  code: string;
  /** prefix (the default) and contains compare normalized text; exact compares the original. */
  match: 'prefix' | 'exact' | 'contains';
  values: string[];
}

export interface TokenCriterion {
  kind: 'token';
  code: string;
  /** `:not`: resources with no value matching any of the values (including those with no value). */
  negate: boolean;
  values: TokenValue[];
}

export interface TokenValue {
  /** undefined: any system; null: no system (`|code`). */
  system?: string | null;
  /** undefined: any code (`system|`). */
  code?: string;
}

/** `:text` on a token: normalized prefix match on display text / CodeableConcept.text. */
export interface TokenTextCriterion {
  kind: 'token-text';
  code: string;
  values: string[];
}

/**
 * `code:in=<value set>` / `code:not-in=`: a code of (none of) the value sets. Terminology resolves it
 * into a plain token criterion with the expanded codes before the store sees the request.
 */
export interface TokenInCriterion {
  kind: 'token-in';
  code: string;
  negate: boolean;
  /** Canonical URLs or `ValueSet/<id>` references. */
  valueSets: string[];
}

/**
 * `code:below=system|code` (the concept and those it subsumes) / `code:above=` (the concept and
 * those that subsume it), by the code system's hierarchy; resolved like TokenInCriterion.
 */
export interface TokenSubsumesCriterion {
  kind: 'token-subsumes';
  code: string;
  direction: 'below' | 'above';
  values: { system: string; code: string }[];
}

/** `identifier:of-type=system|code|value`: an Identifier of that type with that value. */
export interface TokenOfTypeCriterion {
  kind: 'token-of-type';
  code: string;
  /** undefined: a type code from any system. */
  values: { typeSystem?: string; typeCode: string; value: string }[];
}

export interface ReferenceCriterion {
  kind: 'reference';
  code: string;
  values: ReferenceValue[];
}

/** Either a local reference (`id`, with `type` unless a bare id may name any type) or a `url`. */
export interface ReferenceValue {
  type?: string;
  id?: string;
  /** A URL outside this server, or a canonical: matches references with exactly this text. */
  url?: string;
}

/** `reference:identifier=system|value`: matches Reference.identifier. */
export interface ReferenceIdentifierCriterion {
  kind: 'reference-identifier';
  code: string;
  values: TokenValue[];
}

/** A search date as the range it denotes, [start, end) in epoch milliseconds. */
export interface DateValue {
  prefix: Prefix;
  start: number;
  end: number;
}

export interface DateCriterion {
  kind: 'date';
  code: string;
  values: DateValue[];
}

/**
 * `value` is the number as given; [low, high) the range its precision implies (for `ap`: the
 * approximate range), used by `eq`, `ne` and `ap`.
 */
export interface NumberValue {
  prefix: Prefix;
  value: number;
  low: number;
  high: number;
}

export interface NumberCriterion {
  kind: 'number';
  code: string;
  values: NumberValue[];
}

export interface QuantityValue extends NumberValue {
  system?: string;
  /** With a system: the coded unit; without one: matches the code or the human unit. */
  code?: string;
}

export interface QuantityCriterion {
  kind: 'quantity';
  code: string;
  values: QuantityValue[];
}

export interface UriCriterion {
  kind: 'uri';
  code: string;
  /** below: stored URI starts with the value; above: the value starts with the stored URI. */
  match: 'exact' | 'below' | 'above';
  values: string[];
}

/** `:missing=true|false`. `paramType` tells the store which index holds the parameter. */
export interface MissingCriterion {
  kind: 'missing';
  code: string;
  paramType: SearchParamType;
  missing: boolean;
}

/**
 * `subject:Patient.name=x`: resources whose `code` reference points at a resource (of one of
 * `targetTypes`) that satisfies `criterion`. Chains nest for longer paths.
 */
export interface ChainCriterion {
  kind: 'chain';
  code: string;
  targetTypes: string[];
  criterion: SearchCriterion;
}

/**
 * `code-value-quantity=http://loinc.org|8480-6$gt100`: each value is a tuple with one criterion
 * per part of the composite parameter, all of which must hold on the same base node (one
 * Observation, one Observation.component); values are ORed.
 */
export interface CompositeCriterion {
  kind: 'composite';
  code: string;
  values: SearchCriterion[][];
}

/** `near=lat|long|distance|units` (Location): within `km` kilometres of the point, great-circle. */
export interface NearCriterion {
  kind: 'near';
  code: string;
  values: { latitude: number; longitude: number; km: number }[];
}

/** `_text` (narrative) and `_content` (all text): full-text queries (text.ts fullTextQuery), ORed. */
export interface TextCriterion {
  kind: 'text';
  code: '_text' | '_content';
  values: string[];
}

/** `_list=id`: the resources List/id has as entries. */
export interface ListCriterion {
  kind: 'list';
  code: '_list';
  values: string[];
}

/**
 * `_has:Observation:patient:code=x` (search.html#has): resources that some `sourceType` resource
 * refers to through its `code` reference parameter, where that resource satisfies `criterion`.
 */
export interface HasCriterion {
  kind: 'has';
  code: string;
  sourceType: string;
  criterion: SearchCriterion;
}

/**
 * `criterion`, for resources of `resourceTypes` only (resources of other types never satisfy it).
 * Not a client parameter: constraints use it where a rule differs by type (compartment membership).
 */
export interface ForTypesCriterion {
  kind: 'for-types';
  code: string;
  resourceTypes: string[];
  criterion: SearchCriterion;
}

export interface SortKey {
  code: string;
  /** The parameter's type, so a store knows which index orders it. */
  type: SearchParamType;
  descending: boolean;
}

/**
 * `_include=Observation:subject[:Patient]` adds the resources the matches' `subject` references
 * point at; `_revinclude=Provenance:target` adds the Provenances whose `target` points at a
 * match. `iterate` repeats the step on what was added.
 */
export interface IncludeSpec {
  sourceType: string;
  code: string;
  targetType?: string;
  iterate: boolean;
}

/** Every one of `criteria` holds. Not a client parameter: access constraints use it for a granular scope's several parameters. */
export interface AllOfCriterion {
  kind: 'all-of';
  code: string;
  criteria: SearchCriterion[];
}

/** One of `criteria` holds (none: nothing matches). Not a client parameter: access constraints carried into chains and _has. */
/**
 * Resources whose id (code `_id`) is one of `ids`, or that refer under `code` to a `targetType`
 * with one of them: a list the access layer keeps (a clinician's patients), long and reused, so a
 * store may hold it as a table of its own rather than bind every value each time.
 */
export interface InSetCriterion {
  kind: 'in-set';
  code: string;
  targetType?: string;
  ids: ReadonlySet<string>;
}

/** Resources that do not satisfy `criterion` (access constraints only: a consent withholding part of a record). */
export interface NotCriterion {
  kind: 'not';
  code: string;
  criterion: SearchCriterion;
}

export interface AnyOfCriterion {
  kind: 'any-of';
  code: string;
  criteria: SearchCriterion[];
}
