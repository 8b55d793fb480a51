import type { HistoryPage, HistoryQuery, SearchResult, StoreReader, StoreWriter, StoredResource, UpdateOptions, UpdateResult } from '../store/store.ts';
import type { SearchConstraint, SearchCriterion, SearchRequest } from '../fhir/search/types.ts';
import { decide, type Obligations } from '../access/decide.ts';
import type { Principal } from '../auth/principal.ts';
import type { Resource } from '../fhir/types.ts';
import { compartmentConstraint, compartmentReferences } from '../fhir/search/compartment.ts';
import { keepMasked } from '../access/minimum-necessary.ts';
import { compartmentMemberTypes, compartmentParams } from '../fhir/compartments.ts';
import { resourceTypes } from '../fhir/definitions.ts';
import type { RelationshipObligation } from '../access/relationship.ts';
import type { ReadableScope } from '../access/smart-scope-rule.ts';
import { holds, type ConsentObligation, type ConsentPolicy, type ResourceCondition } from '../access/consent.ts';
import { factsOf, type AccessFacts, type ResourceFacts } from './access-facts.ts';
import { parseSearch } from '../fhir/search/parse.ts';
import { FhirError, preconditionFailed } from '../fhir/outcome.ts';
import { refuseMaskedSearch } from '../access/masked-search.ts';
import { resolveTerminology } from './search-terminology.ts';

/**
 * What a decision confines an interaction to (the launch patient's compartment, the types and
 * granular queries of the token's scopes), as search constraints. Every path to data goes through
 * them: searches carry them (so includes, counts and paging obey too) and carry them into chains
 * and _has, reads see only resources that satisfy them and only their current version, and writes
 * may neither touch a resource outside them nor leave one outside them.
 */
export class Confinement {
  /** On everything read: matches, included resources, chain and _has targets. */
  readonly constraints: SearchConstraint[];
  /** On what is written: the compartment, and the granular queries of the scopes that permit the write. */
  private readonly writeConstraints: SearchConstraint[];
  /** The launch patient: a write may refer to no other patient by a compartment membership parameter. */
  private readonly patient: string | undefined;
  /** Elements the principal cannot see: its writes keep their stored values. */
  readonly masks: readonly string[];
  /** The rules again, in the form a read checks against the resource it read, without a query. */
  private readonly rules: ReadRules;

  private constructor(constraints: SearchConstraint[], writeConstraints: SearchConstraint[], patient: string | undefined, masks: readonly string[], rules: ReadRules) {
    this.constraints = constraints;
    this.writeConstraints = writeConstraints;
    this.patient = patient;
    this.masks = masks;
    this.rules = rules;
  }

  /**
   * undefined when the obligations confine nothing. The same obligations give the same
   * confinement, built once: its constraints are then the same objects request after request, so
   * what the store derives from them (their SQL, their lists' tables) is derived once too.
   */
  static of(obligations: Obligations, resourceType: string | undefined): Confinement | undefined {
    const key = signature(obligations, resourceType);
    if (built.has(key)) return built.get(key);
    const confinement = Confinement.build(obligations, resourceType);
    if (built.size >= 2000) built.delete(built.keys().next().value!);
    built.set(key, confinement);
    return confinement;
  }

  private static build(obligations: Obligations, resourceType: string | undefined): Confinement | undefined {
    const rules = readRules(obligations);
    const joined = rules.relationship ? relationshipConstraint(rules.relationship) : undefined;
    const read = [...guardConstraints(rules, joined), ...scopeConstraints(rules)];
    const write = guardConstraints(rules, joined);
    if (obligations.anyOfQueries.length > 0) write.push({ anyOf: obligations.anyOfQueries.map((q) => granular(resourceType, q)) });
    if (read.length === 0 && write.length === 0 && obligations.mask.length === 0) return undefined;
    return new Confinement(read, write, obligations.compartmentPatient, obligations.mask, rules);
  }

  /** The clinician whose relationships confine this interaction, if any. */
  get relationship(): RelationshipObligation | undefined {
    return this.rules.relationship;
  }

