import { syntheaBundles } from '../shared-data.ts';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Resource } from '../../src/fhir/types.ts';

export const syntheaDir = syntheaBundles;

/**
 * The resources of the first `n` Synthea bundles (sorted by file name), with the ids they carry
 * and `urn:uuid:` references rewritten to `Type/id`, as the server does before storing a
 * transaction's entries. Resources shared between bundles (organizations, practitioners)
 * appear once.
 */
export function loadSynthea(n: number): (Resource & { id: string })[] {
  const out: (Resource & { id: string })[] = [];
  const seen = new Set<string>();
  for (const file of readdirSync(syntheaDir).filter((f) => f.endsWith('.json')).sort().slice(0, n)) {
    const bundle = JSON.parse(readFileSync(join(syntheaDir, file), 'utf8')) as { entry: { fullUrl: string; resource: Resource & { id: string } }[] };
    const local = new Map(bundle.entry.map((e) => [e.fullUrl, `${e.resource.resourceType}/${e.resource.id}`]));
    const text = JSON.stringify(bundle.entry.map((e) => e.resource)).replace(/"(urn:uuid:[0-9a-fA-F-]+)"/g, (all, urn: string) => {
      const target = local.get(urn);
      return target ? JSON.stringify(target) : all;
    });
    for (const r of JSON.parse(text) as (Resource & { id: string })[]) {
      const key = `${r.resourceType}/${r.id}`;
      if (!seen.has(key)) out.push(r);
      seen.add(key);
    }
  }
  return out;
}
