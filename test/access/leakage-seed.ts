import { patient, type Reply } from '../rest/server.ts';
import type { IssuerServer } from '../auth/external-issuer.ts';
import { seeder } from '../auth/seeder.ts';

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
  const { ids: id, create } = await seeder(t);
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
  await create('M', patient('Leakmike', { identifier: [{ system: IDSYS, value: 'M-1' }], generalPractitioner: gp }));
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

// ---------------------------------------------------------------------------------------------
// The consent world: patients whose Consents withhold (part of) their records from a physician.
// ---------------------------------------------------------------------------------------------

const PRCP = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'PRCP' }] };

/** An active patient-privacy Consent of `patient` (R4, OPTIN) with this root provision. */
export function privacyConsent(patient: string, provision: Record<string, unknown>): Record<string, unknown> {
  return {
    resourceType: 'Consent', status: 'active', scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
    category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }], patient: { reference: patient },
    policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTIN' }] }, provision,
  };
}

export const consentActor = (reference: string) => ({ role: PRCP, reference: { reference } });

export interface ConsentWorld {
  id: Record<string, string>;
  /** Consdoc: every patient's GP, denied Charlie's whole record by her Consent. */
  doc: { fhirUser: string };
  /** Consdoctwo: every patient's GP too, named by no Consent (the control). */
  doc2: { fhirUser: string };
}

/**
 * Charlie's Consent denies Consdoc (provision.actor), Kilo's denies Observations (class), Lima's
 * denies PSY-labelled resources (securityLabel); Oscar has none. Consdoc and Consdoctwo are the
 * GPs of all four. Oscar's Observation points (focus) at Charlie and at Kilo's and Lima's
 * Observations, so includes and chains can reach what the Consents withhold.
 */
export async function seedConsentWorld(t: IssuerServer): Promise<ConsentWorld> {
  const { ids: id, create } = await seeder(t);
  const doc = await create('doc', { resourceType: 'Practitioner', name: [{ family: 'Consdoc' }] });
  const doc2 = await create('doc2', { resourceType: 'Practitioner', name: [{ family: 'Consdoctwo' }] });
  const gpC = await create('perfC', { resourceType: 'Practitioner', name: [{ family: 'Consperformer' }] });
  const gp = [{ reference: doc }, { reference: doc2 }];
  const C = await create('C', patient('Conscharlie', { identifier: [{ system: IDSYS, value: 'C-1' }], generalPractitioner: gp, address: [{ city: 'Charlieville' }] }));
  const K = await create('K', patient('Conskilo', { identifier: [{ system: IDSYS, value: 'K-1' }], generalPractitioner: gp }));
  const L = await create('L', patient('Conslima', { identifier: [{ system: IDSYS, value: 'L-1' }], generalPractitioner: gp }));
  const O = await create('O', patient('Consoscar', { identifier: [{ system: IDSYS, value: 'O-1' }], generalPractitioner: gp }));
  const obs = (code: string, subject: string, extra: Record<string, unknown> = {}) => ({
    resourceType: 'Observation', status: 'final', code: { coding: [{ system: CODE, code }] }, subject: { reference: subject },
    identifier: [{ system: IDSYS, value: code }], ...extra,
  });
  await create('obsC', obs('c-code', C, { performer: [{ reference: gpC }] }));
  const obsK = await create('obsK', obs('k-code', K));
  await create('docK', { resourceType: 'DocumentReference', status: 'current', subject: { reference: K }, content: [{ attachment: { contentType: 'text/plain', data: Buffer.from('kilo note').toString('base64') } }] });
  const obsL = await create('obsL', obs('l-code', L));
  const obsLPsy = await create('obsLPsy', obs('lpsy-code', L, { meta: { security: [sens('PSY')] } }));
  await create('obsO', obs('o-code', O, { focus: [{ reference: C }, { reference: obsK }, { reference: obsLPsy }, { reference: obsL }] }));
  await create('cC', privacyConsent(C, { type: 'permit', provision: [{ type: 'deny', actor: [consentActor(doc)] }] }));
  await create('cK', privacyConsent(K, { type: 'permit', provision: [{ type: 'deny', class: [{ system: 'http://hl7.org/fhir/resource-types', code: 'Observation' }] }] }));
  await create('cL', privacyConsent(L, { type: 'permit', provision: [{ type: 'deny', securityLabel: [sens('PSY')] }] }));
  return { id, doc: { fhirUser: doc }, doc2: { fhirUser: doc2 } };
}

// ---------------------------------------------------------------------------------------------
// The research world: what a researcher must not learn through the de-identified view.
// ---------------------------------------------------------------------------------------------

export const RES = {
  /** Rosa Resfamily: the details the view hides (exact birth date, city, postcode, identifier, phone). */
  family: 'Resfamily', given: 'Rosa', birthDate: '1961-07-14', city: 'Smalltown', postalCode: '02139', ssn: '999-12-3456', phone: '555-867-5309',
  effective: '2020-03-04T10:11:12Z',
};

/**
 * R1 (the details above) and R2 (born the same year, elsewhere), each with Observations coded
 * res-a; R3's Consent denies Observations (its res-a one is withheld from everyone but R3); R5 is
 * deleted by the suite. Real ids are what the researcher must never learn or use.
 */
export async function seedResearchWorld(t: IssuerServer): Promise<{ id: Record<string, string> }> {
  const { ids: id, create } = await seeder(t);
  const person = (family: string, given: string, birthDate: string, city: string, postalCode: string, ssn: string, phone: string) => ({
    resourceType: 'Patient', gender: 'female', birthDate, name: [{ family, given: [given] }],
    identifier: [{ system: 'http://hl7.org/fhir/sid/us-ssn', value: ssn }], telecom: [{ system: 'phone', value: phone }],
    address: [{ line: ['1 Hidden Lane'], city, state: 'MA', postalCode }],
  });
  const R1 = await create('R1', person(RES.family, RES.given, RES.birthDate, RES.city, RES.postalCode, RES.ssn, RES.phone));
  const R2 = await create('R2', person('Resother', 'Ida', '1961-11-30', 'Bigtown', '01001', '999-55-0002', '555-000-0002'));
  const R3 = await create('R3', person('Resconsent', 'Una', '1975-05-05', 'Midtown', '01002', '999-55-0003', '555-000-0003'));
  await create('R5', person('Resgone', 'Eva', '1970-01-01', 'Gonetown', '01003', '999-55-0005', '555-000-0005'));
  const obs = (code: string, subject: string, effective: string) => ({
    resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code }] }, subject: { reference: subject }, effectiveDateTime: effective,
  });
  await create('o1', obs('res-a', R1, RES.effective));
  await create('o2', obs('res-a', R2, '2020-09-01T08:00:00Z'));
  await create('o3', obs('res-b', R1, '2020-05-05T05:05:05Z'));
  await create('o4', obs('res-a', R3, '2020-06-06T06:06:06Z'));
  await create('cR3', privacyConsent(R3, { type: 'permit', provision: [{ type: 'deny', class: [{ system: 'http://hl7.org/fhir/resource-types', code: 'Observation' }] }] }));
  return { id };
}
