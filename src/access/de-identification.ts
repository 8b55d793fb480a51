import { resourceDefinitions, searchParameterDefinitions, typeDefinitions } from '../fhir/definitions.ts';
import type { Pseudonyms } from './pseudonyms.ts';

/**
 * HIPAA Safe Harbor de-identification (45 CFR 164.514(b)(2)) for the researcher role: the 18
 * identifier kinds (A) names ... (R) any other unique number, removed or generalised, as a pure
 * transform over resource JSON. It is a generic walk, not a per-resource list, so elements nobody
 * listed (a new resource type, an extension) are still covered by the shape rules: any date becomes
 * its year, any Reference loses its display, any Identifier/ContactPoint/Address is removed or cut.
 * Coded free text (CodeableConcept.text, valueString) is kept: it is clinical content, not a field
 * meant for identifiers; the narrative and annotations, where people write names, are removed.
 */

type Json = Record<string, unknown>;

export const pseudonymizedLabel = { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'PSEUDED', display: 'pseudonymized' };
export const ageCategoryUrl = 'https://bastion.dev/fhir/StructureDefinition/age-category';
const dataAbsentReasonUrl = 'http://hl7.org/fhir/StructureDefinition/data-absent-reason';
const ucum = 'http://unitsofmeasure.org';

/** Elements removed wherever they occur: their whole purpose is to identify or reach a person. */
const removedEverywhere = new Set([
  'identifier', // (H) MRNs, (I) plan beneficiary, (J) account, (K) licence numbers, (R) any other
  'masterIdentifier', // (R) document ids
  'telecom', // (D) phone, (E) fax, (F) email
  'photo', // (Q) full-face photographs
  'note', // Annotation free text: names and dates written by hand, which no rule can parse
  'signature', // signs the original, identified content and names the signer
]);

let identifierNames: ReadonlySet<string> | undefined;

/**
 * (R) any other unique identifying number: the elements whose type is Identifier in R4 wherever
 * they occur, whatever they are called (Specimen.accessionIdentifier, ServiceRequest.requisition,
 * Task.groupIdentifier, Encounter.hospitalization.preAdmissionIdentifier, valueIdentifier, ...),
 * read from the StructureDefinitions. Names that are Identifiers in one place and something else in
 * another (`component`, `reference`) are left to the shape rule (isIdentifierShaped).
 */
function identifierElementNames(): ReadonlySet<string> {
  if (!identifierNames) {
    const kinds = new Map<string, Set<string>>();
    const note = (name: string, code: string) => {
      let set = kinds.get(name);
      if (!set) kinds.set(name, (set = new Set()));
      set.add(code);
    };
    for (const defs of [resourceDefinitions(), typeDefinitions()]) {
      for (const sd of defs.values()) {
        for (const e of sd.snapshot?.element ?? []) {
          const name = e.path.split('.').at(-1)!;
          const types = e.type ?? [{ code: 'BackboneElement' }];
          if (name.endsWith('[x]')) for (const t of types) note(`${name.slice(0, -3)}${t.code[0].toUpperCase()}${t.code.slice(1)}`, t.code);
          else for (const t of types) note(name, t.code);
        }
      }
    }
    identifierNames = new Set([...kinds].filter(([, codes]) => codes.size === 1 && codes.has('Identifier')).map(([name]) => name));
  }
  return identifierNames;
}

/**
 * Whether a search parameter's expression ends in an element the view removes as an identifier
 * (`Specimen.accessionIdentifier`, `ServiceRequest.requisition`): searching it would be a lookup
 * by the identifier itself.
 */
export function reachesIdentifier(expression: string | undefined): boolean {
  if (!expression) return false;
  return expression.split('|').some((part) => {
    const path = part.trim().replace(/^\(+/, '').replace(/\.where\(.*$/, '').replace(/\s+as\s+\w+\)?$/, '').replace(/\)+$/, '');
    const last = path.split('.').at(-1) ?? '';
    return last === 'identifier' || last === 'masterIdentifier' || identifierElementNames().has(last);
  });
}

/** An Identifier (or ContactPoint) by its shape: a string value with a system, type, use or assigner, and no code. */
function isIdentifierShaped(v: Json): boolean {
  return typeof v.value === 'string' && ('system' in v || 'type' in v || 'use' in v || 'assigner' in v) && !('code' in v) && !('url' in v);
}

