/**
 * `npm run bench:nodes`: one Bastion node against two on the same PostgreSQL database.
 *
 * Both nodes run as child processes on a fresh schema, with the same keys (the second takes the
 * first's key files, as a deployment gives every node the same ones) and authorization off; 1,000
 * Synthea Patients are seeded through the first. Each scenario then runs with all connections on
 * node A, and with the connections split over A and B (two load generators at once, rates
 * summed):
 *
 *   read     GET Patient/{id}, rotating over the seeded ids
 *   search   GET Patient?name=..., rotating over the seeded family names
 *   create   POST Patient
 *
 * On this 2-core machine the database, both nodes and the load generator share the cores, so a
 * second node cannot add CPU: the figures show what the coordination between nodes costs (row
 * locks, notifications, the audit chain's head), not the scaling a second machine would bring.
 *
 * Environment: BENCH_POSTGRES_URL (default BASTION_TEST_POSTGRES_URL), BENCH_DURATION=10,
 * BENCH_WARMUP=2, BENCH_CONNECTIONS=32, BENCH_PATIENTS=1000.
 */
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { fmtInt, fmtMs, measure, numberFromEnv, runMain, startChild, stopChild, table, type AcRequest, type Child, type Measurement } from './harness.ts';
import { Database } from '../src/store/postgres/database.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const env = process.env;
const url = env.BENCH_POSTGRES_URL ?? env.BASTION_TEST_POSTGRES_URL;
const duration = numberFromEnv(env, 'BENCH_DURATION', 10);
const warmup = numberFromEnv(env, 'BENCH_WARMUP', 2);
const connections = numberFromEnv(env, 'BENCH_CONNECTIONS', 32);
const patients = Math.max(40, numberFromEnv(env, 'BENCH_PATIENTS', 1000));
const keyFiles = ['keyring.json', 'data-keys.json', 'audit-signing-keys.json', 'provenance-signing-keys.json'];

type Resource = Record<string, unknown>;

function syntheaPatients(): Resource[] {
  const dir = join(root, '../shared/data/synthea/bundles');
  const out: Resource[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
    const bundle = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { entry?: { resource: Resource }[] };
    const p = bundle.entry?.map((e) => e.resource).find((r) => r.resourceType === 'Patient');
    if (p) out.push(p);
  }
  return out;
}

/** Patient i: a Synthea Patient with its own id and a family name shared by 4 (a name search finds 4). */
function seeded(templates: Resource[], i: number): Resource {
  const p = structuredClone(templates[Math.floor(i / 4) % templates.length]);
  p.id = `node-bench-${i}`;
  p.name = [{ family: `Nodes${String.fromCharCode(65 + (Math.floor(i / 4) % 26))}${Math.floor(i / 104)}x`, given: ['Bench'] }];
  return p;
}

async function seed(base: string, templates: Resource[]): Promise<void> {
  for (let start = 0; start < patients; start += 100) {
    const entry = [];
    for (let i = start; i < Math.min(patients, start + 100); i++) entry.push({ resource: seeded(templates, i), request: { method: 'PUT', url: `Patient/node-bench-${i}` } });
    const res = await fetch(base, { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry }) });
    if (res.status !== 200) throw new Error(`seeding failed: HTTP ${res.status} ${(await res.text()).slice(0, 500)}`);
  }
}

function requests(name: string, templates: Resource[]): AcRequest[] {
  let n = 0;
  switch (name) {
    case 'read':
      return [{ method: 'GET', setupRequest: (r) => ({ ...r, path: `/fhir/Patient/node-bench-${n++ % patients}` }) }];
    case 'search':
      return [{ method: 'GET', setupRequest: (r) => ({ ...r, path: `/fhir/Patient?name=${(seeded(templates, (n++ * 4) % patients).name as { family: string }[])[0].family}` }) }];
    default: {
      const { id: _id, ...body } = seeded(templates, 0);
      return [{ method: 'POST', path: '/fhir/Patient', headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify(body) }];
    }
  }
}

/** Runs the scenario against these nodes at once, connections split evenly; rates summed. */
async function run(name: string, nodes: Child[], templates: Resource[], record: boolean): Promise<Measurement | undefined> {
  const per = Math.max(1, Math.floor(connections / nodes.length));
  const results = await Promise.all(nodes.map((node) => measure({
    url: new URL(node.url).origin, connections: per, pipelining: 1, duration: record ? duration : warmup, requests: requests(name, templates),
  }, record, node.proc.pid)));
  if (!record) return undefined;
  const ms = results as Measurement[];
  return {
    ...ms[0],
    rate: ms.reduce((s, m) => s + m.rate, 0),
    failures: ms.reduce((s, m) => s + m.failures, 0),
    p50: Math.max(...ms.map((m) => m.p50)),
    p99: Math.max(...ms.map((m) => m.p99)),
  };
}

async function main(): Promise<number> {
  if (!url) throw new Error('BENCH_POSTGRES_URL (or BASTION_TEST_POSTGRES_URL) is not set: see scripts/test-postgres.sh');
  const schema = `bench_nodes_${randomBytes(4).toString('hex')}`;
  const dirs = [mkdtempSync(join(tmpdir(), 'bastion-bench-a-')), mkdtempSync(join(tmpdir(), 'bastion-bench-b-'))];
  const common = {
    BASTION_DATABASE_URL: url, BASTION_DATABASE_SCHEMA: schema, BASTION_AUTH: 'off', BASTION_LOG_LEVEL: 'warn',
    BASTION_MASTER_KEY: randomBytes(32).toString('hex'),
  };
  const nodes: Child[] = [];
  const templates = syntheaPatients();
  try {
    const serve = (i: number) => startChild(root, `node-${'ab'[i]}`, [join(root, 'bin/bastion.js'), 'serve', '--port', '0', '--data-dir', dirs[i]],
      /Bastion is serving FHIR R4 at (\S+)/, { ...common, BASTION_NODE_NAME: 'ab'[i] });
    nodes.push(await serve(0));
    for (const f of keyFiles) copyFileSync(join(dirs[0], f), join(dirs[1], f));
    nodes.push(await serve(1));
    await seed(nodes[0].url, templates);
    console.log(`two nodes on schema ${schema}: ${nodes.map((n) => n.url).join(', ')}; ${patients} Patients; ${duration} s per run, ${connections} connections\n`);
    const rows: string[][] = [];
    for (const name of ['read', 'search', 'create']) {
      const cells = [name];
      let one: Measurement | undefined;
      for (const set of [[nodes[0]], nodes]) {
        await run(name, set, templates, false);
        const m = (await run(name, set, templates, true))!;
        if (set.length === 1) one = m;
        cells.push(`${fmtInt(m.rate)}  ${fmtMs(m.p50)} / ${fmtMs(m.p99)}${m.failures ? ` (${m.failures} failed)` : ''}`);
        if (set.length === 2) cells.push(`${Math.round((m.rate / one!.rate) * 100)}%`);
      }
      rows.push(cells);
    }
    const header = ['scenario', '1 node req/s  p50 / p99 ms', '2 nodes req/s  p50 / p99 ms', '2 / 1'];
    console.log(table(header, rows, header.map((_, i) => i > 0)));
    return 0;
  } finally {
    for (const n of nodes) await stopChild(n);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    const db = new Database({ url, max: 1 });
    await db.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).finally(() => db.close());
  }
}

runMain(main);
