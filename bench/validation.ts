import { syntheaBundles } from '../test/shared-data.ts';
/**
 * Throughput of validateResource over the Synthea transaction bundles (every entry resource).
 * Run: node bench/validation.ts [seconds-per-measurement, default 2]
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { validateResource } from '../src/fhir/validation/validate.ts';

const dir = syntheaBundles;
const seconds = Number(process.argv[2] ?? 2);

const resources: { resourceType: string }[] = [];
for (const f of readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
  const bundle = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { entry: { resource: { resourceType: string } }[] };
  for (const e of bundle.entry) resources.push(e.resource);
}
const bytes = resources.reduce((n, r) => n + JSON.stringify(r).length, 0);

let t = performance.now();
const firstIssues = validateResource(resources[0]);
console.log(`first call (loads and compiles the definitions): ${(performance.now() - t).toFixed(0)} ms`);
t = performance.now();
let invalid = firstIssues.length > 0 ? 1 : 0;
for (const r of resources) if (validateResource(r).length > 0) invalid++;
console.log(`first pass over ${resources.length} resources (value sets expand lazily): ${(performance.now() - t).toFixed(0)} ms, ${invalid} invalid`);

function measure(label: string, list: unknown[]): void {
  // Warm up so the JIT has optimised the walk before timing.
  for (let i = 0; i < 3; i++) for (const r of list) validateResource(r);
  let count = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  while (performance.now() < deadline) {
    for (const r of list) validateResource(r);
    count += list.length;
  }
  const ms = performance.now() - start;
  const perSec = (count / ms) * 1000;
  console.log(`${label.padEnd(28)} ${Math.round(perSec).toLocaleString('en-US').padStart(12)} validations/s   ${((ms * 1000) / count).toFixed(2).padStart(7)} µs each`);
}

console.log(`\n${resources.length} resources, ${(bytes / 1e6).toFixed(1)} MB of JSON, ${seconds} s per measurement`);
measure('all bundle resources', resources);
for (const type of ['Patient', 'Observation', 'Encounter', 'Claim', 'ExplanationOfBenefit']) {
  measure(type, resources.filter((r) => r.resourceType === type));
}
const mbPerSec = (() => {
  const start = performance.now();
  for (const r of resources) validateResource(r);
  return bytes / 1e6 / ((performance.now() - start) / 1000);
})();
console.log(`\n~${mbPerSec.toFixed(0)} MB/s of resource JSON`);