/** Elements removed from one resource type. */
const removedByType: Record<string, readonly string[]> = {
  Patient: ['name', 'contact'], // (A) names; contact: relatives' names, phones, addresses
  RelatedPerson: ['name'], // (A) names of relatives and household members
  Person: ['name'],
  Practitioner: ['name'],
  Device: ['serialNumber', 'udiCarrier', 'lotNumber', 'distinctIdentifier', 'url'], // (M) device identifiers and serial numbers, (N) URLs
  Coverage: ['subscriberId'], // (I) health plan beneficiary numbers
  Location: ['position'], // (B) geographic units smaller than a state
  Binary: ['data'], // an unparsed document: any identifier may be inside
};

/** Resources whose birthDate falls under the ages-over-89 rule: the patient and the people around them. */
const peopleTypes = new Set(['Patient', 'RelatedPerson', 'Person', 'Practitioner']);

/** Extensions that exist to carry an identifier kind: removed whole, not walked. */
const identifyingExtensionUrl = /mothersMaidenName|birthPlace|geolocation/;
const identifyingExtensionValues = ['valueAddress', 'valueHumanName', 'valueContactPoint', 'valueIdentifier'];

/** Keys holding an Address; anywhere else a key named `address` is a string (Endpoint's URL). */
const addressKeys = new Set(['address', 'locationAddress', 'valueAddress']);
const attachmentKeys = new Set(['attachment', 'presentedForm', 'valueAttachment', 'contentAttachment', 'content']);
const humanNameKeys = new Set(['id', 'extension', 'use', 'text', 'family', 'given', 'prefix', 'suffix', 'period', '_use', '_text', '_family', '_given', '_prefix', '_suffix']);

/**
 * The 3-digit ZIP prefixes whose area held 20,000 people or fewer (2000 Census, as HHS lists
 * them): Safe Harbor (B) requires them to be reported as 000.
 */
const restrictedZip3 = new Set(['036', '059', '063', '102', '203', '556', '692', '790', '821', '823', '830', '831', '878', '879', '884', '890', '893']);

/** FHIR R4 dateTime (date and instant are subsets of it), from the specification. */
const fhirDateTime =
  /^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?$/;
/** Codes, URIs and ids that could look like a date but are never one. */
const neverDates = new Set(['code', 'system', 'version', 'id', 'url', 'reference', 'uid', 'contentType', 'language', 'unit', 'currency']);

/** Years per UCUM time unit, for Age and Duration quantities. */
const yearsPerUnit: Record<string, number> = { a: 1, mo: 12, wk: 52.1775, d: 365.25 };

interface Context {
  pseudonyms: Pseudonyms;
  now: Date;
  /** urn:uuid fullUrls of the enclosing Bundles -> Type/id, so links inside a transaction survive. */
  fullUrls: ReadonlyMap<string, string>;
}

/** A de-identified copy of `resource` (a Bundle: every entry); the input is never modified. */
export function deIdentify(resource: Record<string, unknown>, pseudonyms: Pseudonyms, now: Date = new Date()): Record<string, unknown> {
  return deIdentifyResource(resource, { pseudonyms, now, fullUrls: new Map() }, false);
}

function deIdentifyResource(resource: Json, outer: Context, contained: boolean): Json {
  const type = typeof resource.resourceType === 'string' ? resource.resourceType : '';
  const ctx = type === 'Bundle' ? { ...outer, fullUrls: bundleFullUrls(resource, outer) } : outer;
  const removed = Object.hasOwn(removedByType, type) ? removedByType[type] : [];
  const out: Json = {};
  for (const [key, value] of Object.entries(resource)) {
    const base = key.replace(/^_/, '');
    if (removedEverywhere.has(base) || removed.includes(base) || identifierElementNames().has(base)) continue;
    if (base === 'address' && typeof value === 'string' && type !== 'Endpoint') continue;
    const cleaned =
      key === 'id' ? pseudonymousId(type, value, ctx, contained)
      : key === 'meta' ? undefined // rebuilt below
      : type === 'Bundle' && key === 'entry' ? cleanArray(value, (e) => cleanEntry(e, ctx))
      : clean(value, key, ctx);
    if (cleaned !== undefined) out[key] = cleaned;
  }
  const meta = cleanMeta(resource.meta, ctx, contained);
  if (meta) out.meta = meta;
  if (peopleTypes.has(type)) applyAgeCeiling(resource, out, ctx.now);
  return out;
}

/**
 * Contained ids stay: they are local anchors (`#referral`), meaningless outside the resource, and
 * the `#` references pointing at them are kept as they are.
 */
