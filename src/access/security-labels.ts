import type { Principal } from '../auth/principal.ts';
import { confidentialityCodes, confidentialitySystem, sensitivityCodes, sensitivitySystem } from '../fhir/security-label-bits.ts';

/**
 * Security labels rule: resources carry confidentiality (`meta.security` from v3-Confidentiality:
 * U < L < M < N < R < V) and sensitivity tags (v3-ActCode: HIV, PSY, SUD, ETH, ...). A role's
 * clearance says the highest confidentiality and which sensitivities it may see; everything else is
 * left out in the query itself (reads answer 404, searches and their totals do not count it).
 * Resources without a confidentiality label count as N.
 */
export { confidentialitySystem, sensitivitySystem };

const levels = confidentialityCodes;
export type Confidentiality = (typeof levels)[number];

/** The sensitivity codes this rule knows (HL7 v3 ActCode, the _InformationSensitivityPolicy branch used by the DS4P profile). */
export const sensitivities = sensitivityCodes;

export interface Clearance {
  confidentiality: Confidentiality;
  /** Sensitivity codes the role may see ('*': all). */
  sensitivities: readonly string[] | '*';
}

/**
 * Default clearances. Patients see their own record up to R with every sensitivity (HIPAA right of
 * access); physicians up to R with the clinical sensitivities; nurses up to R with HIV; lab
 * technicians, billing, researchers, admins and auditors normal data only. V (very restricted) needs
 * break-the-glass or an explicit grant. Backend services act under their scopes.
 */
export const defaultClearances: Record<string, Clearance> = {
  patient: { confidentiality: 'R', sensitivities: '*' },
  physician: { confidentiality: 'R', sensitivities: ['HIV', 'PSY', 'SUD', 'ETH', 'SEX', 'STD', 'SDV', 'GDIS', 'BH', 'DEMO'] },
  nurse: { confidentiality: 'R', sensitivities: ['HIV', 'STD', 'DEMO'] },
  'lab-technician': { confidentiality: 'N', sensitivities: ['HIV', 'STD'] },
  billing: { confidentiality: 'N', sensitivities: [] },
  researcher: { confidentiality: 'N', sensitivities: [] },
  admin: { confidentiality: 'N', sensitivities: [] },
  auditor: { confidentiality: 'N', sensitivities: [] },
  system: { confidentiality: 'V', sensitivities: '*' },
};

export interface LabelCode {
  system: string;
  code: string;
}

/** The labels above the principal's clearance, which resources must not carry to be visible; undefined: no restriction. */
export function labelsAboveClearance(principal: Principal, clearances: Record<string, Clearance> = defaultClearances): LabelCode[] | undefined {
  if (principal.kind === 'anonymous-local') return undefined;
  // The same for every request of a role: computed once (and the same array each time).
  let byRole = computed.get(clearances);
  if (!byRole) computed.set(clearances, (byRole = new Map()));
  if (!byRole.has(principal.role)) byRole.set(principal.role, aboveClearance(clearances[principal.role]));
  return byRole.get(principal.role);
}

const computed = new WeakMap<Record<string, Clearance>, Map<string, LabelCode[] | undefined>>();

function aboveClearance(clearance: Clearance | undefined): LabelCode[] | undefined {
  if (!clearance) return [...levels.map((code) => ({ system: confidentialitySystem, code })), ...sensitivities.map((code) => ({ system: sensitivitySystem, code }))];
  const above = levels.slice(levels.indexOf(clearance.confidentiality) + 1).map((code) => ({ system: confidentialitySystem, code }));
  const hidden = clearance.sensitivities === '*' ? [] : sensitivities.filter((s) => !(clearance.sensitivities as readonly string[]).includes(s)).map((code) => ({ system: sensitivitySystem, code }));
  const all = [...above, ...hidden];
  return all.length > 0 ? all : undefined;
}
