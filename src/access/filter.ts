import type { Decision } from './decide.ts';
import { maskResource } from './minimum-necessary.ts';

/**
 * Applies a decision's obligations to a response body before it leaves. With no masks the body
 * passes through untouched (and unparsed, which keeps reads fast); with masks, every resource in
 * it (a read, the entries of a search or batch Bundle) loses the masked elements.
 */
export function applyObligations<T>(decision: Decision, body: T): T {
  const masks = decision.obligations.mask;
  if (masks.length === 0) return body;
  if (typeof body === 'string') {
    const parsed = JSON.parse(body) as Record<string, unknown>;
    return (maskTree(parsed, masks) ? JSON.stringify(parsed) : body) as T;
  }
  if (typeof body === 'object' && body !== null) maskTree(body as Record<string, unknown>, masks);
  return body;
}

function maskTree(resource: Record<string, unknown>, masks: readonly string[]): boolean {
  let changed = maskResource(resource, masks);
  if (resource.resourceType === 'Bundle' && Array.isArray(resource.entry)) {
    for (const e of resource.entry as { resource?: Record<string, unknown> }[]) if (e.resource) changed = maskTree(e.resource, masks) || changed;
  }
  return changed;
}