function pseudonymousId(type: string, id: unknown, ctx: Context, contained: boolean): unknown {
  if (typeof id !== 'string') return undefined;
  if (contained) return id;
  return /^[A-Z][A-Za-z]*$/.test(type) ? ctx.pseudonyms.encode(type, id) : undefined;
}

/**
 * Only the labels survive: version ids and lastUpdated would date the record to the second, and
 * source names the system (and often the device or person) it came from. PSEUDED tells every
 * consumer this copy is not the record.
 */
function cleanMeta(meta: unknown, ctx: Context, contained: boolean): Json | undefined {
  const m = isObject(meta) ? meta : {};
  const security = (Array.isArray(m.security) ? m.security.map((c) => clean(c, 'security', ctx)) : []).filter(isObject);
  if (!contained && !security.some((c) => c.system === pseudonymizedLabel.system && c.code === pseudonymizedLabel.code)) security.push({ ...pseudonymizedLabel });
  const tag = (Array.isArray(m.tag) ? m.tag.map((c) => clean(c, 'tag', ctx)) : []).filter(isObject);
  const out: Json = {};
  if (security.length) out.security = security;
  if (tag.length) out.tag = tag;
  return Object.keys(out).length ? out : undefined;
}

/**
 * (C) ages over 89, and all dates indicative of such age, are aggregated into "90 or older". The
 * age is counted at death for the deceased; a birth year alone may make someone born late in the
 * year count as 90 a few months early, which errs on the side of removing.
 */
function applyAgeCeiling(original: Json, out: Json, now: Date): void {
  if (typeof original.birthDate !== 'string') return;
  const born = Number(original.birthDate.slice(0, 4));
  const died = typeof original.deceasedDateTime === 'string' ? Number(original.deceasedDateTime.slice(0, 4)) : NaN;
  const atYear = Number.isFinite(died) ? died : now.getUTCFullYear();
  if (!(atYear - born >= 90)) return;
  delete out.birthDate;
  delete out._birthDate;
  out.extension = [...(Array.isArray(out.extension) ? out.extension : []), { url: ageCategoryUrl, valueString: '90 or older' }];
  if ('deceasedDateTime' in out || '_deceasedDateTime' in out) {
    delete out.deceasedDateTime;
    delete out._deceasedDateTime;
    out.deceasedBoolean = true;
  }
}

/** The generic walk: returns the de-identified value, or undefined when it must go entirely. */
function clean(value: unknown, key: string, ctx: Context): unknown {
  if (Array.isArray(value)) return cleanArray(value, (v) => clean(v, key, ctx));
  if (typeof value === 'string') return neverDates.has(key) ? value : generaliseDate(value);
  if (!isObject(value)) return value;
  if (typeof value.resourceType === 'string') return deIdentifyResource(value, ctx, key === 'contained');
  if ((key === 'extension' || key === 'modifierExtension') && isIdentifyingExtension(value)) return undefined;
  if (key === 'text' && 'div' in value) return undefined; // narrative: free text, any of the 18 kinds
  if (key === 'name' && isHumanName(value)) return undefined; // (A) names, of whoever they are
  if (addressKeys.has(key)) return masked(value, reduceAddress(value));
  if (isIdentifierShaped(value)) return undefined; // (R) an identifier under a name the definitions share with other types
  const result =
    isReference(value) ? cleanReference(value, ctx)
    : isAgeOver89(value) ? { ...cleanObject(value, ctx), value: 90, comparator: '>=', code: 'a', ...(value.code === 'a' ? {} : { unit: 'years' }) }
    : attachmentKeys.has(key) || isAttachment(value) ? cleanObject(value, ctx, ['url', 'data', 'title', 'hash']) // (N) URLs; data/title: unparsed content
    : cleanObject(value, ctx);
  if ((key === 'extension' || key === 'modifierExtension') && Object.keys(result).every((k) => k === 'url' || k === 'id')) return undefined;
  return masked(value, result);
}

function cleanObject(value: Json, ctx: Context, drop: readonly string[] = []): Json {
  const out: Json = {};
  for (const [key, v] of Object.entries(value)) {
    const base = key.replace(/^_/, '');
    if (removedEverywhere.has(base) || drop.includes(base) || identifierElementNames().has(base)) continue;
    // A string address is a network address (AuditEvent.agent.network.address): (O) IP addresses.
    if (base === 'address' && typeof v === 'string') continue;
    const cleaned = key === 'uid' && typeof v === 'string' ? ctx.pseudonyms.uid(v) : clean(v, key, ctx);
    if (cleaned !== undefined) out[key] = cleaned;
  }
  return out;
}

