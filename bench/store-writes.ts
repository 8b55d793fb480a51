/**
 * Store-level write cost, without HTTP: creates Synthea Patients (new ids) through SqliteStore in
 * transactions of BATCH, and prints creates/s, the index rows per Patient and the WAL growth.
 * Run: node bench/store-writes.ts [count=3000] [batch=10]
 */
import crypto from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import { extractIndexRows } from '../src/fhir/search/extract.ts';
import type { Resource } from '../src/fhir/types.ts';
import { syntheaBundles } from '../test/shared-data.ts';

const count = Number(process.argv[2] ?? 3000);
const batch = Number(process.argv[3] ?? 10);
const patients: Resource[] = [];
for (const f of readdirSync(syntheaBundles).filter((f) => f.endsWith('.json'))) {
  const b = JSON.parse(readFileSync(join(syntheaBundles, f), 'utf8')) as { entry: { resource: Resource }[] };
  for (const e of b.entry) if (e.resource.resourceType === 'Patient') patients.push(e.resource);
}
const rows = extractIndexRows(patients[0]);
console.log('index rows for one Patient:', Object.fromEntries(Object.entries(rows).map(([k, v]) => [k, (v as unknown[]).length])));

const dir = mkdtempSync(join(tmpdir(), 'bastion-store-bench-'));
const store = new SqliteStore({ path: join(dir, 'b.db'), key: crypto.randomBytes(32) });
const t0 = performance.now();
let cpu0 = process.cpuUsage();
const pending: Promise<unknown>[] = [];
for (let i = 0; i < count; i += batch) {
  for (let j = i; j < Math.min(count, i + batch); j++) {
    const p = { ...structuredClone(patients[j % patients.length]), id: `p${j}` };
    pending.push(store.transaction((tx) => tx.create(p as Resource & { id: string })));
  }
  await Promise.all(pending.splice(0));
}
const s = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
console.log(`${count} creates in ${s.toFixed(2)} s = ${Math.round(count / s)}/s; CPU ${(((cpu.user + cpu.system) / 1e6 / count) * 1e6).toFixed(0)} µs/create; WAL ${(statSync(join(dir, 'b.db-wal')).size / 1048576).toFixed(1)} MiB, db ${(statSync(join(dir, 'b.db')).size / 1048576).toFixed(1)} MiB`);
await store.close();
rmSync(dir, { recursive: true, force: true });