  /** The same confinement with the clinician's related patients given as a list (no join per row). */
  withRelated(patients: ReadonlySet<string>): Confinement {
    if (this.listed?.patients === patients) return this.listed.confinement;
    const read = [...guardConstraints(this.rules, relatedListConstraint(patients)), ...scopeConstraints(this.rules)];
    const confinement = new Confinement(read, this.writeConstraints, this.patient, this.masks, { ...this.rules, related: patients });
    this.listed = { patients, confinement };
    return confinement;
  }

  /** The last confinement made by withRelated (a clinician's list changes only with commits). */
  private listed: { patients: ReadonlySet<string>; confinement: Confinement } | undefined;

  /**
   * Whether a resource may be read, from its own labels and compartment alone: the same rules as
   * the constraints, evaluated on the resource. undefined when a rule needs the query (a granular
   * scope's search, or a clinician's panel not given as a list).
   */
  admitsFacts(resourceType: string, facts: ResourceFacts): boolean | undefined {
    return admitsByRules(this.rules, resourceType, facts);
  }

  /** A search limited to what the confinement allows, its chains and _has included. */
  constrain(request: SearchRequest): SearchRequest {
    refuseMaskedSearch(request, this.masks);
    return { ...request, criteria: request.criteria.map((c) => this.confineCriterion(c)), constraints: [...(request.constraints ?? []), ...this.constraints] };
  }

  /** Whether the current version of type/id exists, is live and may be read. */
  admits(reader: StoreReader, resourceType: string, id: string): Promise<boolean> {
    return matchesId(reader, resourceType, id, this.constraints);
  }

  /** Whether the current version of type/id exists, is live and may be written. */
  admitsWrite(reader: StoreReader, resourceType: string, id: string): Promise<boolean> {
    return matchesId(reader, resourceType, id, this.writeConstraints);
  }

  /**
   * Whether the clinician is related to this patient (or has broken the glass for it), as `reader`
   * sees it: before a write, so a relationship the write itself creates (a CareTeam or Encounter
   * naming the clinician, a generalPractitioner set to them) does not open the record.
   */
  async relatedBefore(reader: StoreReader, patient: string): Promise<boolean> {
    const r = this.rules.relationship;
    if (!r) return true;
    if (this.rules.emergency.includes(patient)) return true;
    return matchesId(reader, 'Patient', patient, [relationshipConstraint(r)]);
  }

  /** A resource about to be written may name no patient but the launch patient where membership is decided. */
  refersOnlyToPatient(resource: Resource): boolean {
    if (this.patient === undefined) return true;
    if (resource.resourceType === 'Patient') return resource.id === this.patient;
    return compartmentReferences('Patient', resource).every((ref) => ref === `Patient/${this.patient}`);
  }

  /** `facts`: derived from committed data, used when `inner` is the store itself. */
  reader(inner: StoreReader, facts?: AccessFacts): StoreReader {
    return new ConfinedReader(inner, this, facts?.store === inner ? facts : undefined);
  }

  writer(inner: StoreWriter): StoreWriter {
    return new ConfinedWriter(inner, this);
  }

  /** Chain targets and _has sources must themselves be readable: the constraints go inside them too. */
  private confineCriterion(c: SearchCriterion): SearchCriterion {
    switch (c.kind) {
      case 'chain': case 'has':
        return { ...c, criterion: { kind: 'all-of', code: '_access', criteria: [this.confineCriterion(c.criterion), ...this.constraints.map(asCriterion)] } };
      case 'for-types':
        return { ...c, criterion: this.confineCriterion(c.criterion) };
      case 'all-of': case 'any-of':
        return { ...c, criteria: c.criteria.map((part) => this.confineCriterion(part)) };
      case 'composite':
        return { ...c, values: c.values.map((tuple) => tuple.map((part) => this.confineCriterion(part))) };
      case 'list':
        // The List itself must be readable: `_list=x` is `_has:List:item:_id=x`, confined like any _has.
        return this.confineCriterion({ kind: 'has', code: 'item', sourceType: 'List', criterion: { kind: 'token', code: '_id', negate: false, values: c.values.map((code) => ({ code })) } });
      default:
        return c;
    }
  }
}

const built = new Map<string, Confinement | undefined>();
const identities = new WeakMap<object, number>();
let identified = 0;