function cleanArray(values: unknown, each: (v: unknown) => unknown): unknown[] | undefined {
  if (!Array.isArray(values)) return undefined;
  const out = values.map(each).filter((v) => v !== undefined);
  return out.length ? out : undefined;
}

/**
 * An element left with nothing says so (data-absent-reason `masked`) rather than vanishing: a
 * required Reference or Address stays present, and readers can tell removal from absence.
 */
function masked(original: Json, result: Json): Json {
  if (Object.keys(result).length || !Object.keys(original).length) return result;
  return { extension: [{ url: dataAbsentReasonUrl, valueCode: 'masked' }] };
}

function generaliseDate(value: string): string {
  // (C) all elements of dates except the year.
  return value.length > 4 && fhirDateTime.test(value) ? value.slice(0, 4) : value;
}

/** (B) geographic subdivisions smaller than a state: only the state and a 3-digit ZIP remain. */
function reduceAddress(address: Json): Json {
  const out: Json = {};
  for (const key of ['use', 'type', 'state', 'country']) if (typeof address[key] === 'string') out[key] = address[key];
  const zip = typeof address.postalCode === 'string' ? /^(\d{3})\d{2}(-?\d{4})?$/.exec(address.postalCode.trim()) : null;
  // Anything not a US ZIP (a Canadian FSA, a UK postcode) is finer than 3 digits of ZIP: dropped.
  if (zip) out.postalCode = restrictedZip3.has(zip[1]) ? '000' : zip[1];
  return out;
}

/** Displays are removed (they usually repeat the target's name) and so is Reference.identifier. */
function cleanReference(ref: Json, ctx: Context): Json {
  const out = cleanObject(ref, ctx, ['reference', 'display']);
  if (typeof ref.reference === 'string') {
    const rewritten = ctx.pseudonyms.rewriteReference(ctx.fullUrls.get(ref.reference) ?? ref.reference);
    if (rewritten !== undefined) out.reference = rewritten;
  }
  return out;
}

function cleanEntry(entry: unknown, ctx: Context): unknown {
  if (!isObject(entry)) return undefined;
  const out: Json = {};
  for (const [key, value] of Object.entries(entry)) {
    if (key === 'fullUrl' && typeof value === 'string') {
      const fullUrl = ctx.pseudonyms.rewriteReference(ctx.fullUrls.get(value) ?? value);
      if (fullUrl && !fullUrl.startsWith('#')) out.fullUrl = fullUrl;
    } else if (key === 'request') {
      const request = cleanRequest(value, ctx);
      if (request) out.request = request;
    } else if (key === 'response') {
      const response = cleanResponse(value, ctx);
      if (response) out.response = response;
    } else {
      const cleaned = clean(value, key, ctx);
      if (cleaned !== undefined) out[key] = cleaned;
    }
  }
  return out;
}

/** Conditional headers (ifNoneExist=identifier=..., etags) can carry identifiers and versions. */
function cleanRequest(request: unknown, ctx: Context): Json | undefined {
  if (!isObject(request) || typeof request.url !== 'string') return undefined;
  const url = /^[A-Z][A-Za-z]+$/.test(request.url) ? request.url : ctx.pseudonyms.rewriteReference(request.url);
  if (!url || url.startsWith('#')) return undefined;
  return typeof request.method === 'string' ? { method: request.method, url } : { url };
}

/** The outcome's diagnostics are free text; etag and lastModified are versions and instants. */
function cleanResponse(response: unknown, ctx: Context): Json | undefined {
  if (!isObject(response) || typeof response.status !== 'string') return undefined;
  const location = typeof response.location === 'string' ? ctx.pseudonyms.rewriteReference(response.location) : undefined;
  return location && !location.startsWith('#') ? { status: response.status, location } : { status: response.status };
}

/**
 * A transaction links its entries by `urn:uuid:` fullUrls, which are not ids and are dropped by
 * rewriteReference; resolved to the entry's Type/id first, the links survive as pseudonyms.
 */
