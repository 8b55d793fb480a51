import type { Resource } from '../fhir/types.ts';

/**
 * Replaces, everywhere in a resource, references to other entries of the same transaction
 * (`urn:uuid:...` fullUrls) with the ids assigned to them, and conditional references with the
 * resource they select. Contained references (`#x`) and absolute URLs stay as they are.
 */
export async function rewriteReferences(
  resource: Resource,
  ids: ReadonlyMap<string, string>,
  resolveConditional: (reference: string) => Promise<string | undefined>,
): Promise<Resource> {
  const pending: { holder: Record<string, unknown>; ref: string }[] = [];
  walk(resource, (holder) => {
    const ref = holder.reference;
    if (typeof ref !== 'string') return;
    const mapped = ids.get(ref);
    if (mapped) holder.reference = mapped;
    else if (/^[A-Z][A-Za-z]+\?/.test(ref)) pending.push({ holder, ref });
  });
  const resolved = new Map<string, string | undefined>();
  for (const { holder, ref } of pending) {
    if (!resolved.has(ref)) resolved.set(ref, await resolveConditional(ref));
    const target = resolved.get(ref);
    if (target) holder.reference = target;
  }
  return resource;
}

function walk(node: unknown, visit: (holder: Record<string, unknown>) => void, depth = 0): void {
  if (depth > 200 || node === null || typeof node !== 'object') return;
  if (Array.isArray(node)) {
    for (const item of node) walk(item, visit, depth + 1);
    return;
  }
  const obj = node as Record<string, unknown>;
  if ('reference' in obj) visit(obj);
  for (const key in obj) walk(obj[key], visit, depth + 1);
}
