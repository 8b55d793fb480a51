import type { HistoryQuery, HistoryPage, SearchResult, StoreReader, StoreWriter, StoredResource, UpdateOptions, UpdateResult } from '../store/store.ts';
import type { SearchConstraint, SearchCriterion, SearchRequest } from '../fhir/search/types.ts';
import type { Obligations } from '../access/decide.ts';
import type { Resource } from '../fhir/types.ts';
import { compartmentConstraint } from '../fhir/search/compartment.ts';
import { compartmentMemberTypes } from '../fhir/compartments.ts';
import { parseSearch } from '../fhir/search/parse.ts';
import { FhirError } from '../fhir/outcome.ts';
import { resolveTerminology } from './search-terminology.ts';

/**
 * What a decision confines an interaction to (the launch patient's compartment, a granular
 * scope's searches), as search constraints. Every path to data goes through them: searches carry
 * them (so includes, counts and paging obey too), reads and history see only resources that
 * satisfy them, and writes may neither touch a resource outside them nor leave one outside them.
 */
export class Confinement {
  readonly constraints: SearchConstraint[];

  private constructor(constraints: SearchConstraint[]) {
    this.constraints = constraints;
  }

  /** undefined when the obligations confine nothing. */
  static of(obligations: Obligations, resourceType: string | undefined): Confinement | undefined {
    const constraints: SearchConstraint[] = [];
    if (obligations.compartmentPatient !== undefined) {
      // Every type that can be in a Patient compartment, so included resources are held to it too.
      constraints.push(compartmentConstraint('Patient', obligations.compartmentPatient, compartmentMemberTypes('Patient')));
    }
    if (obligations.anyOfQueries.length > 0) {
      constraints.push({ anyOf: obligations.anyOfQueries.map((q) => granular(resourceType, q)) });
    }
    return constraints.length > 0 ? new Confinement(constraints) : undefined;
  }

  /** A search limited to what the confinement allows. */
  constrain(request: SearchRequest): SearchRequest {
    return { ...request, constraints: [...(request.constraints ?? []), ...this.constraints] };
  }

  /** Whether the current version of type/id exists, is live and satisfies the constraints. */
  async admits(reader: StoreReader, resourceType: string, id: string): Promise<boolean> {
    const request = this.constrain({
      resourceTypes: [resourceType], criteria: [{ kind: 'token', code: '_id', negate: false, values: [{ code: id }] }],
      sort: [], count: 1, offset: 0, total: 'none', include: [], revinclude: [],
    });
    await resolveTerminology(request, reader);
    return (await reader.search(request)).matches.length > 0;
  }

  reader(inner: StoreReader): StoreReader {
    return new ConfinedReader(inner, this);
  }

  writer(inner: StoreWriter): StoreWriter {
    return new ConfinedWriter(inner, this);
  }
}

/** A granular scope's query as one criterion: all its parameters hold (parsed strictly, as a client's search would be). */
function granular(resourceType: string | undefined, query: [string, string][]): SearchCriterion {
  const { request } = parseSearch(resourceType, query, { maxCount: 1, defaultCount: 1, lenient: false });
  return { kind: 'all-of', code: '_scope', criteria: request.criteria };
}

/** Reads that treat what lies outside the confinement as if it did not exist (404, not 403: its existence is not told). */
class ConfinedReader implements StoreReader {
  protected readonly inner: StoreReader;
  protected readonly confinement: Confinement;

  constructor(inner: StoreReader, confinement: Confinement) {
    this.inner = inner;
    this.confinement = confinement;
  }

  async read(resourceType: string, id: string): Promise<StoredResource | undefined> {
    const r = await this.inner.read(resourceType, id);
    return r && (await this.confinement.admits(this.inner, resourceType, id)) ? r : undefined;
  }

  async vread(resourceType: string, id: string, versionId: string): Promise<StoredResource | undefined> {
    const r = await this.inner.vread(resourceType, id, versionId);
    return r && (await this.confinement.admits(this.inner, resourceType, id)) ? r : undefined;
  }

  async history(query: HistoryQuery): Promise<HistoryPage> {
    if (query.resourceType === undefined || query.id === undefined) {
      throw new FhirError(403, 'History across resources is not available to a token confined to a patient or to granular scopes; search instead', 'forbidden');
    }
    if (!(await this.confinement.admits(this.inner, query.resourceType, query.id))) return { entries: [], total: 0 };
    return this.inner.history(query);
  }

  async search(request: SearchRequest): Promise<SearchResult> {
    const constrained = this.confinement.constrain(request);
    // A granular scope may itself use :in / :below.
    await resolveTerminology(constrained, this.inner);
    return this.inner.search(constrained);
  }
}

/** Writes inside the confinement only: the resource before (if any) and after must both be admitted. */
class ConfinedWriter extends ConfinedReader implements StoreWriter {
  private readonly writer: StoreWriter;

  constructor(inner: StoreWriter, confinement: Confinement) {
    super(inner, confinement);
    this.writer = inner;
  }

  async create(resource: Resource & { id: string }): Promise<StoredResource> {
    const stored = await this.writer.create(resource);
    await this.mustAdmit(resource.resourceType, resource.id, 'create');
    return stored;
  }

  async update(resource: Resource & { id: string }, options?: UpdateOptions): Promise<UpdateResult> {
    await this.mustAdmitIfLive(resource.resourceType, resource.id, 'change');
    const result = await this.writer.update(resource, options);
    await this.mustAdmit(resource.resourceType, resource.id, 'leave');
    return result;
  }

  async delete(resourceType: string, id: string, options?: UpdateOptions): Promise<StoredResource | undefined> {
    await this.mustAdmitIfLive(resourceType, id, 'delete');
    return this.writer.delete(resourceType, id, options);
  }

  private async mustAdmitIfLive(resourceType: string, id: string, verb: string): Promise<void> {
    const current = await this.writer.read(resourceType, id);
    if (current && !current.deleted) await this.mustAdmit(resourceType, id, verb);
  }

  /** Throwing inside the store transaction rolls the write back. */
  private async mustAdmit(resourceType: string, id: string, verb: string): Promise<void> {
    if (await this.confinement.admits(this.writer, resourceType, id)) return;
    const what = verb === 'leave' ? 'leave a resource outside' : `${verb} a resource outside`;
    throw new FhirError(403, `Access denied: this token may not ${what} the patient compartment or granular scopes it is confined to`, 'forbidden');
  }
}
