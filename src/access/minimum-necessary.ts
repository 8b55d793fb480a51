import type { Principal } from '../auth/principal.ts';

/**
 * Minimum necessary rule: per-role element masks, as simple FHIRPath paths (`Patient.telecom`,
 * `Patient.contact.telecom`). Masked elements are removed from what leaves and the resource is
 * tagged SUBSETTED; a masked role's writes keep the stored values of what it cannot see.
 */
export const subsettedTag = { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED', display: 'subsetted' };

/** Lab technicians work with limited demographics; billing has no use for photos. A deployment may change these. */
let masks: Record<string, string[]> = {
  'lab-technician': ['Patient.address', 'Patient.telecom', 'Patient.contact', 'Patient.photo', 'Patient.maritalStatus', 'Patient.communication'],
  billing: ['Patient.photo'],
};

export function configureMasks(byRole: Record<string, string[]>): void {
  for (const [role, paths] of Object.entries(byRole)) {
    for (const p of paths) if (!/^[A-Z][A-Za-z]+(\.[a-z][A-Za-z0-9]*)+$/.test(p)) throw new Error(`masks.${role}: "${p}" is not a path like Patient.telecom`);
  }
  masks = byRole;
}

export function masksFor(principal: Principal): string[] {
  return principal.kind === 'user' ? masks[principal.role] ?? [] : [];
}

type Json = Record<string, unknown>;

/** Removes the masked elements of `resource` (in place); true when something was removed. */
export function maskResource(resource: Json, paths: readonly string[]): boolean {
  let removed = false;
  // A contained Patient is still that patient's data: masked like a top-level one.
  if (Array.isArray(resource.contained)) {
    for (const inner of resource.contained as unknown[]) {
      if (typeof inner === 'object' && inner !== null) removed = maskResource(inner as Json, paths) || removed;
    }
  }
  for (const path of paths) {
    const [type, ...steps] = path.split('.');
    if (resource.resourceType !== type) continue;
    removed = removeAt(resource, steps) || removed;
  }
  if (removed) {
    const meta = (resource.meta ??= {}) as Json;
    const tags = (meta.tag ??= []) as Json[];
    if (!tags.some((t) => t.system === subsettedTag.system && t.code === subsettedTag.code)) tags.push({ ...subsettedTag });
  }
  return removed;
}

function removeAt(node: unknown, steps: string[]): boolean {
  if (Array.isArray(node)) return node.map((n) => removeAt(n, steps)).some(Boolean);
  if (typeof node !== 'object' || node === null) return false;
  const obj = node as Json;
  const [step, ...rest] = steps;
  if (rest.length === 0) {
    const had = step in obj || `_${step}` in obj;
    delete obj[step];
    delete obj[`_${step}`];
    return had;
  }
  return step in obj ? removeAt(obj[step], rest) : false;
}

/**
 * Puts back, into a resource a masked role is writing, the stored values of the elements it cannot
 * see (whatever it sent for them), and drops the SUBSETTED tag it read.
 */
export function keepMasked(incoming: Json, stored: Json | undefined, paths: readonly string[]): void {
  for (const path of paths) {
    const [type, ...steps] = path.split('.');
    if (incoming.resourceType !== type || steps.length !== 1) {
      // Nested masks: the whole top-level element comes from the stored version.
      if (incoming.resourceType === type) copyElement(incoming, stored, steps[0]);
      continue;
    }
    copyElement(incoming, stored, steps[0]);
  }
  const tags = (incoming.meta as Json | undefined)?.tag as Json[] | undefined;
  if (tags) (incoming.meta as Json).tag = tags.filter((t) => !(t.system === subsettedTag.system && t.code === subsettedTag.code));
}

function copyElement(incoming: Json, stored: Json | undefined, name: string): void {
  for (const key of [name, `_${name}`]) {
    if (stored && key in stored) incoming[key] = structuredClone(stored[key]);
    else delete incoming[key];
  }
}
