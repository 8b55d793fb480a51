import { randomUUID } from 'node:crypto';
import type { Principal } from '../auth/principal.ts';
import type { StoredResource, StoreWriter, UpdateOptions, UpdateResult } from '../store/store.ts';
import type { Resource } from '../fhir/types.ts';
import { versionDigest, versionReference, type ProvenanceSigner } from './provenance-signature.ts';

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
): Promise<{ result: T; provenance: string[] }> {
  const written = new Map<Activity, StoredResource[]>();
  const result = await work(recordingWriter(tx, (activity, stored) => {
    let list = written.get(activity);
    if (!list) written.set(activity, (list = []));
    list.push(stored);
  }));
  const provenance: string[] = [];
  // One moment for the whole unit: its Provenances were one act.
  const recorded = new Date().toISOString();
  for (const [activity, targets] of written) {
    const stored = await tx.create(provenanceOf(principal, activity, targets, recorded, signer));
    provenance.push(versionReference(stored));
  }
  return { result, provenance };
}

/** A writer that notes each version it stores (the Provenance recorded afterwards names them). */
function recordingWriter(tx: StoreWriter, note: (activity: Activity, stored: StoredResource) => void): StoreWriter {
  return {
    read: (type, id) => tx.read(type, id),
    vread: (type, id, vid) => tx.vread(type, id, vid),
    history: (q) => tx.history(q),
    search: (r) => tx.search(r),
    async create(resource: Resource & { id: string }): Promise<StoredResource> {
      const stored = await tx.create(resource);
      note('CREATE', stored);
      return stored;
    },
    async update(resource: Resource & { id: string }, options?: UpdateOptions): Promise<UpdateResult> {
      const result = await tx.update(resource, options);
      note(result.created ? 'CREATE' : 'UPDATE', result.stored);
      return result;
    },
    async delete(resourceType: string, id: string, options?: UpdateOptions): Promise<StoredResource | undefined> {
      const deleted = await tx.delete(resourceType, id, options);
      if (deleted) note('DELETE', deleted);
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
    target: targets.map((t) => ({ reference: versionReference(t) })),
    recorded,
    activity: { coding: [{ system: dataOperation, code: activity }] },
    agent,
  };
  if (signer) {
    const jws = signer.sign({ recorded, targets: targets.map((t) => ({ reference: versionReference(t), sha256: versionDigest(t) })) });
    provenance.signature = [{ type: [authorSignature], when: recorded, who, targetFormat: 'application/fhir+json', sigFormat: 'application/jose', data: Buffer.from(jws).toString('base64') }];
  }
  return provenance;
}

function roleOf(principal: Principal): Record<string, unknown> {
  return principal.role === 'anonymous' || principal.role === 'local' ? {} : { role: [{ text: principal.role }] };
}