/** A number for an object that stays the same while it lives (shared arrays of a role, consent obligations). */
function identity(o: object | undefined): number {
  if (!o || (Array.isArray(o) && o.length === 0)) return 0;
  let id = identities.get(o);
  if (!id) identities.set(o, (id = ++identified));
  return id;
}

/** What tells two obligations apart for a confinement (flags only concern the audit). */
function signature(o: Obligations, resourceType: string | undefined): string {
  return JSON.stringify([
    // No readable types at all is not the same as no limit.
    resourceType, identity(o.mask), o.roleReadable?.length === 0 ? 'none' : identity(o.roleReadable), identity(o.consent), o.compartmentPatient, o.anyOfQueries, o.readable,
    o.relationship, o.breakGlass, o.hiddenLabels,
  ]);
}

/** The read rules of a decision, in a form both the constraints and a check of one resource use. */
interface ReadRules {
  compartmentPatient?: string;
  /** `system|code` of the labels a resource must not carry. */
  hiddenLabels?: ReadonlySet<string>;
  relationship?: RelationshipObligation;
  /** The clinician's related patients, once looked up. */
  related?: ReadonlySet<string>;
  /** Break-the-glass patients: their records pass the label and relationship rules. */
  emergency: readonly string[];
  roleReadable?: ReadonlySet<string>;
  /** Types the scopes let be read; '*' any; undefined when some scope has a granular query. */
  readableTypes?: ReadonlySet<string> | '*';
  readable?: readonly ReadableScope[];
  hasGranularRead: boolean;
  /** What Consents withhold from the principal. */
  consent?: ConsentObligation;
}

function readRules(o: Obligations): ReadRules {
  const rules: ReadRules = { emergency: o.breakGlass ?? [], hasGranularRead: false };
  if (o.compartmentPatient !== undefined) rules.compartmentPatient = o.compartmentPatient;
  if (o.hiddenLabels) rules.hiddenLabels = new Set(o.hiddenLabels.map((l) => `${l.system}|${l.code}`));
  if (o.relationship) rules.relationship = o.relationship;
  if (o.consent && o.consent.rules.length > 0) rules.consent = o.consent;
  if (o.roleReadable) rules.roleReadable = new Set(o.roleReadable);
  if (o.readable) {
    rules.readable = o.readable;
    rules.hasGranularRead = o.readable.some((r) => r.query !== undefined);
    rules.readableTypes = o.readable.some((r) => r.type === '*') ? '*' : new Set(o.readable.map((r) => r.type));
  }
  return rules;
}

/**
 * The constraints on whatever is read or written: the compartment, the labels above the clearance,
 * the clinician's relationships (`related`: as a join or as a list of patients), the consents.
 */
function guardConstraints(rules: ReadRules, related: SearchConstraint | undefined): SearchConstraint[] {
  const compartment: SearchConstraint[] = rules.compartmentPatient === undefined ? [] : [patientCompartment(rules.compartmentPatient)];
  const emergency = rules.emergency.flatMap((p) => patientCompartment(p).anyOf);
  // Labels above the clearance: left out of everything read or written, in the query.
  const labels: SearchConstraint[] = rules.hiddenLabels ? [{ anyOf: [hiddenLabelsCriterion(rules.hiddenLabels), ...emergency] }] : [];
  const relatedTo: SearchConstraint[] = related ? [{ anyOf: [...related.anyOf, ...emergency] }] : [];
  // What a consent withholds from the principal it may neither see nor add to.
  const consent = rules.consent ? consentConstraints(rules.consent) : [];
  return [...compartment, ...labels, ...relatedTo, ...consent];
}

/** What reads only are held to: the types the role may read, and the types and queries of the scopes. */
function scopeConstraints(rules: ReadRules): SearchConstraint[] {
  const out: SearchConstraint[] = [];
  if (rules.roleReadable) out.push({ anyOf: [{ kind: 'for-types', code: '_role', resourceTypes: [...rules.roleReadable], criterion: { kind: 'all-of', code: '_role', criteria: [] } }] });
  if (rules.readable) out.push({ anyOf: rules.readable.map((r) => readableCriterion(r.type, r.query)) });
  return out;
}

/**
 * What Consents withhold, as constraints: for each distinct condition, the records of the
 * patients whose consent has it that meet it are left out. Built once per obligation (obligations
 * are shared while the consents and the principal's kind stay the same), so the patient lists
 * keep their identity (and their tables in the store).
 */
