import assert from 'node:assert/strict';
import { call, patient } from '../rest/server.ts';
import type { IssuerServer } from '../auth/external-issuer.ts';

/**
 * The world the decision matrix runs against, seeded once by a backend service (system token).
 * A clinician (Practitioner "Matrixdoc", the fhirUser of every clinician token) is the GP of the
 * "rel" patient; the "unrel" patient is nobody's. Every resource carries a tag naming it (so a
 * search finds exactly that one) and the security labels of its cell.
 *
 * Each consent value (decision-matrix.json, rules 7-10) has a world of its own, on a server of its
 * own: the same shape, and that value's Consent for every patient in it (the Patient targets
 * included: each is its own patient), so a cell never meets another value's Consent (nor another
 * world's break-the-glass grants).
 */
export const TAG = 'http://matrix.test/cell';
const CONF = 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality';
const SENS = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';

/** Whose record a resource is in: the GP's patient, nobody's patient, or no patient's (Organization). */
export type Side = 'rel' | 'unrel' | 'none';

export interface World {
  doc: string;
  /** The base patients' ids: rel (GP Matrixdoc), unrel (no relationship). */
  rel: string;
  unrel: string;
}

export interface Target {
  key: string;
  /** The code of its tag (TAG): searching `_tag=TAG|code` finds exactly it. */
  tag: string;
  type: string;
  id: string;
  /** The patient whose compartment holds it (for a Patient: itself), if any. */
  patient?: string;
  /** The resource as created (its id added): the base of an update. */
  resource: Record<string, unknown>;
}

export interface TargetSpec {
  key: string;
  type: string;
  side: Side;
  label: string;
}

/** A consent value's seed as the matrix file gives it: the root provision, actors, classes and labels by key. */
export type ProvisionSeed = { type?: 'permit' | 'deny'; actor?: string[]; class?: string[]; securityLabel?: string[]; provision?: ProvisionSeed[] };

const CONSENT_SCOPE = { system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' };
const RESOURCE_TYPES = 'http://hl7.org/fhir/resource-types';
const PRCP = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'PRCP' }] };

/** The R4 provision from its seed: actor keys become PRCP actors referencing their Practitioner, label keys their codings. */
function provisionOf(p: ProvisionSeed, actors: Record<string, string>, labels: Record<string, [string, string][]>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (p.type) out.type = p.type;
  if (p.actor) {
    out.actor = p.actor.map((key) => {
      assert.ok(actors[key], `decision matrix: no actor ${key}`);
      return { role: PRCP, reference: { reference: actors[key] } };
    });
  }
  if (p.class) out.class = p.class.map((code) => ({ system: RESOURCE_TYPES, code }));
  if (p.securityLabel) out.securityLabel = p.securityLabel.flatMap((key) => security(labels[key]));
  if (p.provision) out.provision = p.provision.map((c) => provisionOf(c, actors, labels));
  return out;
}

/** An active patient-privacy Consent of `patientId` with the seed's provisions. */
export function consentOf(patientId: string, seed: ProvisionSeed, actors: Record<string, string>, labels: Record<string, [string, string][]>): Record<string, unknown> {
  return {
    resourceType: 'Consent', status: 'active', scope: { coding: [CONSENT_SCOPE] },
    category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
    patient: { reference: `Patient/${patientId}` },
    policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTIN' }] },
    provision: provisionOf(seed, actors, labels),
  };
}

/** meta.security from the matrix file's label codes ([kind, code] pairs). */
export function security(pairs: [string, string][]): { system: string; code: string }[] {
  return pairs.map(([kind, code]) => ({ system: kind === 'confidentiality' ? CONF : SENS, code }));
}