function bundleFullUrls(bundle: Json, outer: Context): Map<string, string> {
  const map = new Map(outer.fullUrls);
  for (const entry of Array.isArray(bundle.entry) ? bundle.entry : []) {
    if (!isObject(entry) || typeof entry.fullUrl !== 'string' || !isObject(entry.resource)) continue;
    const { resourceType, id } = entry.resource;
    const uuid = /^urn:uuid:([A-Za-z0-9\-.]{1,64})$/.exec(entry.fullUrl)?.[1];
    if (typeof resourceType !== 'string' || !entry.fullUrl.startsWith('urn:')) continue;
    // A POSTed entry may have no id yet: its urn:uuid stands in for one within the Bundle.
    const target = typeof id === 'string' ? id : uuid;
    if (target) map.set(entry.fullUrl, `${resourceType}/${target}`);
  }
  return map;
}

function isIdentifyingExtension(ext: Json): boolean {
  if (typeof ext.url === 'string' && identifyingExtensionUrl.test(ext.url)) return true;
  return identifyingExtensionValues.some((k) => k in ext);
}

function isHumanName(value: Json): boolean {
  return Object.keys(value).every((k) => humanNameKeys.has(k));
}

/** A Reference, or a display-only reference (`{display: 'Mr Smith'}`), which a Coding never is. */
function isReference(value: Json): boolean {
  if (typeof value.reference === 'string') return true;
  return 'display' in value && !('code' in value) && !('system' in value);
}

function isAttachment(value: Json): boolean {
  return 'contentType' in value || 'data' in value || 'hash' in value;
}