function consentConstraints(consent: ConsentObligation): SearchConstraint[] {
  let built = consentBuilt.get(consent);
  if (built) return built;
  const groups = new Map<string, { withheld: ResourceCondition; patients: Set<string> }>();
  for (const rule of consent.rules) {
    const key = JSON.stringify(rule.withheld);
    let group = groups.get(key);
    if (!group) groups.set(key, (group = { withheld: rule.withheld, patients: new Set() }));
    group.patients.add(rule.patient);
  }
  built = [...groups.values()].map(({ withheld, patients }) => ({
    anyOf: [{ kind: 'not', code: '_consent', criterion: { kind: 'all-of', code: '_consent', criteria: [ofPatients(patients), conditionCriterion(withheld)] } }],
  }));
  consentBuilt.set(consent, built);
  return built;
}

const consentBuilt = new WeakMap<ConsentObligation, SearchConstraint[]>();

/** Records of these patients: a Patient by its id, a compartment member by a membership reference. */
function ofPatients(patients: ReadonlySet<string>): SearchCriterion {
  return { kind: 'any-of', code: '_consent', criteria: patientRecords(patients, '_consent') };
}

/**
 * The alternatives that make a resource one of these patients' records: a Patient by its id, a
 * member of the Patient compartment by a membership reference to one of them (the list held as a set).
 */
function patientRecords(patients: ReadonlySet<string>, code: string): SearchCriterion[] {
  const anyOf: SearchCriterion[] = [{ kind: 'for-types', code, resourceTypes: ['Patient'], criterion: { kind: 'in-set', code: '_id', ids: patients } }];
  for (const type of compartmentMemberTypes('Patient')) {
    if (type === 'Patient') continue;
    const through = compartmentParams('Patient', type).map((param): SearchCriterion => ({ kind: 'in-set', code: param, targetType: 'Patient', ids: patients }));
    anyOf.push({ kind: 'for-types', code, resourceTypes: [type], criterion: { kind: 'any-of', code, criteria: through } });
  }
  return anyOf;
}

function conditionCriterion(c: ResourceCondition): SearchCriterion {
  switch (c.kind) {
    case 'always': return { kind: 'all-of', code: '_consent', criteria: [] };
    case 'never': return { kind: 'any-of', code: '_consent', criteria: [] };
    case 'type-in': return { kind: 'for-types', code: '_consent', resourceTypes: c.types, criterion: { kind: 'all-of', code: '_consent', criteria: [] } };
    case 'label-in': return { kind: 'token', code: '_security', negate: false, values: c.labels.map(splitLabel) };
    case 'and': return { kind: 'all-of', code: '_consent', criteria: c.parts.map(conditionCriterion) };
    case 'or': return { kind: 'any-of', code: '_consent', criteria: c.parts.map(conditionCriterion) };
    case 'not': return { kind: 'not', code: '_consent', criterion: conditionCriterion(c.part) };
  }
}

/** `system|code` as a token value; `|code` (a consent's label given without a system): that code in any system. */
function splitLabel(label: string): { system?: string; code: string } {
  const bar = label.lastIndexOf('|');
  return bar <= 0 ? { code: label.slice(bar + 1) } : { system: label.slice(0, bar), code: label.slice(bar + 1) };
}

/** Whether a Consent withholds this resource (of these patients, type and labels) from the principal. */
function withheldByConsent(consent: ConsentObligation, resourceType: string, facts: ResourceFacts): boolean {
  return consent.rules.some((rule) => facts.patients.includes(rule.patient) && holds(rule.withheld, resourceType, facts.labels));
}

function hiddenLabelsCriterion(hidden: ReadonlySet<string>): SearchCriterion {
  return { kind: 'token', code: '_security', negate: true, values: [...hidden].map(splitLabel) };
}

