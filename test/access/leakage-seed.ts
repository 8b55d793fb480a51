import assert from 'node:assert/strict';
import { call, patient, type Reply } from '../rest/server.ts';
import type { IssuerServer } from '../auth/external-issuer.ts';

/**
 * The world the leakage suite probes. A physician (Practitioner "Leakdoc") is the GP of Alpha,
 * Mike and Victor (Victor's Patient resource is labelled V); Bravo is nobody's patient here (his GP
 * is another practitioner). Observations carry their own codes so every probe names exactly one.
 */
export const CODE = 'http://leak.test/code';
export const IDSYS = 'http://leak.test/id';
export const conf = (code: string) => ({ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code });
export const sens = (code: string) => ({ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code });

export interface World {
  /** logical ids by name */
  id: Record<string, string>;
  /** the clinicians' fhirUser claim */
  doc: { fhirUser: string };
}

export async function seedWorld(t: IssuerServer): Promise<World> {
  const headers = await t.auth('system');
  const id: Record<string, string> = {};
  const create = async (name: string, body: Record<string, unknown>): Promise<string> => {
    const r = await call(`${t.base}/${body.resourceType}`, { method: 'POST', headers, json: body });
    assert.equal(r.status, 201, r.text);
    id[name] = r.body.id;
    return `${body.resourceType}/${r.body.id}`;
  };
  const docRef = await create('doc', { resourceType: 'Practitioner', name: [{ family: 'Leakdoc' }] });
  const gpB = await create('gpB', { resourceType: 'Practitioner', name: [{ family: 'Leakgpbravo' }] });
  const gp = [{ reference: docRef }];
  const A = await create('A', patient('Leakalpha', {
    identifier: [{ system: IDSYS, value: 'A-1' }], generalPractitioner: gp,
    telecom: [{ system: 'phone', value: '555-0101' }], address: [{ city: 'Alphaville' }],
  }));
  await create('A2', patient('Leakalphatwo', {
    identifier: [{ system: IDSYS, value: 'A-2' }], generalPractitioner: gp,
    telecom: [{ system: 'phone', value: '555-0102' }], address: [{ city: 'Zedcity' }],
  }));
  const B = await create('B', patient('Leakbravo', {
    identifier: [{ system: IDSYS, value: 'B-1' }], generalPractitioner: [{ reference: gpB }],
    telecom: [{ system: 'phone', value: '555-0202' }], address: [{ city: 'Bravotown' }],
  }));
  const M = await create('M', patient('Leakmike', { identifier: [{ system: IDSYS, value: 'M-1' }], generalPractitioner: gp }));
  const V = await create('V', patient('Leakvictor', { identifier: [{ system: IDSYS, value: 'V-1' }], generalPractitioner: gp, meta: { security: [conf('V')] } }));
  // Nobody's patients: targets of the self-made relationship probes.
  await create('E', patient('Leakecho', { identifier: [{ system: IDSYS, value: 'E-1' }] }));
  await create('F', patient('Leakfoxtrot', { identifier: [{ system: IDSYS, value: 'F-1' }] }));
  const obs = (code: string, subject: string, extra: Record<string, unknown> = {}) => ({
    resourceType: 'Observation', status: 'final', code: { coding: [{ system: CODE, code }] }, subject: { reference: subject },
    identifier: [{ system: IDSYS, value: code }], ...extra,
  });
  // Alpha's record: normal, R, V, PSY; one Observation naming Bravo as its focus (not a compartment link).
  await create('obsA', obs('a-code', A, { performer: [{ reference: docRef }], focus: [{ reference: B }] }));
  await create('obsAR', obs('ar-code', A, { meta: { security: [conf('R')] } }));
  await create('obsAV', obs('av-code', A, { meta: { security: [conf('V')] } }));
  await create('obsAPsy', obs('apsy-code', A, { meta: { security: [conf('N'), sens('PSY')] } }));
  // Bravo's record, and one Observation about Bravo performed by Alpha (so it is in Alpha's compartment).
  await create('obsB', obs('b-code', B, { performer: [{ reference: gpB }] }));
  await create('obsCross', obs('cross-code', B, { performer: [{ reference: A }] }));
  // Victor (labelled V) has an unlabelled Observation.
  await create('obsVic', obs('vic-code', V));
  await create('org', { resourceType: 'Organization', name: 'Leakclinic' });
  // A List about Bravo (unreachable for the physician) whose only entry is the (public) Organization.
  await create('listB', { resourceType: 'List', status: 'current', mode: 'working', subject: { reference: B }, entry: [{ item: { reference: `Organization/${id.org}` } }] });
  return { id, doc: { fhirUser: docRef } };
}

type Bundle = { entry?: { resource: { resourceType: string; id: string }; search?: { mode?: string } }[] };

/** `Type/id` of the entries of a searchset, sorted; `mode` narrows to match or include entries. */
export function refs(r: Reply, mode?: 'match' | 'include'): string[] {
  const b = r.body as Bundle;
  return (b?.entry ?? []).filter((e) => !mode || e.search?.mode === mode).map((e) => `${e.resource.resourceType}/${e.resource.id}`).sort();
}

/** The diagnostics of an OperationOutcome (or of a Bundle entry's outcome), ids and identifiers blanked, for comparing two answers. */
export function diagnostics(outcome: unknown, blank: string[] = []): string {
  const o = outcome as { resourceType?: string; issue?: { code?: string; diagnostics?: string }[] } | undefined;
  let s = (o?.issue ?? []).map((i) => `${i.code}: ${i.diagnostics ?? ''}`).join(' | ');
  for (const b of blank) s = s.split(b).join('<x>');
  return s.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '<uuid>');
}