/** A valid resource of `type` in the compartment of `patientId` (the Patient itself: one related to the GP when side is rel). */
export function resourceOf(type: string, w: World, side: Side, patientId: string | undefined, tag: string, labels: [string, string][]): Record<string, unknown> {
  const meta = { tag: [{ system: TAG, code: tag }], ...(labels.length ? { security: security(labels) } : {}) };
  const subject = { reference: `Patient/${patientId}` };
  switch (type) {
    case 'Patient':
      return { ...patient('Matrix', side === 'rel' ? { generalPractitioner: [{ reference: w.doc }] } : {}), meta };
    case 'Observation':
      return { resourceType: 'Observation', meta, status: 'final', code: { text: 'matrix' }, subject };
    case 'MedicationRequest':
      return { resourceType: 'MedicationRequest', meta, status: 'active', intent: 'order', subject, medicationCodeableConcept: { text: 'aspirin' } };
    case 'Claim':
      return { resourceType: 'Claim', meta, status: 'active', use: 'claim', type: { text: 't' }, patient: subject, created: '2026-01-01', provider: { display: 'x' }, priority: { text: 'normal' }, insurance: [{ sequence: 1, focal: true, coverage: { display: 'c' } }] };
    case 'DocumentReference':
      return { resourceType: 'DocumentReference', meta, status: 'current', subject, content: [{ attachment: { contentType: 'text/plain', data: Buffer.from('matrix note').toString('base64') } }] };
    case 'Provenance':
      return { resourceType: 'Provenance', meta, target: [subject], recorded: '2026-01-01T00:00:00Z', agent: [{ who: { reference: w.doc } }] };
    case 'Organization':
      return { resourceType: 'Organization', meta, name: 'Matrix Org' };
    default:
      throw new Error(`decision matrix: no seed body for ${type}`);
  }
}

/**
 * Creates the base world, then every target in transactions (one per 250 entries), then (for a
 * consent value's world) the value's Consent for every patient in it. `consent`: the seed of the
 * world's consent value (null for none); its one actor key, clinician, names the Practitioner
 * Matrixdoc (every clinician token's fhirUser).
 */
export async function seedMatrix(
  t: IssuerServer, specs: TargetSpec[], labels: Record<string, [string, string][]>, consent: ProvisionSeed | null = null,
): Promise<{ world: World; targets: Map<string, Target> }> {
  const headers = await t.auth('system');
  const create = async (body: Record<string, unknown>): Promise<string> => {
    const r = await call(`${t.base}/${body.resourceType}`, { method: 'POST', headers, json: body });
    assert.equal(r.status, 201, r.text);
    return r.body.id;
  };
  const doc = `Practitioner/${await create({ resourceType: 'Practitioner', name: [{ family: 'Matrixdoc' }] })}`;
  const world: World = { doc, rel: '', unrel: '' };
  world.rel = await create(patient('Matrixrel', { generalPractitioner: [{ reference: doc }] }));
  world.unrel = await create(patient('Matrixunrel'));
  const transaction = async (bodies: Record<string, unknown>[]): Promise<string[]> => {
    const r = await call(t.base, { method: 'POST', headers, json: {
      resourceType: 'Bundle', type: 'transaction', entry: bodies.map((resource) => ({ resource, request: { method: 'POST', url: resource.resourceType } })),
    } });
    assert.equal(r.status, 200, r.text);
    return bodies.map((_, j) => {
      const location: string = r.body.entry[j].response.location;
      const id = /([A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})\/_history\//.exec(location)?.[2];
      assert.ok(id, `no id in ${location}`);
      return id;
    });
  };
  const targets = new Map<string, Target>();
  for (let i = 0; i < specs.length; i += 250) {
    const chunk = specs.slice(i, i + 250);
    const tags = chunk.map((_, j) => `target-${i + j}`);
    const bodies = chunk.map((s, j) => resourceOf(s.type, world, s.side, s.side === 'rel' ? world.rel : world.unrel, tags[j], labels[s.label]));
    const ids = await transaction(bodies);
    chunk.forEach((s, j) => {
      const id = ids[j];
      const patientId = s.type === 'Patient' ? id : s.side === 'none' ? undefined : s.side === 'rel' ? world.rel : world.unrel;
      targets.set(s.key, { key: s.key, tag: tags[j], type: s.type, id, ...(patientId ? { patient: patientId } : {}), resource: { ...bodies[j], id } });
    });
  }
  if (consent) {
    const patients = [world.rel, world.unrel, ...[...targets.values()].filter((x) => x.type === 'Patient').map((x) => x.id)];
    const written = patients.map((p) => consentOf(p, consent, { clinician: doc }, labels));
    for (let i = 0; i < written.length; i += 250) await transaction(written.slice(i, i + 250));
  }
  return { world, targets };
}