/** (C) an Age (or any UCUM time quantity) above 89 years. */
function isAgeOver89(value: Json): boolean {
  if (value.system !== ucum || typeof value.value !== 'number' || typeof value.code !== 'string') return false;
  const per = yearsPerUnit[value.code];
  return per !== undefined && value.value / per > 89;
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// ---------------------------------------------------------------------------------------------
// Searching the de-identified view
// ---------------------------------------------------------------------------------------------

export type SearchVerdict = { ok: true } | { ok: false; reason: string };

const allowed: SearchVerdict = { ok: true };
const deny = (reason: string): SearchVerdict => ({ ok: false, reason });

/**
 * Searches run on the real data, so a parameter the view hides is an oracle: `name=Smith` returning
 * one row says who that row is. These parameters match removed or generalised values.
 */
const deniedCodes = new Map<string, string>([
  ['identifier', 'Searching by identifier is not available to researchers: identifiers are removed from the de-identified view.'],
  ['telecom', 'Searching by phone or email is not available to researchers: contact details are removed from the de-identified view.'],
  ['phone', 'Searching by phone is not available to researchers: contact details are removed from the de-identified view.'],
  ['email', 'Searching by email is not available to researchers: contact details are removed from the de-identified view.'],
  ['address-postalcode', 'Searching by postal code is not available to researchers: only 3-digit ZIP prefixes are shown.'],
  ['_text', 'Text search is not available to researchers: it reaches the narrative, which the de-identified view removes.'],
  ['_content', 'Content search is not available to researchers: it reaches free text the de-identified view removes.'],
  ['_filter', '_filter is not available to researchers: it could express any search the de-identified view refuses.'],
  ['death-date', 'Searching by date of death is not available to researchers: it is hidden for people aged 90 or older.'],
  ['near', 'Searching by location coordinates is not available to researchers: positions are removed from the de-identified view.'],
  ['instance', 'Searching by DICOM UID is not available to researchers: UIDs are replaced in the de-identified view.'],
  ['series', 'Searching by DICOM UID is not available to researchers: UIDs are replaced in the de-identified view.'],
]);

/** Result-shaping parameters, which match nothing; _id values are pseudonyms the server decodes. */
const controlParams = new Set(['_id', '_count', '_summary', '_total', '_include', '_revinclude', '_elements', '_type', '_tag', '_security', '_cursor', '_offset']);

const datePrefix = '(?:eq|ne|gt|lt|ge|le|sa|eb|ap)?';
const yearValue = new RegExp(`^${datePrefix}(\\d{4})$`);
const finerDate = new RegExp(`^${datePrefix}\\d{4}-`);
const yearUnits = new Set(['a', 'yr', 'year', 'years']);

/**
 * May a researcher use this search parameter on the de-identified view? `type` is the parameter's
 * FHIR search type; `code` may carry a modifier (`subject:Patient`). Reasons are shown to the user.
 */
export function researcherMaySearch(code: string, type: string, value: string, now: Date = new Date()): SearchVerdict {
  const [base, modifier] = code.split(':');
  // `subject:Patient.birthdate` is a chain too: the type modifier comes before the dot.
  if (code.includes('.') || base === '_has') {
    return deny('Chained searches are not available to researchers: they could probe hidden details of the linked resources.');
  }
  const denied = deniedCodes.get(base);
  if (denied) return deny(denied);
  if (modifier === 'identifier') return deny('The :identifier modifier is not available to researchers: identifiers are removed from the de-identified view.');
  if (base === '_lastUpdated') return yearOnly(value, '_lastUpdated');
  if (base === '_sort') return sortable(value);
  if (base.startsWith('_')) return controlParams.has(base) ? allowed : deny(`${base} is not available to researchers on the de-identified view.`);
  if (type === 'string') return deny(`Text parameters such as ${base} are not available to researchers: names, addresses and other text are removed from the de-identified view.`);
  if (type === 'uri') return deny(`URI parameters such as ${base} are not available to researchers: URLs are removed from the de-identified view.`);
  if (modifier === 'missing') return allowed;
  switch (type) {
    case 'date':
      return base === 'birthdate' ? birthYears(value, now) : yearOnly(value, base);
    case 'quantity':
      return ageOver89(base, value) ? deny(`${base}: ages above 89 are shown only as "90 or older", so they cannot be searched more finely.`) : allowed;
    case 'composite':
      return value.split('$').some((part) => part.split(',').some((v) => finerDate.test(v)))
        ? deny(`${base}: dates can only be searched by year on the de-identified view.`)
        : allowed;
    case 'token':
    case 'reference':
    case 'number':
      return allowed;
    default:
      return deny(`${base} (${type}) is not available to researchers on the de-identified view.`);
  }
}

/** Dates are shown as years; a finer search (`ge1987-03-04`) would probe the real day. */
function yearOnly(value: string, code: string): SearchVerdict {
  return value.split(',').every((v) => yearValue.test(v)) ? allowed : deny(`${code}: dates can only be searched by year (for example ge1950) on the de-identified view.`);
}

/**
 * Birth years of people aged 90 or older are hidden, so a bound inside those years (`lt1925` vs
 * `lt1926`) would tell them apart. Bounds at or after the first visible year only separate
 * visible years.
 */
function birthYears(value: string, now: Date): SearchVerdict {
  const verdict = yearOnly(value, 'birthdate');
  if (!verdict.ok) return verdict;
  const firstVisible = now.getUTCFullYear() - 89;
  return value.split(',').every((v) => Number(yearValue.exec(v)?.[1]) >= firstVisible)
    ? allowed
    : deny(`birthdate: birth years before ${firstVisible} are shown only as "90 or older" and cannot be searched.`);
}

function ageOver89(code: string, value: string): boolean {
  return value.split(',').some((v) => {
    const [number, , unit] = v.split('|');
    const n = Number(number.replace(/^(eq|ne|gt|lt|ge|le|sa|eb|ap)/, ''));
    const inYears = unit === undefined || unit === '' ? code.endsWith('age') : yearUnits.has(unit);
    return inYears && n > 89;
  });
}

/**
 * Sorting runs on the real values, so the order of a page reveals what the view hides: sorted by
 * date it orders records within a year, by name alphabetically, by reference or _id in the order of
 * the real ids. Only parameters whose values the view shows unchanged may sort: codes, numbers and
 * quantities (except ages, capped at 90).
 */
function sortable(value: string): SearchVerdict {
  const types = sortTypes();
  for (const key of value.split(',')) {
    const code = key.replace(/^-/, '');
    const kinds = types.get(code);
    const ok = kinds !== undefined && !deniedCodes.has(code) && !code.endsWith('age') && code !== '_id' && [...kinds].every((k) => k === 'token' || k === 'number' || k === 'quantity');
    if (!ok) return deny(`_sort=${code} is not available to researchers: sorting by it would reveal the order of values the de-identified view hides.`);
  }
  return allowed;
}

let searchTypesByCode: Map<string, Set<string>> | undefined;

/** Every type a search code has in any resource: a code that is a date anywhere counts as a date. */
function sortTypes(): Map<string, Set<string>> {
  if (!searchTypesByCode) {
    searchTypesByCode = new Map();
    for (const byCode of searchParameterDefinitions().values()) {
      for (const [code, def] of byCode) {
        let kinds = searchTypesByCode.get(code);
        if (!kinds) searchTypesByCode.set(code, (kinds = new Set()));
        kinds.add(def.type);
      }
    }
  }
  return searchTypesByCode;
}
