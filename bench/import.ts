/**
 * Import throughput: the whole Synthea set (bundles/ and bulk-ndjson-10-patients/) into a fresh
 * temporary data dir, through the REST pipeline; then a check (not timed) that every imported
 * resource reads back equal and every reference resolves; then the same import again (nothing
 * changes, nothing is written).
 * Run: node bench/import.ts [batch size, default the importer's]
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { loadConfig } from '../src/config/config.ts';
import { openStore } from '../src/main.ts';
import type { Store } from '../src/store/store.ts';
import type { Resource } from '../src/fhir/types.ts';
import { defaultBatchSize, importFiles } from '../src/jobs/import/importer.ts';
import { forEachReference, replaceReferences } from '../src/jobs/import/references.ts';
import { withoutServerMeta } from '../src/jobs/import/same-content.ts';
import { totalResources, type ImportReport } from '../src/jobs/import/report.ts';
import { syntheaBundles, syntheaNdjson } from '../test/shared-data.ts';

const batchSize = Number(process.argv[2] ?? defaultBatchSize);
const dataDir = mkdtempSync(join(tmpdir(), 'bastion-bench-import-'));
const config = loadConfig({ dataDir }, {});
const store = await openStore(dataDir);

function line(label: string, r: ImportReport): string {
  const n = totalResources(r);
  const c = Object.values(r.byType).reduce((a, t) => ({ created: a.created + t.created, updated: a.updated + t.updated, unchanged: a.unchanged + t.unchanged }), { created: 0, updated: 0, unchanged: 0 });
  return `${label.padEnd(38)} ${n.toLocaleString('en-US').padStart(7)} resources in ${r.seconds.toFixed(2).padStart(6)} s = ${Math.round(n / r.seconds).toLocaleString('en-US').padStart(6)} resources/s` +
    `  (${c.created} created, ${c.updated} updated, ${c.unchanged} unchanged, ${r.errors.length} errors, ${(r.bytes / 1048576 / r.seconds).toFixed(1)} MB/s)`;
}

/** What every resource of the set should read back as: the file's resource, references mapped as the import must map them. */
function expectedResources(): Map<string, Resource> {
  const out = new Map<string, Resource>();
  const ndjson: Resource[] = [];
  for (const f of readdirSync(syntheaNdjson).filter((f) => f.endsWith('.ndjson') && f !== 'log.ndjson')) {
    for (const l of readFileSync(join(syntheaNdjson, f), 'utf8').split('\n')) if (l.trim()) ndjson.push(JSON.parse(l) as Resource);
  }
  const byIdentifier = new Map<string, string>();
  for (const r of ndjson) for (const i of (r.identifier ?? []) as { system: string; value: string }[]) byIdentifier.set(`${r.resourceType}?identifier=${i.system}|${i.value}`, `${r.resourceType}/${r.id}`);
  for (const r of ndjson) {
    replaceReferences(r, (ref) => byIdentifier.get(ref));
    out.set(`${r.resourceType}/${r.id}`, r);
  }
  for (const f of readdirSync(syntheaBundles).filter((f) => f.endsWith('.json'))) {
    const entries = (JSON.parse(readFileSync(join(syntheaBundles, f), 'utf8')) as { entry: { fullUrl: string; resource: Resource }[] }).entry;
    const byFullUrl = new Map(entries.map((e) => [e.fullUrl, `${e.resource.resourceType}/${e.resource.id}`]));
    for (const e of entries) {
      replaceReferences(e.resource, (ref) => byFullUrl.get(ref));
      out.set(`${e.resource.resourceType}/${e.resource.id}`, e.resource);
    }
  }
  return out;
}

async function verify(store: Store): Promise<string> {
  const expected = expectedResources();
  let different = 0;
  let missing = 0;
  let refs = 0;
  let unresolved = 0;
  const resolves = new Map<string, boolean>();
  for (const [key, want] of expected) {
    const [type, id] = key.split('/');
    const stored = await store.read(type, id);
    if (!stored?.json) {
      missing++;
      continue;
    }
    const got = JSON.parse(stored.json) as Resource;
    if (!isDeepStrictEqual(withoutServerMeta(got), withoutServerMeta(want))) different++;
    const targets: string[] = [];
    forEachReference(got, (_, ref) => {
      if (!ref.startsWith('#')) targets.push(ref);
    });
    for (const ref of targets) {
      refs++;
      if (!resolves.has(ref)) {
        const [t, i] = ref.split('/');
        resolves.set(ref, /^[A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64}$/.test(ref) && !!(await store.read(t, i))?.json);
      }
      if (!resolves.get(ref)) unresolved++;
    }
  }
  return `read back ${expected.size.toLocaleString('en-US')} resources: ${missing} missing, ${different} different; ` +
    `${refs.toLocaleString('en-US')} references, ${unresolved} unresolved`;
}

try {
  console.log(`batch size ${batchSize}; data dir ${dataDir}`);
  const first = await importFiles([syntheaNdjson, syntheaBundles], { store, config, batchSize });
  console.log(line('fresh import (bulk NDJSON + bundles)', first));
  for (const e of first.errors.slice(0, 5)) console.log(`  error ${e.file}:${e.line ?? ''} ${e.message}`);
  console.log(await verify(store));
  const again = await importFiles([syntheaNdjson, syntheaBundles], { store, config, batchSize });
  console.log(line('re-run (all unchanged, nothing written)', again));
} finally {
  await store.close();
  rmSync(dataDir, { recursive: true, force: true });
}
