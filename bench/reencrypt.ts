/**
 * `npm run bench:reencrypt`: how fast a key rotation re-encrypts the store. Loads BENCH_RESOURCES
 * resources (default 1,000,000: the Synthea sample's resources again and again under new ids,
 * every version sealed with the resource-body key and SSNs/MRNs encrypted), rotates the
 * resource-body and identifier keys, then runs the re-encryption job the server runs in the
 * background and prints versions/s (and the load rate, for scale).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openKeys, openStore } from '../src/main.ts';
import type { Resource } from '../src/fhir/types.ts';
import { fmtInt, numberFromEnv } from './harness.ts';

const total = numberFromEnv(process.env, 'BENCH_RESOURCES', 1_000_000);
const sample = join(new URL('../../shared/data/synthea/bulk-ndjson-10-patients/', import.meta.url).pathname);
const templates = readdirSync(sample).filter((f) => f.endsWith('.000.ndjson'))
  .flatMap((f) => readFileSync(join(sample, f), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Resource & { id: string }));
const dir = mkdtempSync(join(tmpdir(), 'bastion-bench-reencrypt-'));
try {
  const keys = await openKeys(dir);
  let store = await openStore(dir, keys, { encryptResourceBodies: true });
  const batch = 2000;
  const loadStarted = performance.now();
  for (let n = 0; n < total; n += batch) {
    await store.transaction(async (tx) => {
      for (let i = n; i < Math.min(total, n + batch); i++) {
        const t = templates[i % templates.length];
        await tx.create({ ...t, id: `${t.id.slice(0, 24)}-${i}` });
      }
    });
    if (process.stderr.isTTY && n % 50_000 === 0) process.stderr.write(`\r\x1b[Kloading ${fmtInt(n)} of ${fmtInt(total)}`);
  }
  const loadSeconds = (performance.now() - loadStarted) / 1000;
  if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
  await store.close();
  await keys.rotate('resource-body');
  await keys.rotate('identifier');
  store = await openStore(dir, keys, { encryptResourceBodies: true });
  const started = performance.now();
  const done = await store.reencrypt!((p) => {
    if (process.stderr.isTTY && p.examined % 50_000 < 500) process.stderr.write(`\r\x1b[Kre-encrypting ${fmtInt(p.examined)} of ${fmtInt(p.total)}`);
  });
  const seconds = (performance.now() - started) / 1000;
  if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
  await store.close();
  if (done.rewritten !== total) throw new Error(`rewrote ${done.rewritten} of ${total}`);
  console.log(`re-encryption after rotating the resource-body and identifier keys: ${fmtInt(total)} versions`);
  console.log(`  load (sealed, indexed, batches of ${batch})   ${fmtInt(total / loadSeconds)} resources/s  (${loadSeconds.toFixed(1)} s)`);
  console.log(`  re-encrypt (batches of 500 between writes)  ${fmtInt(total / seconds)} versions/s  (${seconds.toFixed(1)} s)`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
