import type { Bundle, BundleEntry } from './types.ts';

/** A Bundle serialized around entries that may already be JSON text, so stored resources are not re-parsed. */
export interface RawEntry {
  fullUrl?: string;
  /** The resource as stored JSON text. */
  resourceJson?: string;
  /** Everything else of the entry (search, request, response). */
  rest: Omit<BundleEntry, 'fullUrl' | 'resource'>;
}

export function serializeBundle(bundle: Omit<Bundle, 'entry'>, entries: RawEntry[]): string {
  const head = JSON.stringify(bundle);
  if (entries.length === 0) return head;
  const parts = entries.map((e) => {
    const fields: string[] = [];
    if (e.fullUrl !== undefined) fields.push(`"fullUrl":${JSON.stringify(e.fullUrl)}`);
    if (e.resourceJson !== undefined) fields.push(`"resource":${e.resourceJson}`);
    for (const [k, v] of Object.entries(e.rest)) if (v !== undefined) fields.push(`${JSON.stringify(k)}:${JSON.stringify(v)}`);
    return `{${fields.join(',')}}`;
  });
  return `${head.slice(0, -1)},"entry":[${parts.join(',')}]}`;
}