/** The read rules evaluated on one resource's facts (see Confinement.admitsFacts). */
function admitsByRules(rules: ReadRules, resourceType: string, facts: ResourceFacts): boolean | undefined {
  if (rules.hasGranularRead || (rules.relationship && !rules.related)) return undefined;
  if (rules.readableTypes !== undefined && rules.readableTypes !== '*' && !rules.readableTypes.has(resourceType)) return false;
  if (rules.roleReadable && !rules.roleReadable.has(resourceType)) return false;
  if (rules.compartmentPatient !== undefined && !facts.patients.includes(rules.compartmentPatient)) return false;
  if (rules.consent && withheldByConsent(rules.consent, resourceType, facts)) return false;
  const emergency = rules.emergency.length > 0 && facts.patients.some((p) => rules.emergency.includes(p));
  if (emergency) return true;
  const hidden = rules.hiddenLabels;
  if (hidden && facts.labels.some((l) => hidden.has(l))) return false;
  if (rules.related) {
    const related = rules.related;
    // Outside every patient's compartment (organisations, definitions), nothing to be related to.
    if (resourceType !== 'Patient' && !patientCompartmentTypes().has(resourceType)) return true;
    return facts.patients.some((p) => related.has(p));
  }
  return true;
}

let memberTypes: ReadonlySet<string> | undefined;
function patientCompartmentTypes(): ReadonlySet<string> {
  return (memberTypes ??= new Set(compartmentMemberTypes('Patient')));
}

/** The relationship rule with the clinician's patients as a list: a Patient by its id, a member by a membership reference. */
function relatedListConstraint(patients: ReadonlySet<string>): SearchConstraint {
  let built = relatedLists.get(patients);
  if (built) return built;
  const outside = [...resourceTypes()].filter((t) => t !== 'Patient' && !patientCompartmentTypes().has(t));
  const anyOf: SearchCriterion[] = [
    ...patientRecords(patients, '_rel'),
    { kind: 'for-types', code: '_rel', resourceTypes: outside, criterion: { kind: 'all-of', code: '_rel', criteria: [] } },
  ];
  relatedLists.set(patients, (built = { anyOf }));
  return built;
}

const relatedLists = new WeakMap<ReadonlySet<string>, SearchConstraint>();

/**
 * Records of patients the clinician is related to, and anything not in a patient's compartment at
 * all (organisations, practitioners, definitions): a Patient by its relationships; a member of the
 * Patient compartment through a membership reference to such a Patient.
 */
function relationshipConstraint(r: RelationshipObligation): SearchConstraint {
  return remembered(relationshipConstraints, `${r.practitioner ?? ''}|${r.kinds.join(',')}`, () => buildRelationshipConstraint(r));
}

/**
 * A patient's compartment over every type that can be in it, so included resources are held to it
 * too. The same for every request of a patient-scoped token: built once.
 */
function patientCompartment(patient: string): SearchConstraint {
  return remembered(patientCompartments, patient, () => compartmentConstraint('Patient', patient, compartmentMemberTypes('Patient')));
}

const relationshipConstraints = new Map<string, SearchConstraint>();
const patientCompartments = new Map<string, SearchConstraint>();

/** `build()` once per key (they span every compartment type, and requests repeat them), keeping the newest 1,000. */
function remembered(cache: Map<string, SearchConstraint>, key: string, build: () => SearchConstraint): SearchConstraint {
  let built = cache.get(key);
  if (!built) {
    if (cache.size >= 1000) cache.delete(cache.keys().next().value!);
    cache.set(key, (built = build()));
  }
  return built;
}

/** Whether a Patient is related to the clinician (the Patient part of the relationship constraint). */
function relationshipCriterion(r: RelationshipObligation): SearchCriterion {
  const forPatient = relationshipConstraint(r).anyOf[0];
  return forPatient.kind === 'for-types' ? forPatient.criterion : forPatient;
}

