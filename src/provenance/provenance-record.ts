import { randomUUID } from 'node:crypto';
import type { Principal } from '../auth/principal.ts';
import type { StoredResource, StoreWriter, UpdateOptions, UpdateResult } from '../store/store.ts';
import type { Resource } from '../fhir/types.ts';
import { provenanceDigest, versionDigest, versionReference, type ProvenanceSigner } from './provenance-signature.ts';
import { FhirError } from '../fhir/outcome.ts';
import { compartmentPatients } from '../fhir/search/compartment.ts';

type Activity = 'CREATE' | 'UPDATE' | 'DELETE';

const dataOperation = 'http://terminology.hl7.org/CodeSystem/v3-DataOperation';
const participantType = 'http://terminology.hl7.org/CodeSystem/provenance-participant-type';
/** ASTM E1762-95 "Author's Signature". */
const authorSignature = { system: 'urn:iso-astm:E1762-95:2013', code: '1.2.840.10065.1.12.1.1', display: "Author's Signature" };

/**
 * Runs one atomic unit of writes (a request, or a whole transaction Bundle) and, in the same store
 * transaction, records a Provenance per kind of write it made: the target versions, when, who
 * (the user, and the app acting on their behalf) and the activity, signed when a signer is given.
 * Returns the work's result and the references of the Provenances written (for the audit record).
 */
export async function withProvenance<T>(
  tx: StoreWriter, principal: Principal, signer: ProvenanceSigner | undefined, work: (tx: StoreWriter) => Promise<T>,
): Promise<{ result: T; provenance: string[]; patients: string[] }> {
  // Grouped by activity and by the patients whose records they are: a Provenance is read with a
  // patient's record ($everything, _revinclude), so it must not name another patient's.
  const written = new Map<string, { activity: Activity; targets: StoredResource[] }>();
  const patients = new Set<string>();
  const result = await work(recordingWriter(tx, (activity, stored, concerned) => {
    for (const p of concerned) patients.add(p);
    const key = `${activity} ${[...concerned].sort().join(' ')}`;
    let group = written.get(key);
    if (!group) written.set(key, (group = { activity, targets: [] }));
    group.targets.push(stored);
  }));
  const provenance: string[] = [];
  // One moment for the whole unit: its Provenances were one act.
  const recorded = new Date().toISOString();
  for (const { activity, targets } of written.values()) {
    const stored = await tx.create(provenanceOf(principal, activity, targets, recorded, signer));
    provenance.push(versionReference(stored));
  }
  return { result, provenance, patients: [...patients] };
}

/** The patients whose compartment a stored version (or, for a deletion, the version before it) is in. */
function patientsOf(stored: StoredResource | undefined): string[] {
  if (!stored?.json) return [];
  return stored.resourceType === 'Patient' ? [stored.id] : compartmentPatients(JSON.parse(stored.json) as Resource);
}

/** Marks the Provenance the server records: nobody changes or deletes those, nor makes look-alikes. */
export const serverRecorded = { system: 'urn:bastion:provenance', code: 'server-recorded' };

function isServerRecorded(resource: Resource | undefined): boolean {
  if (resource?.resourceType !== 'Provenance') return false;
  const tags = (resource.meta as { tag?: { system?: string; code?: string }[] } | undefined)?.tag;
  return Array.isArray(tags) && tags.some((t) => t?.system === serverRecorded.system && t?.code === serverRecorded.code);
}

function wasServerRecorded(stored: StoredResource | undefined): boolean {
  return stored?.resourceType === 'Provenance' && stored.json !== undefined && isServerRecorded(JSON.parse(stored.json) as Resource);
}

function refuseServerRecorded(what: string): never {
  throw new FhirError(403, `${what}: the server records this Provenance itself, and nobody changes, deletes or imitates it`, 'forbidden');
}

/** A writer that notes each version it stores and whose record it is (the Provenance recorded afterwards names them). */
function recordingWriter(tx: StoreWriter, note: (activity: Activity, stored: StoredResource, patients: string[]) => void): StoreWriter {
  return {
    read: (type, id) => tx.read(type, id),
    vread: (type, id, vid) => tx.vread(type, id, vid),
    history: (q) => tx.history(q),
    search: (r) => tx.search(r),
    ...(tx.lock ? { lock: (key: string) => tx.lock!(key) } : {}),
    async create(resource: Resource & { id: string }): Promise<StoredResource> {
      if (isServerRecorded(resource)) refuseServerRecorded(`Provenance/${resource.id}`);
      const stored = await tx.create(resource);
      note('CREATE', stored, patientsOf(stored));
      return stored;
    },
    async update(resource: Resource & { id: string }, options?: UpdateOptions): Promise<UpdateResult> {
      const before = await tx.read(resource.resourceType, resource.id);
      if (resource.resourceType === 'Provenance' && (wasServerRecorded(before) || isServerRecorded(resource))) refuseServerRecorded(`Provenance/${resource.id}`);
      const result = await tx.update(resource, options);
      // A record moved from one patient to another concerns both.
      const concerned = [...new Set([...patientsOf(before), ...patientsOf(result.stored)])];
      note(result.created ? 'CREATE' : 'UPDATE', result.stored, concerned);
      return result;
    },
    async delete(resourceType: string, id: string, options?: UpdateOptions): Promise<StoredResource | undefined> {
      const before = await tx.read(resourceType, id);
      if (wasServerRecorded(before)) refuseServerRecorded(`Provenance/${id}`);
      const deleted = await tx.delete(resourceType, id, options);
      if (deleted) note('DELETE', deleted, patientsOf(before));
      return deleted;
    },
  };
}

function provenanceOf(
  principal: Principal, activity: Activity, targets: StoredResource[], recorded: string, signer: ProvenanceSigner | undefined,
): Resource & { id: string } {
  const who = principal.fhirUser ? { reference: principal.fhirUser } : { identifier: { value: principal.id } };
  const agent: Record<string, unknown>[] = [{ type: { coding: [{ system: participantType, code: 'author' }] }, ...(roleOf(principal)), who }];
  // A user acting through an app: the app performed the write on the user's behalf.
  if (principal.kind === 'user' && principal.clientId) {
    agent.push({ type: { coding: [{ system: participantType, code: 'performer' }] }, who: { identifier: { value: principal.clientId } }, onBehalfOf: who });
  }
  const provenance: Resource & { id: string } = {
    resourceType: 'Provenance',
    id: randomUUID(),
    meta: { tag: [serverRecorded] },
    target: targets.map((t) => ({ reference: versionReference(t) })),
    recorded,
    activity: { coding: [{ system: dataOperation, code: activity }] },
    agent,
  };
  if (signer) {
    const jws = signer.sign({ recorded, provenance: provenanceDigest(provenance), targets: targets.map((t) => ({ reference: versionReference(t), sha256: versionDigest(t) })) });
    provenance.signature = [{ type: [authorSignature], when: recorded, who, targetFormat: 'application/fhir+json', sigFormat: 'application/jose', data: Buffer.from(jws).toString('base64') }];
  }
  return provenance;
}

function roleOf(principal: Principal): Record<string, unknown> {
  return principal.role === 'anonymous' || principal.role === 'local' ? {} : { role: [{ text: principal.role }] };
}
