import type { Config } from '../../config/config.ts';
import type { StoreReader } from '../../store/store.ts';
import { FhirError } from '../../fhir/outcome.ts';
import { findMatches, splitConditional } from '../../rest/conditional.ts';

/**
 * Calls `visit` for every object with a string `reference` in a resource, at any depth (contained
 * resources and extensions included), as the pipeline's own reference rewriting does.
 */
export function forEachReference(node: unknown, visit: (holder: Record<string, unknown>, reference: string) => void, depth = 0): void {
  if (depth > 200 || node === null || typeof node !== 'object') return;
  if (Array.isArray(node)) {
    for (const item of node) forEachReference(item, visit, depth + 1);
    return;
  }
  const obj = node as Record<string, unknown>;
  if (typeof obj.reference === 'string') visit(obj, obj.reference);
  for (const key in obj) {
    const v = obj[key];
    if (v !== null && typeof v === 'object') forEachReference(v, visit, depth + 1);
  }
}

/** The distinct conditional references (`Practitioner?identifier=...`) in a resource. */
export function conditionalReferences(resource: unknown): string[] {
  const out = new Set<string>();
  forEachReference(resource, (_, ref) => {
    if (splitConditional(ref)) out.add(ref);
  });
  return [...out];
}

/** Replaces, in place, every reference `map` has an answer for. */
export function replaceReferences(resource: unknown, map: (reference: string) => string | undefined): void {
  forEachReference(resource, (holder, ref) => {
    const to = map(ref);
    if (to !== undefined) holder.reference = to;
  });
}

export type Resolution =
  | { kind: 'resolved'; target: string }
  /** No match yet: the target may still come later in the import. */
  | { kind: 'missing'; message: string }
  /** Several matches, or criteria the server cannot evaluate: waiting will not help. */
  | { kind: 'failed'; message: string };

/**
 * Resolves conditional references against committed data, as a transaction Bundle would
 * (findMatches: exactly one match). Resolutions are cached: a resolved or failed reference for the
 * rest of the import, a missing one until the next commit (`committed()`), since only a commit can
 * make it appear. A reference resolved once keeps its target even if a later line adds a second
 * match; the transaction semantics of each batch are unaffected.
 */
export class ConditionalResolver {
  private readonly reader: StoreReader;
  private readonly config: Config;
  private readonly settled = new Map<string, Resolution>();
  private readonly missing = new Map<string, { generation: number; resolution: Resolution }>();
  private generation = 0;
  /** Searches actually run (the rest came from the cache): for tests and tuning. */
  searches = 0;

  constructor(reader: StoreReader, config: Config) {
    this.reader = reader;
    this.config = config;
  }

  /** Something was committed: misses must be looked up again. */
  committed(): void {
    this.generation++;
  }

  async resolve(reference: string): Promise<Resolution> {
    const settled = this.settled.get(reference);
    if (settled) return settled;
    const miss = this.missing.get(reference);
    if (miss && miss.generation === this.generation) return miss.resolution;
    const cond = splitConditional(reference);
    if (!cond) return { kind: 'failed', message: `${reference} is not a conditional reference` };
    let resolution: Resolution;
    try {
      this.searches++;
      const matches = await findMatches(this.reader, this.config, cond.resourceType, cond.criteria);
      if (matches.length === 1) resolution = { kind: 'resolved', target: `${cond.resourceType}/${matches[0].id}` };
      else if (matches.length === 0) resolution = { kind: 'missing', message: `the conditional reference ${reference} matches no resource` };
      else resolution = { kind: 'failed', message: `the conditional reference ${reference} matches several resources` };
    } catch (err) {
      const message = err instanceof FhirError ? err.message : 'the criteria could not be evaluated';
      resolution = { kind: 'failed', message: `the conditional reference ${reference} cannot be resolved: ${message}` };
    }
    if (resolution.kind === 'missing') this.missing.set(reference, { generation: this.generation, resolution });
    else {
      this.missing.delete(reference);
      this.settled.set(reference, resolution);
    }
    return resolution;
  }
}