function buildRelationshipConstraint(r: RelationshipObligation): SearchConstraint {
  const related: SearchCriterion[] = [];
  const who = r.practitioner ? [{ type: r.practitioner.split('/')[0], id: r.practitioner.split('/')[1] }] : [];
  if (who.length > 0) {
    if (r.kinds.includes('care-team')) {
      related.push({ kind: 'has', code: 'subject', sourceType: 'CareTeam', criterion: { kind: 'all-of', code: '_rel', criteria: [
        { kind: 'reference', code: 'participant', values: who },
        { kind: 'token', code: 'status', negate: false, values: [{ code: 'active' }] },
      ] } });
    }
    if (r.kinds.includes('encounter')) related.push({ kind: 'has', code: 'subject', sourceType: 'Encounter', criterion: { kind: 'reference', code: 'participant', values: who } });
    if (r.kinds.includes('general-practitioner')) related.push({ kind: 'reference', code: 'general-practitioner', values: who });
  }
  const isRelated: SearchCriterion = { kind: 'any-of', code: '_rel', criteria: related };
  const members = compartmentMemberTypes('Patient').filter((t) => t !== 'Patient');
  const anyOf: SearchCriterion[] = [{ kind: 'for-types', code: '_rel', resourceTypes: ['Patient'], criterion: isRelated }];
  for (const type of members) {
    const through = compartmentParams('Patient', type).map((code): SearchCriterion => ({ kind: 'chain', code, targetTypes: ['Patient'], criterion: isRelated }));
    anyOf.push({ kind: 'for-types', code: '_rel', resourceTypes: [type], criterion: { kind: 'any-of', code: '_rel', criteria: through } });
  }
  const outside = [...resourceTypes()].filter((t) => t !== 'Patient' && !members.includes(t));
  anyOf.push({ kind: 'for-types', code: '_rel', resourceTypes: outside, criterion: { kind: 'all-of', code: '_rel', criteria: [] } });
  return { anyOf };
}

function asCriterion(constraint: SearchConstraint): SearchCriterion {
  return { kind: 'any-of', code: '_access', criteria: constraint.anyOf };
}

async function matchesId(reader: StoreReader, resourceType: string, id: string, all: SearchConstraint[]): Promise<boolean> {
  // Only the parts of each constraint about this type: a clinician's spans every compartment type.
  const constraints = all.map((k) => forType(k, resourceType));
  const request: SearchRequest = {
    resourceTypes: [resourceType], criteria: [{ kind: 'token', code: '_id', negate: false, values: [{ code: id }] }],
    // A count, not a page: whether the row passes is all that is asked, its content is not read.
    sort: [], count: 0, offset: 0, total: 'accurate', include: [], revinclude: [], constraints, probeConstraints: true,
  };
  await resolveTerminology(request, reader);
  return ((await reader.search(request)).total ?? 0) > 0;
}

const narrowed = new WeakMap<SearchConstraint, Map<string, SearchConstraint>>();

/** The constraint's alternatives that can apply to resources of `type` (cached: constraints are reused). */
function forType(constraint: SearchConstraint, type: string): SearchConstraint {
  let byType = narrowed.get(constraint);
  if (!byType) narrowed.set(constraint, (byType = new Map()));
  let k = byType.get(type);
  if (!k) byType.set(type, (k = { anyOf: constraint.anyOf.filter((c) => c.kind !== 'for-types' || c.resourceTypes.includes(type)) }));
  return k;
}

/** Resources of a readable scope's type (any type for `*`) matching its granular query, if any. */
function readableCriterion(type: string, query: [string, string][] | undefined): SearchCriterion {
  const criterion = query ? granular(type === '*' ? undefined : type, query) : { kind: 'all-of' as const, code: '_scope', criteria: [] };
  return type === '*' ? criterion : { kind: 'for-types', code: '_scope', resourceTypes: [type], criterion };
}

/**
 * A reader for the searches a transaction makes on the principal's behalf before its entries run
 * (conditional references, If-None-Exist, conditional update matching): decided as a search of
 * that type and confined like one, so a lookup tells nothing a search would not.
 */
export function searchReaderFor(principal: Principal, reader: StoreReader, resourceType: string, consents: readonly ConsentPolicy[]): StoreReader {
  const decision = decide(principal, { kind: 'search-type', resourceType }, Date.now(), consents);
  if (!decision.permit) throw new FhirError(403, `Access denied: ${decision.reasons.join('; ')}`, 'forbidden');
  const confinement = Confinement.of(decision.obligations, resourceType);
  return confinement ? confinement.reader(reader) : reader;
}

/** A granular scope's query as one criterion: all its parameters hold (parsed strictly, as a client's search would be). */
function granular(resourceType: string | undefined, query: [string, string][]): SearchCriterion {
  const { request } = parseSearch(resourceType, query, { maxCount: 1, defaultCount: 1, lenient: false });
  return { kind: 'all-of', code: '_scope', criteria: request.criteria };
}

