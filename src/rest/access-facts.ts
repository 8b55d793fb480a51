import type { Store, StoredResource } from '../store/store.ts';
import type { Resource } from '../fhir/types.ts';
import type { SearchCriterion, SearchRequest } from '../fhir/search/types.ts';
import type { RelationshipObligation } from '../access/relationship.ts';
import { compartmentPatients } from '../fhir/search/compartment.ts';
import { consentPolicy, type ConsentPolicy } from '../access/consent.ts';

/** What the access rules ask of one stored version: its labels and the patients whose compartment holds it. */
export interface ResourceFacts {
  /** `system|code` of each meta.security coding. */
  labels: string[];
  /** Ids of the patients whose compartment the resource is in (its own id for a Patient). */
  patients: string[];
}

/**
 * Facts the access rules need, derived from committed data and kept while the store's generation
 * says nothing committed since: a clinician's related patients, and the labels and patients of
 * resources read. They let a read be decided without another query, and a search carry its
 * clinician's patients as a list instead of a join over care teams and encounters per row.
 * Only ever used with the store itself (never a transaction's view, which may differ).
 */
export class AccessFacts {
  readonly store: Store;
  private relatedGeneration = -1;
  private consentGeneration = -1;
  private related = new Map<string, Derived<ReadonlySet<string> | undefined>>();
  private resources = new Map<string, { versionId: string; facts: ResourceFacts }>();
  private consents = new Derived<readonly ConsentPolicy[]>();

  constructor(store: Store) {
    this.store = store;
  }

  /**
   * The patients a clinician is related to now (by the kinds of the obligation); undefined when
   * they are too many to carry as a list (the query then joins as before).
   */
  relatedPatients(r: RelationshipObligation, criterion: SearchCriterion): ReadonlySet<string> | undefined | Promise<ReadonlySet<string> | undefined> {
    // Relationships live in care teams, encounters and patients (generalPractitioner).
    const g = this.store.generation(relationshipTypes);
    if (g !== this.relatedGeneration) {
      this.relatedGeneration = g;
      if (this.related.size > 0) this.related = new Map();
    }
    const key = `${r.practitioner ?? ''}|${r.kinds.join(',')}`;
    let derived = this.related.get(key);
    if (!derived) {
      if (this.related.size >= 1000) this.related.delete(this.related.keys().next().value!);
      this.related.set(key, (derived = new Derived()));
    }
    return derived.get(() => this.findRelated(criterion));
  }

  /** Labels and patients of a stored version, parsed once per version. */
  of(stored: StoredResource & { json: string }): ResourceFacts {
    const key = `${stored.resourceType}/${stored.id}`;
    const known = this.resources.get(key);
    if (known && known.versionId === stored.versionId) return known.facts;
    const facts = factsOf(JSON.parse(stored.json) as Resource);
    if (this.resources.size >= 50_000) this.resources.delete(this.resources.keys().next().value!);
    this.resources.set(key, { versionId: stored.versionId, facts });
    return facts;
  }

  /**
   * The active patient-privacy Consents, as policies (see access/consent.ts): read again after a
   * Consent was written. Synchronous when nothing changed since they were last read.
   */
  activeConsents(): readonly ConsentPolicy[] | Promise<readonly ConsentPolicy[]> {
    const g = this.store.generation(consentTypes);
    if (g !== this.consentGeneration) {
      this.consentGeneration = g;
      this.consents = new Derived();
    }
    return this.consents.get(() => this.loadConsents());
  }

  private async loadConsents(): Promise<readonly ConsentPolicy[]> {
    const policies: ConsentPolicy[] = [];
    const page = 1000;
    let cursor: string | undefined;
    for (;;) {
      const request: SearchRequest = {
        resourceTypes: ['Consent'], criteria: [{ kind: 'token', code: 'status', negate: false, values: [{ code: 'active' }] }],
        sort: [], count: page, offset: 0, total: 'none', include: [], revinclude: [], ...(cursor ? { cursor } : {}),
      };
      const result = await this.store.search(request);
      for (const m of result.matches) {
        const policy = m.json ? consentPolicy(JSON.parse(m.json) as Record<string, unknown>) : undefined;
        if (policy) policies.push(policy);
      }
      if (!result.next) return policies;
      cursor = result.next;
    }
  }

  private async findRelated(criterion: SearchCriterion): Promise<ReadonlySet<string> | undefined> {
    const request: SearchRequest = {
      resourceTypes: ['Patient'], criteria: [criterion], sort: [], count: maxRelated + 1, offset: 0, total: 'none', include: [], revinclude: [],
    };
    const { matches } = await this.store.search(request);
    return matches.length > maxRelated ? undefined : new Set(matches.map((m) => m.id));
  }
}

/**
 * A value derived from the store once, asynchronously, then served without waiting (no turn of
 * the microtask queue on every request). A failed derivation is tried again on the next ask; a
 * derivation that outlives a commit lands in an instance nobody asks any more.
 */
class Derived<T> {
  private pending: Promise<T> | undefined;
  private known: { value: T } | undefined;

  get(derive: () => Promise<T>): T | Promise<T> {
    if (this.known) return this.known.value;
    if (!this.pending) {
      const pending = derive();
      this.pending = pending;
      pending.then((value) => {
        if (this.pending === pending) this.known = { value };
      }, () => {
        if (this.pending === pending) this.pending = undefined;
      });
    }
    return this.pending;
  }
}

const relationshipTypes = ['CareTeam', 'Encounter', 'Patient'];
const consentTypes = ['Consent'];

/** A clinician's panel beyond this is left to the query's join (a list this long stops paying). */
const maxRelated = 2000;

export function factsOf(resource: Resource): ResourceFacts {
  const security = (resource.meta as { security?: { system?: string; code?: string }[] } | undefined)?.security;
  const labels = Array.isArray(security) ? security.map((c) => `${c.system ?? ''}|${c.code ?? ''}`) : [];
  return { labels, patients: compartmentPatients(resource) };
}

/** The active consents the access rules consult (none where no facts are kept: a context without the store's facts). */
export function consentsIn(facts: AccessFacts | undefined): readonly ConsentPolicy[] | Promise<readonly ConsentPolicy[]> {
  return facts ? facts.activeConsents() : [];
}
