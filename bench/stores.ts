/**
 * `npm run bench:stores`: the core, search and auth benchmarks (bench/run.ts, every scenario) on
 * the embedded store and on PostgreSQL, one after the other in one run, then side by side.
 *
 * PostgreSQL: `BENCH_POSTGRES_URL` (or `BASTION_TEST_POSTGRES_URL`; scripts/test-postgres.sh starts
 * one on loopback). Each run gets a fresh schema, dropped afterwards. Bastion runs on it as
 * deployed: bodies sealed (encryptResourceBodies defaults on with a database), identifiers
 * encrypted; the embedded store runs with its defaults (file encryption). On this machine the
 * database shares the two cores with the server and the load generator: its CPU is in the
 * "other" column of each run's own table.
 *
 * Environment: those of bench/run.ts (BENCH_DURATION, BENCH_ONLY, ...), plus
 *   BENCH_POSTGRES_URL=postgres://...   the database (default: BASTION_TEST_POSTGRES_URL)
 *   BENCH_STORES=embedded,postgres      which to run, in this order
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { fmtInt, fmtMs, runMain, table } from './harness.ts';
import { Database } from '../src/store/postgres/database.ts';

interface Result {
  name: string;
  rate: number;
  p50: number;
  p99: number;
  failures: number;
}

const root = fileURLToPath(new URL('..', import.meta.url));
const url = process.env.BENCH_POSTGRES_URL ?? process.env.BASTION_TEST_POSTGRES_URL;
const stores = (process.env.BENCH_STORES ?? 'embedded,postgres').split(',').map((s) => s.trim());

/** One full bench/run.ts on a store; its own output passes through. */
async function runOn(store: string, scratch: string): Promise<Result[]> {
  const json = join(scratch, `${store}.json`);
  const env: NodeJS.ProcessEnv = { ...process.env, BENCH_JSON: json, BENCH_SKIP_IMPORT: '1' };
  delete env.BASTION_DATABASE_URL;
  let schema: string | undefined;
  if (store === 'postgres') {
    if (!url) throw new Error('BENCH_POSTGRES_URL (or BASTION_TEST_POSTGRES_URL) is not set: see scripts/test-postgres.sh');
    schema = `bench_${randomBytes(4).toString('hex')}`;
    Object.assign(env, { BASTION_DATABASE_URL: url, BASTION_DATABASE_SCHEMA: schema });
  }
  console.log(`\n=== ${store} ===`);
  try {
    const out = spawnSync(process.execPath, [join(root, 'bench/run.ts')], { env, stdio: 'inherit' });
    if (out.status !== 0) throw new Error(`bench/run.ts on ${store} failed (exit ${out.status})`);
    return (JSON.parse(readFileSync(json, 'utf8')) as { results: Result[] }).results;
  } finally {
    if (schema) {
      const db = new Database({ url: url!, max: 1 });
      await db.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).finally(() => db.close());
    }
  }
}

async function main(): Promise<number> {
  const scratch = mkdtempSync(join(tmpdir(), 'bastion-bench-stores-'));
  try {
    const byStore = new Map<string, Result[]>();
    for (const store of stores) byStore.set(store, await runOn(store, scratch));
    const names = [...new Set([...byStore.values()].flatMap((rs) => rs.map((r) => r.name)))];
    const [a, b] = stores;
    const find = (store: string, name: string) => byStore.get(store)?.find((r) => r.name === name);
    console.log(`\n=== side by side (req/s, p50 / p99) ===`);
    const rows = names.map((name) => {
      const x = find(a, name);
      const y = b ? find(b, name) : undefined;
      const cell = (r: Result | undefined) => (r ? `${fmtInt(r.rate)}  ${fmtMs(r.p50)} / ${fmtMs(r.p99)}${r.failures ? `  (${r.failures} failed)` : ''}` : '-');
      return [name, cell(x), ...(b ? [cell(y), x && y ? `${Math.round((y.rate / x.rate) * 100)}%` : '-'] : [])];
    });
    const header = ['scenario', a, ...(b ? [b, `${b}/${a}`] : [])];
    console.log(table(header, rows, header.map((_, i) => i > 0)));
    return 0;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

runMain(main);