/** Versions of one resource a confined history filters at most. */
const maxFilteredVersions = 1000;

function historyRefused(): FhirError {
  return new FhirError(403, 'History across a type or the system is not available to a token confined to a patient, relationships, labels or granular scopes (earlier versions may lie outside them); ask for one resource\'s history, or search', 'forbidden');
}

function refused(what: string): FhirError {
  return new FhirError(403, `Access denied: this token may not ${what} (it is confined to a patient compartment or to granular scopes)`, 'forbidden');
}

/** Reads that treat what lies outside the confinement as if it did not exist (404, not 403: its existence is not told). */
class ConfinedReader implements StoreReader {
  protected readonly inner: StoreReader;
  protected readonly confinement: Confinement;
  private readonly facts: AccessFacts | undefined;

  constructor(inner: StoreReader, confinement: Confinement, facts?: AccessFacts) {
    this.inner = inner;
    this.confinement = confinement;
    this.facts = facts;
  }

  async read(resourceType: string, id: string): Promise<StoredResource | undefined> {
    const r = await this.inner.read(resourceType, id);
    if (!r || r.deleted || r.json === undefined) return undefined;
    if (this.facts) {
      const pending = this.withFacts(this.facts);
      const confinement = pending instanceof Promise ? await pending : pending;
      const admitted = confinement.admitsFacts(resourceType, this.facts.of(r as StoredResource & { json: string }));
      if (admitted !== undefined) return admitted ? r : undefined;
    }
    return (await this.confinement.admits(this.inner, resourceType, id)) ? r : undefined;
  }

  /** The confinement with the clinician's patients as a list, when they are few enough to be one. */
  private withFacts(facts: AccessFacts): Confinement | Promise<Confinement> {
    const r = this.confinement.relationship;
    if (!r) return this.confinement;
    const patients = facts.relatedPatients(r, relationshipCriterion(r));
    const confined = (known: ReadonlySet<string> | undefined) => (known ? this.confinement.withRelated(known) : this.confinement);
    return patients instanceof Promise ? patients.then(confined) : confined(patients);
  }

  /**
   * An earlier version only where the current one may be read and that version passes the rules
   * itself (it may have been filed for another patient, or carried a label above the clearance).
   */
  async vread(resourceType: string, id: string, versionId: string): Promise<StoredResource | undefined> {
    const current = await this.read(resourceType, id);
    if (!current) return undefined;
    if (current.versionId === versionId) return current;
    if (!this.facts) return undefined;
    const earlier = await this.inner.vread(resourceType, id, versionId);
    if (!earlier || earlier.deleted || earlier.json === undefined) return undefined;
    return (await this.withFacts(this.facts)).admitsFacts(resourceType, factsOf(JSON.parse(earlier.json) as Resource)) === true ? earlier : undefined;
  }

  /**
   * Instance history: the versions that pass the rules themselves, of a resource whose current
   * version may be read (none otherwise, as for an id that does not exist). Type and system
   * history would have to filter across pages, which keeps neither totals nor paging honest: refused.
   */
  async history(query: HistoryQuery): Promise<HistoryPage> {
    const { resourceType, id } = query;
    if (resourceType === undefined || id === undefined || !this.facts) throw historyRefused();
    const current = await this.read(resourceType, id);
    if (!current) return { entries: [], total: 0 };
    const confinement = await this.withFacts(this.facts);
    if (confinement.admitsFacts(resourceType, this.facts.of(current as StoredResource & { json: string })) === undefined) throw historyRefused();
    const all = await this.inner.history({ ...query, count: maxFilteredVersions, offset: 0 });
    if (all.total > maxFilteredVersions) throw new FhirError(403, `History of more than ${maxFilteredVersions} versions is not available to a confined token`, 'forbidden');
    // A deletion marker tells only that the resource was deleted once: it has no content to hide.
    const kept = all.entries.filter((e) => e.deleted || e.json === undefined || confinement.admitsFacts(resourceType, factsOf(JSON.parse(e.json) as Resource)) === true);
    return { entries: kept.slice(query.offset, query.offset + query.count), total: kept.length };
  }

