import type { Principal } from '../auth/principal.ts';

/**
 * Consent rule: a patient's active privacy Consent (R4 Consent, scope `patient-privacy`) permits or
 * denies access to their record by actor, purpose of use, resource class, security label and
 * period. The root provision is the base rule and nested provisions are its exceptions, to any
 * depth (consent.html#provision). The base, when the root provision has no type, follows the
 * policy rule: OPTOUT / OPTOUTE deny, anything else permits. Several consents of one patient:
 * any denial wins. The patient's own access and break-the-glass are not subject to it.
 *
 * Conditions this rule does not evaluate (`provision.data`, `code`, `dataPeriod`, `action`) are
 * read on the safe side: a deny provision carrying them applies as if they were absent (it denies
 * more), a permit provision carrying them never applies (it permits nothing more).
 *
 * For one principal, each consent reduces to a condition on a resource's type and labels (the
 * actor, purpose and period are known); resources of the patient meeting it are withheld. The
 * condition travels into search queries (src/rest/confinement.ts) and is checked on reads.
 */

export const patientPrivacyScope = { system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' };

/** A condition on one resource (its type and `system|code` labels). */
export type ResourceCondition =
  | { kind: 'always' }
  | { kind: 'never' }
  | { kind: 'type-in'; types: string[] }
  | { kind: 'label-in'; labels: string[] }
  | { kind: 'and'; parts: ResourceCondition[] }
  | { kind: 'or'; parts: ResourceCondition[] }
  | { kind: 'not'; part: ResourceCondition };

export interface Provision {
  type?: 'permit' | 'deny';
  /** [start, end) in epoch ms; undefined ends: open. */
  period?: { start?: number; end?: number };
  /** Local references (`Practitioner/7`, `Organization/3`). */
  actors: string[];
  /** `system|code` of purposes of use. */
  purposes: string[];
  /** Resource types (resource-types code system). */
  classes: string[];
  /** `system|code` of security labels. */
  labels: string[];
  /** Carries conditions this rule does not evaluate (see above). */
  unevaluated: boolean;
  /** Names actors it cannot tell the principal from: by identifier only, or an organisation, team or group. */
  unevaluatedActors: boolean;
  provisions: Provision[];
}

export interface ConsentPolicy {
  /** `Consent/<id>`, for the audit. */
  ref: string;
  patient: string;
  base: 'permit' | 'deny';
  root: Provision;
  /** Nested deeper or wider than this rule evaluates: the whole record is withheld (see consentPolicy). */
  overflow?: boolean;
}

/** What one principal's consents withhold: per consent, the patient and the condition. */
export interface ConsentObligation {
  rules: { ref: string; patient: string; withheld: ResourceCondition }[];
  /** Consents that were checked and withhold nothing from this principal (for the audit). */
  permitting: string[];
}

const purposeSystem = 'http://terminology.hl7.org/CodeSystem/v3-ActReason';

/**
 * The purposes of use a principal acts under: its role's (treatment for clinicians, payment for
 * billing, research, operations for admins) and those its token states.
 */
/** The purpose of use (v3-ActReason) each role acts for; the patient acts for themselves. */
export const purposeOfRole: Readonly<Record<string, string>> = {
  physician: 'TREAT', nurse: 'TREAT', 'lab-technician': 'TREAT', billing: 'HPAYMT', researcher: 'HRESCH', admin: 'HOPERAT', auditor: 'HOPERAT', system: 'HOPERAT',
};

export function purposesOf(principal: Principal): string[] {
  const byRole = purposeOfRole[principal.role];
  const out = byRole ? [`${purposeSystem}|${byRole}`] : [];
  // A token saying BTG gets no consent exception for it: break-the-glass is granted per patient
  // (and then consents do not apply to that patient at all), never by a claim alone.
  for (const stated of principal.purposeOfUse ?? []) if (!out.includes(stated) && stated !== `${purposeSystem}|BTG`) out.push(stated);
  return out;
}

/** Provisions nested deeper, or more of them, than this are not evaluated: the consent withholds everything. */
export const maxProvisionDepth = 8;
export const maxProvisions = 200;

/** An active patient-privacy Consent as a policy; undefined when it is not one this rule applies. */
export function consentPolicy(resource: Record<string, unknown>): ConsentPolicy | undefined {
  if (resource.resourceType !== 'Consent' || resource.status !== 'active' || typeof resource.id !== 'string') return undefined;
  if (!isPatientPrivacy(resource)) return undefined;
  const patient = consentPatient(resource);
  if (!patient) return undefined;
  const rules = (Array.isArray(resource.policyRule) ? resource.policyRule : [resource.policyRule]).flatMap(codings);
  const base = rules.some((c) => /\|OPTOUTE?$/.test(c)) ? 'deny' : 'permit';
  const budget = { left: maxProvisions };
  const root = provision(resource.provision ?? {}, 0, budget);
  const policy: ConsentPolicy = { ref: `Consent/${resource.id}`, patient, base, root };
  if (budget.left < 0) policy.overflow = true;
  return policy;
}

export function isPatientPrivacy(resource: Record<string, unknown>): boolean {
  return codings(resource.scope).some((c) => c === `${patientPrivacyScope.system}|${patientPrivacyScope.code}`);
}

/** The patient a consent is about, as a local id (from `Patient/7`, or a versioned or absolute reference to it). */
export function consentPatient(resource: Record<string, unknown>): string | undefined {
  return localId((resource.patient as { reference?: unknown } | undefined)?.reference, 'Patient');
}

/**
 * Why a Consent being written could not be enforced, or undefined: an active patient-privacy
 * consent must name its patient by reference, and stay within the depth and breadth evaluated.
 */
export function unenforceableConsent(resource: Record<string, unknown>): string | undefined {
  if (resource.resourceType !== 'Consent' || resource.status !== 'active' || !isPatientPrivacy(resource)) return undefined;
  if (!consentPatient(resource)) return 'An active patient-privacy Consent must reference its patient as Patient/<id>, so that it can be enforced';
  const budget = { left: maxProvisions };
  provision(resource.provision ?? {}, 0, budget);
  if (budget.left < 0) return `A Consent's provisions may be nested ${maxProvisionDepth} deep and number ${maxProvisions} at most`;
  return undefined;
}

/** The conditions under which each consent withholds a resource of its patient from this principal, now. */
export function consentObligation(policies: readonly ConsentPolicy[], principal: Principal, now: number): ConsentObligation {
  const out: ConsentObligation = { rules: [], permitting: [] };
  if (principal.kind === 'anonymous-local') return out;
  const breakGlass = new Set(principal.breakGlass ?? []);
  const who = { actors: actorsOf(principal), purposes: purposesOf(principal) };
  // The consents themselves stay reachable (to be read, revoked, replaced): they are the policy, not the record.
  const notPolicy: ResourceCondition = { kind: 'not', part: { kind: 'type-in', types: ['Consent'] } };
  for (const policy of policies) {
    // The patient is the grantor: their own access is theirs. Break-the-glass overrides consent.
    if ((principal.role === 'patient' && principal.patient === policy.patient) || principal.fhirUser === `Patient/${policy.patient}`) continue;
    if (breakGlass.has(policy.patient)) continue;
    if (policy.overflow) {
      out.rules.push({ ref: policy.ref, patient: policy.patient, withheld: notPolicy });
      continue;
    }
    // A root permit with conditions this rule cannot read is the policy rule's base, for everyone.
    const root = policy.root.type === 'permit' && (policy.root.unevaluated || policy.root.unevaluatedActors) ? neutral(policy.root, policy.base) : policy.root;
    const applies = appliesWhen({ ...root, type: root.type ?? policy.base }, who, now);
    const withheld = simplify({ kind: 'and', parts: [applies, deniedBy(root, policy.base, who, now), notPolicy] });
    if (withheld.kind === 'never') out.permitting.push(policy.ref);
    else out.rules.push({ ref: policy.ref, patient: policy.patient, withheld });
  }
  return out;
}

const remembered = new WeakMap<readonly ConsentPolicy[], { boundaries: number[]; byWho: Map<string, { until: number; value: ConsentObligation }> }>();

/**
 * consentObligation, computed once per set of policies and kind of principal until the next
 * period boundary among the policies (requests repeat, and the policies change only on commits).
 * The result is shared: callers must not change it.
 */
export function consentObligationFor(policies: readonly ConsentPolicy[], principal: Principal, now: number): ConsentObligation {
  let memo = remembered.get(policies);
  if (!memo) remembered.set(policies, (memo = { boundaries: boundariesOf(policies), byWho: new Map() }));
  const key = `${principal.kind}|${principal.role}|${principal.fhirUser ?? ''}|${principal.patient ?? ''}|${(principal.breakGlass ?? []).join(',')}|${(principal.purposeOfUse ?? []).join(' ')}`;
  const hit = memo.byWho.get(key);
  if (hit && now < hit.until) return hit.value;
  const value = consentObligation(policies, principal, now);
  if (memo.byWho.size >= 1000) memo.byWho.delete(memo.byWho.keys().next().value!);
  memo.byWho.set(key, { until: memo.boundaries.find((b) => b > now) ?? Infinity, value });
  return value;
}

function boundariesOf(policies: readonly ConsentPolicy[]): number[] {
  const out: number[] = [];
  const walk = (p: Provision) => {
    if (p.period?.start !== undefined) out.push(p.period.start);
    if (p.period?.end !== undefined) out.push(p.period.end);
    p.provisions.forEach(walk);
  };
  for (const policy of policies) walk(policy.root);
  return out.sort((a, b) => a - b);
}

/** Whether a condition holds for a resource of this type and labels. */
export function holds(c: ResourceCondition, type: string, labels: readonly string[]): boolean {
  switch (c.kind) {
    case 'always': return true;
    case 'never': return false;
    case 'type-in': return c.types.includes(type);
    case 'label-in': return labels.some((l) => c.labels.some((given) => sameCoding(given, l)));
    case 'and': return c.parts.every((p) => holds(p, type, labels));
    case 'or': return c.parts.some((p) => holds(p, type, labels));
    case 'not': return !holds(c.part, type, labels);
  }
}

interface Who {
  actors: string[];
  purposes: string[];
}

/**
 * When `p` (already applying, with `inherited` as the decision above it) ends in a denial: a
 * nested provision that applies decides (any denial among them wins); where none applies, p's own
 * type (or the inherited decision) does.
 */
function deniedBy(p: Provision, inherited: 'permit' | 'deny', who: Who, now: number): ResourceCondition {
  const own = p.type ?? inherited;
  const applying: ResourceCondition[] = [];
  const denying: ResourceCondition[] = [];
  for (const nested of p.provisions) {
    // A permit this rule cannot fully read permits nothing more, but the denials inside it still hold.
    const child = nested.type === 'permit' && (nested.unevaluated || nested.unevaluatedActors) ? neutral(nested, own) : nested;
    const when = appliesWhen(child, who, now);
    if (when.kind === 'never') continue;
    applying.push(when);
    denying.push({ kind: 'and', parts: [when, deniedBy(child, own, who, now)] });
  }
  const noneApplies: ResourceCondition = { kind: 'not', part: { kind: 'or', parts: applying } };
  return { kind: 'or', parts: [...denying, own === 'deny' ? noneApplies : { kind: 'never' }] };
}

/**
 * A provision with the decision above it as its own type, and its unreadable conditions read as
 * holding (actors it cannot tell apart: anyone): only the provisions inside it can change anything.
 */
function neutral(p: Provision, type: 'permit' | 'deny'): Provision {
  return { ...p, type, unevaluated: false, unevaluatedActors: false, actors: p.unevaluatedActors ? [] : p.actors };
}

/** The condition under which a provision applies: never if its actor, purpose or period rule it out. */
function appliesWhen(p: Provision, who: Who, now: number): ResourceCondition {
  const deny = p.type === 'deny';
  if ((p.unevaluated || p.unevaluatedActors) && !deny) return { kind: 'never' };
  // A denial naming someone it cannot tell the principal from applies to the principal too.
  const actorMatches = p.actors.some((a) => who.actors.includes(a)) || (deny && p.unevaluatedActors);
  if ((p.actors.length > 0 || p.unevaluatedActors) && !actorMatches) return { kind: 'never' };
  if (p.purposes.length > 0 && !p.purposes.some((u) => who.purposes.some((w) => sameCoding(u, w)))) return { kind: 'never' };
  if (p.period && !within(p.period, now)) return { kind: 'never' };
  const parts: ResourceCondition[] = [];
  if (p.classes.length > 0) parts.push({ kind: 'type-in', types: p.classes });
  if (p.labels.length > 0) parts.push({ kind: 'label-in', labels: p.labels });
  return parts.length === 0 ? { kind: 'always' } : { kind: 'and', parts };
}

/** `system|code` pairs; a coding given without a system matches that code in any system. */
export function sameCoding(given: string, actual: string): boolean {
  return given === actual || (given.startsWith('|') && actual.endsWith(given));
}

/** Folds constants away, so a consent that withholds nothing from this principal says `never`. */
export function simplify(c: ResourceCondition): ResourceCondition {
  switch (c.kind) {
    case 'and': {
      const parts = c.parts.map(simplify).filter((p) => p.kind !== 'always');
      if (parts.some((p) => p.kind === 'never')) return { kind: 'never' };
      return parts.length === 0 ? { kind: 'always' } : parts.length === 1 ? parts[0] : { kind: 'and', parts };
    }
    case 'or': {
      const parts = c.parts.map(simplify).filter((p) => p.kind !== 'never');
      if (parts.some((p) => p.kind === 'always')) return { kind: 'always' };
      return parts.length === 0 ? { kind: 'never' } : parts.length === 1 ? parts[0] : { kind: 'or', parts };
    }
    case 'not': {
      const part = simplify(c.part);
      if (part.kind === 'always') return { kind: 'never' };
      if (part.kind === 'never') return { kind: 'always' };
      return { kind: 'not', part };
    }
    default:
      return c;
  }
}

/** Actor types a principal is matched against (its fhirUser); anything else names a group it cannot be placed in. */
const personTypes = new Set(['Practitioner', 'Patient', 'RelatedPerson', 'Person', 'Device']);

function provision(raw: unknown, depth: number, budget: { left: number }): Provision {
  const p = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
  const list = (v: unknown): Record<string, unknown>[] => (Array.isArray(v) ? v.filter((x) => typeof x === 'object' && x !== null) : []);
  const actorRefs = list(p.actor).map((a) => localRef((a.reference as { reference?: unknown } | undefined)?.reference));
  const actors = actorRefs.filter((r): r is string => r !== undefined && personTypes.has(r.split('/')[0]));
  budget.left -= 1;
  const inner = list(p.provision);
  if (depth >= maxProvisionDepth && inner.length > 0) budget.left = -1;
  const out: Provision = {
    actors,
    purposes: list(p.purpose).map((c) => `${c.system ?? ''}|${c.code ?? ''}`),
    classes: list(p.class).filter((c) => c.system === undefined || c.system === 'http://hl7.org/fhir/resource-types').map((c) => String(c.code ?? '')),
    labels: list(p.securityLabel).map((c) => `${c.system ?? ''}|${c.code ?? ''}`),
    unevaluated: ['data', 'code', 'dataPeriod', 'action'].some((k) => Array.isArray(p[k]) ? (p[k] as unknown[]).length > 0 : p[k] !== undefined),
    unevaluatedActors: actors.length < actorRefs.length,
    provisions: [],
  };
  for (const n of inner) {
    if (budget.left < 0) break;
    out.provisions.push(provision(n, depth + 1, budget));
  }
  if (p.type === 'permit' || p.type === 'deny') out.type = p.type;
  const period = periodOf(p.period);
  if (period) out.period = period;
  // A class given in another system than resource-types cannot be evaluated.
  if (list(p.class).length !== out.classes.length) out.unevaluated = true;
  return out;
}

function actorsOf(principal: Principal): string[] {
  return principal.fhirUser ? [localRef(principal.fhirUser) ?? principal.fhirUser] : [];
}

function within(period: { start?: number; end?: number }, now: number): boolean {
  return (period.start === undefined || now >= period.start) && (period.end === undefined || now < period.end);
}

function periodOf(raw: unknown): { start?: number; end?: number } | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const { start, end } = raw as { start?: unknown; end?: unknown };
  const out: { start?: number; end?: number } = {};
  if (typeof start === 'string' && !Number.isNaN(Date.parse(start))) out.start = Date.parse(start);
  if (typeof end === 'string' && !Number.isNaN(Date.parse(end))) out.end = Date.parse(end);
  return out.start === undefined && out.end === undefined ? undefined : out;
}

function codings(v: unknown): string[] {
  const cc = v as { coding?: { system?: string; code?: string }[] } | undefined;
  return Array.isArray(cc?.coding) ? cc.coding.map((c) => `${c.system ?? ''}|${c.code ?? ''}`) : [];
}

function localRef(ref: unknown): string | undefined {
  if (typeof ref !== 'string') return undefined;
  const m = /(?:^|\/)([A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64})(?:\/_history\/[A-Za-z0-9\-.]{1,64})?$/.exec(ref);
  return m ? m[1] : undefined;
}

function localId(ref: unknown, type: string): string | undefined {
  const local = localRef(ref);
  return local?.startsWith(`${type}/`) ? local.slice(type.length + 1) : undefined;
}