  async search(request: SearchRequest): Promise<SearchResult> {
    const pending = this.facts ? this.withFacts(this.facts) : this.confinement;
    const confinement = pending instanceof Promise ? await pending : pending;
    const constrained = confinement.constrain(request);
    // A granular scope may itself use :in / :below (looked up unconfined: definitions, not records).
    await resolveTerminology(constrained, this.inner);
    return this.inner.search(constrained);
  }
}

/**
 * Writes inside the confinement only: the resource before (if any) and after must both be admitted,
 * and a write must not tell whether a resource the principal cannot see exists.
 */
class ConfinedWriter extends ConfinedReader implements StoreWriter {
  private readonly writer: StoreWriter;

  constructor(inner: StoreWriter, confinement: Confinement) {
    super(inner, confinement);
    this.writer = inner;
    if (inner.lock) this.lock = (key) => inner.lock!(key);
  }

  lock?: (key: string) => Promise<void>;

  async create(resource: Resource & { id: string }): Promise<StoredResource> {
    this.mustReferOnlyToPatient(resource);
    await this.mustBeRelatedBefore(resource, true);
    if (this.confinement.masks.length > 0) keepMasked(resource as Record<string, unknown>, undefined, this.confinement.masks);
    const stored = await this.writer.create(resource);
    await this.mustAdmit(resource.resourceType, resource.id, 'create');
    return stored;
  }

  async update(resource: Resource & { id: string }, options?: UpdateOptions): Promise<UpdateResult> {
    this.mustReferOnlyToPatient(resource);
    const current = await this.visible(resource.resourceType, resource.id);
    // Update as create with an id of the client's choosing would answer "taken" for a hidden resource.
    if (!current && !options?.serverAssignedId) throw refused('create a resource by PUT with an id of its choosing, or update one it cannot see (use POST to create)');
    if (current) await this.mustAdmit(resource.resourceType, resource.id, 'change');
    await this.mustBeRelatedBefore(resource, !current);
    if (this.confinement.masks.length > 0) {
      keepMasked(resource as Record<string, unknown>, current?.json ? JSON.parse(current.json) as Record<string, unknown> : undefined, this.confinement.masks);
    }
    const result = await this.writer.update(resource, options);
    await this.mustAdmit(resource.resourceType, resource.id, 'leave');
    return result;
  }

  /** What cannot be seen is answered as what does not exist: nothing to delete. */
  async delete(resourceType: string, id: string, options?: UpdateOptions): Promise<StoredResource | undefined> {
    if (!(await this.visible(resourceType, id))) {
      if (options?.ifMatch !== undefined) throw preconditionFailed(`${resourceType}/${id} does not exist, so it cannot be at version ${options.ifMatch}`);
      return undefined;
    }
    await this.mustAdmit(resourceType, id, 'delete');
    return this.writer.delete(resourceType, id, options);
  }

  /** The current version, if it is live and the principal may read it. */
  private async visible(resourceType: string, id: string): Promise<StoredResource | undefined> {
    const current = await this.writer.read(resourceType, id);
    if (!current || current.deleted) return undefined;
    return (await this.confinement.admits(this.writer, resourceType, id)) ? current : undefined;
  }

  /** Every patient the new content names must be related already (a Patient being created is new to everyone). */
  private async mustBeRelatedBefore(resource: Resource & { id: string }, isNew: boolean): Promise<void> {
    if (!this.confinement.relationship) return;
    const patients = resource.resourceType === 'Patient' ? (isNew ? [] : [resource.id]) : factsOf(resource).patients;
    for (const p of patients) {
      if (!(await this.confinement.relatedBefore(this.writer, p))) {
        throw refused('write the record of a patient it has no care relationship with (a relationship the write itself would create does not count)');
      }
    }
  }

  private mustReferOnlyToPatient(resource: Resource): void {
    if (!this.confinement.refersOnlyToPatient(resource)) throw refused('write a resource that refers to another patient');
  }

  /** Throwing inside the store transaction rolls the write back. */
  private async mustAdmit(resourceType: string, id: string, verb: string): Promise<void> {
    if (await this.confinement.admitsWrite(this.writer, resourceType, id)) return;
    throw refused(verb === 'leave' ? 'leave a resource outside what it may write' : `${verb} a resource outside what it may write`);
  }
}
