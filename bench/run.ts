/**
 * `npm run bench`: HTTP throughput of Bastion against a bare Fastify ceiling, in one run.
 *
 * Bastion and the ceiling server each run in a child process, so the load generator (autocannon,
 * here in the parent) never shares their event loop. Bastion gets a fresh data dir and 1,000
 * Patients made from the Synthea set; then, each after a short warm-up:
 *
 *   ceiling      GET of a bare Fastify route returning the bytes of one stored Patient
 *   read         GET Patient/{id}, rotating over the seeded ids
 *   search       GET Patient?name=..., rotating over the seeded family names (4 matches each)
 *   create       POST Patient
 *   update       PUT Patient/{id}, rotating ids, no If-Match
 *   transaction  POST a transaction Bundle of 100 entries (20 Patients, 80 Observations, urn:uuid refs)
 *
 * Those run with authorization off. Then the server is restarted on the same data dir with
 * authorization on (SMART), a backend client is registered with `bastion clients add`, and:
 *
 *   read-auth    GET Patient/{id} with a Bearer access token (target: >= 85% of read)
 *   search-auth  GET Patient?name=... with that token (a backend service: scopes only)
 *   read-clinician, search-clinician
 *                the same with a physician's token (from a test identity provider whose JWKS this
 *                process serves): role table, care relationship (GP) and label clearance apply in the
 *                query; the access engine's cost is the difference (targets: at most 15% of reads,
 *                20% of searches)
 *   token        client_credentials token requests, each with a fresh ES384 client assertion
 *                (signed here, in the load generator: tokens/s and latency)
 *
 * and prints req/s, p50/p99 latency, failures, the ratio to the ceiling, the server's CPU use and
 * the comparison with published Medplum figures; then the server's RSS; then, when bench/import.ts
 * exists, runs it with its output passed through.
 *
 * Environment (all optional):
 *   BENCH_DURATION=10          seconds measured per scenario
 *   BENCH_WARMUP=2             seconds of warm-up per scenario (not measured)
 *   BENCH_CONNECTIONS=32       concurrent connections (reads, searches, single-resource writes)
 *   BENCH_BUNDLE_CONNECTIONS=4 concurrent connections for transaction Bundles
 *   BENCH_PATIENTS=1000        Patients seeded
 *   BENCH_ONLY=read,ceiling    run only these scenarios
 *   BENCH_SKIP_IMPORT=1        do not run bench/import.ts
 *   BENCH_SERVER=path          the bastion.js to start (default: this repository's bin/bastion.js)
 *   BENCH_SERVER_NODE_ARGS     extra node flags for the server, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"
 *   BENCH_DATA_DIR=dir         parent of the temporary data dir (default: the OS temp dir)
 *   BENCH_KEEP_DATA=1          keep the data dir afterwards
 *   BENCH_JSON=file            also write the results as JSON to this file
 */
import { spawn, spawnSync } from 'node:child_process';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { createServer } from 'node:http';
import { cpuSeconds, memory, startChild as start, stopChild, track, type Child } from './harness.ts';
import { measure, numberFromEnv, runMain, type AcRequest, type Measurement } from './harness.ts';
import { fmtInt, fmtMs, mib, percentile, table, type HumanName, type Resource } from './harness.ts';
import { randomUUID } from 'node:crypto';
import { roles } from '../src/store/auth-store.ts';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';


// ---------------------------------------------------------------------------------------------
// Settings

const root = fileURLToPath(new URL('..', import.meta.url));
const env = process.env;
const num = (name: string, fallback: number): number => numberFromEnv(env, name, fallback);
const duration = num('BENCH_DURATION', 10);
const warmup = num('BENCH_WARMUP', 2);
const connections = num('BENCH_CONNECTIONS', 32);
const bundleConnections = num('BENCH_BUNDLE_CONNECTIONS', 4);
const patientCount = Math.max(40, Math.round(num('BENCH_PATIENTS', 1000)));
const only = env.BENCH_ONLY ? new Set(env.BENCH_ONLY.split(',').map((s) => s.trim())) : undefined;
const serverEntry = env.BENCH_SERVER ?? join(root, 'bin/bastion.js');
const serverNodeArgs = (env.BENCH_SERVER_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
const syntheaDir = join(root, '../shared/data/synthea/bundles');

/** Published figures for context (Medplum's own benchmarks on their hardware, authenticated). */
const medplum = { read: 1_900, search: 450, create: 330 } as const;
const medplumTarget = { read: 5, search: 5, create: 3 } as const;
const fastifyPublished = 28_000;
const ceilingTarget = 0.6;

// ---------------------------------------------------------------------------------------------
// Children: start, parse the address they print, stop; CPU and memory from /proc.


// ---------------------------------------------------------------------------------------------
// Test data from Synthea

interface Template {
  patient: Resource;
  observations: Resource[];
}

function loadSynthea(): Template[] {
  if (!existsSync(syntheaDir)) throw new Error(`The Synthea bundles are not at ${syntheaDir}`);
  const templates: Template[] = [];
  for (const file of readdirSync(syntheaDir).filter((f) => f.endsWith('.json')).sort()) {
    const bundle = JSON.parse(readFileSync(join(syntheaDir, file), 'utf8')) as { entry?: { resource: Resource }[] };
    const resources = (bundle.entry ?? []).map((e) => e.resource);
    const patient = resources.find((r) => r.resourceType === 'Patient');
    if (!patient) continue;
    const observations = resources.filter((r) => r.resourceType === 'Observation' && r.valueQuantity !== undefined).slice(0, 8);
    templates.push({ patient, observations });
  }
  if (templates.length === 0) throw new Error(`No Patients found in ${syntheaDir}`);
  return templates;
}

/** A fixed-length tag (Q + two letters), so a prefix (name) search for one never matches another. */
function tag(n: number): string {
  const a = 'abcdefghijklmnopqrstuvwxyz';
  return `Q${a[Math.floor(n / 26) % 26].toUpperCase()}${a[n % 26]}`;
}

/**
 * Patient i of the seed: a Synthea Patient (the same template for 4 consecutive i), with a new
 * id and a family name shared by those 4, so a name search finds 4 Patients.
 */
function seededPatient(templates: Template[], i: number): Resource {
  const group = Math.floor(i / 4);
  const t = structuredClone(templates[group % templates.length].patient);
  const names = (t.name as HumanName[] | undefined) ?? [{ given: ['Pat'] }];
  const baseFamily = (names[0].family ?? 'Bench').replace(/[^A-Za-z]/g, '') || 'Bench';
  for (const name of names) {
    name.family = `${baseFamily}${tag(group)}`;
    if (name.given?.length) name.given = [`${name.given[0]}${'abcd'[i % 4]}`, ...name.given.slice(1)];
  }
  t.name = names;
  t.id = seededId(i);
  // The clinician of the access-engine scenarios is every seeded patient's GP (the relationship rule).
  t.generalPractitioner = [{ reference: benchPractitioner }];
  return t;
}

const benchPractitioner = 'Practitioner/bench-doc';

const seededId = (i: number) => `bench-${i}`;
const seededFamily = (templates: Template[], group: number): string => {
  const names = templates[group % templates.length].patient.name as HumanName[] | undefined;
  return `${(names?.[0]?.family ?? 'Bench').replace(/[^A-Za-z]/g, '') || 'Bench'}${tag(group)}`;
};

function withoutId(r: Resource): Resource {
  const { id: _id, ...rest } = r;
  return rest as Resource;
}

/** A transaction of 100 POSTs: 20 Patients, each with 4 Observations referring to it by urn:uuid. */
function transactionBundle(templates: Template[]): { body: string; entries: number } {
  const entry: Record<string, unknown>[] = [];
  for (let p = 0; p < 20; p++) {
    const t = templates[p % templates.length];
    const fullUrl = `urn:uuid:${randomUUID()}`;
    const patient = withoutId(structuredClone(t.patient));
    patient.name = [{ use: 'official', family: `Txn${tag(p)}`, given: ['Bench'] }];
    entry.push({ fullUrl, resource: patient, request: { method: 'POST', url: 'Patient' } });
    const observations = t.observations.length > 0 ? t.observations : templates[0].observations;
    for (let k = 0; k < 4; k++) {
      const o = withoutId(structuredClone(observations[k % observations.length]));
      delete o.encounter; // the Encounter is not in this Bundle
      o.subject = { reference: fullUrl };
      entry.push({ fullUrl: `urn:uuid:${randomUUID()}`, resource: o, request: { method: 'POST', url: 'Observation' } });
    }
  }
  return { body: JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry }), entries: entry.length };
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers (seeding and smoke checks use fetch; the measured load is autocannon's)

const fhirJson = 'application/fhir+json';

async function call(url: string, init: { method?: string; body?: string | Buffer; headers?: Record<string, string> } = {}): Promise<{ status: number; text: string }> {
  const res = await fetch(url, {
    method: init.method ?? 'GET',
    headers: { accept: fhirJson, ...(init.body !== undefined ? { 'content-type': fhirJson } : {}), ...init.headers },
    body: typeof init.body === 'string' || init.body === undefined ? init.body : init.body.toString('utf8'),
  });
  return { status: res.status, text: await res.text() };
}

async function seed(base: string, templates: Template[]): Promise<void> {
  const perBundle = 100;
  for (let start = 0; start < patientCount; start += perBundle) {
    const entry = [];
    for (let i = start; i < Math.min(patientCount, start + perBundle); i++) {
      entry.push({ resource: seededPatient(templates, i), request: { method: 'PUT', url: `Patient/${seededId(i)}` } });
    }
    const res = await call(base, { method: 'POST', body: JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry }) });
    if (res.status !== 200) throw new Error(`Seeding failed: HTTP ${res.status}\n${res.text.slice(0, 2000)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Scenarios

type Name = 'ceiling' | 'read' | 'search' | 'create' | 'update' | 'transaction' | 'read-auth' | 'search-auth' | 'read-clinician' | 'search-clinician' | 'token';

interface Scenario {
  name: Name;
  label: string;
  url: string;
  connections: number;
  /** Resources written or read per request, for the resources/s note. */
  perRequest?: number;
  request: AcRequest;
  /** One request by fetch before the load, to make sure the scenario measures successes. */
  smoke: () => Promise<string | undefined>;
}

/** serverMainCpu: at 100 % the server is saturated, whatever its other threads do. */
interface Measured extends Measurement {
  scenario: Scenario;
  note?: string;
}

/** A request that rotates through `n` variants, shared by all connections. */
function rotating(build: (i: number) => AcRequest, n: number): AcRequest {
  let next = 0;
  const first = build(0);
  return {
    ...first,
    setupRequest: (request) => {
      const variant = build(next++ % n);
      return { ...request, ...variant };
    },
  };
}

const startChild = (label: string, args: string[], pattern: RegExp, extraEnv: Record<string, string> = {}) => start(root, label, args, pattern, extraEnv);

async function load(s: Scenario, seconds: number, record: boolean, serverPid: number | undefined): Promise<Measured | undefined> {
  const m = await measure({ url: s.url, connections: s.connections, pipelining: 1, duration: seconds, timeout: 30, requests: [s.request] }, record, serverPid);
  return m && { ...m, scenario: s };
}

// ---------------------------------------------------------------------------------------------
// Authorization: a backend client and its tokens

interface BackendClient {
  clientId: string;
  key: CryptoKey;
}

/** Registers a backend client through the CLI (as an operator would), with a fresh ES384 key. */
async function registerBackendClient(dataDir: string, scratch: string): Promise<BackendClient> {
  const { privateKey, publicKey } = await generateKeyPair('ES384');
  const jwksFile = join(scratch, 'bench-client.jwks');
  writeFileSync(jwksFile, JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'bench', alg: 'ES384' }] }));
  const out = spawnSync(process.execPath, [serverEntry, 'clients', 'add', '--name', 'bench', '--type', 'backend', '--jwks', jwksFile, '--scope', 'system/*.cruds', '--data-dir', dataDir], { encoding: 'utf8' });
  const m = /client_id: (\S+)/.exec(out.stdout);
  if (out.status !== 0 || !m) throw new Error(`bastion clients add failed: ${out.stderr}`);
  return { clientId: m[1], key: privateKey };
}

async function assertionFor(tokenUrl: string, client: BackendClient): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({}).setProtectedHeader({ alg: 'ES384', kid: 'bench' }).setIssuer(client.clientId).setSubject(client.clientId)
    .setAudience(tokenUrl).setIssuedAt(now).setExpirationTime(now + 120).setJti(randomUUID()).sign(client.key);
}

async function requestToken(tokenUrl: string, client: BackendClient): Promise<string> {
  const res = await fetch(tokenUrl, {
    method: 'POST',
    body: new URLSearchParams({
      grant_type: 'client_credentials', scope: 'system/*.cruds',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: await assertionFor(tokenUrl, client),
    }),
  });
  const body = (await res.json()) as { access_token?: string; error?: string };
  if (!body.access_token) throw new Error(`token request failed: HTTP ${res.status} ${body.error ?? ''}`);
  return body.access_token;
}

const idpIssuer = 'https://bench-idp.example.test';
let idpKey: CryptoKey | undefined;

/** A stand-in identity provider: its JWKS on loopback, so the bench can mint a physician's token. */
async function startIdentityProvider(): Promise<{ issuer: string; jwksUri: string; stop: () => void }> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  idpKey = privateKey;
  const jwk = { ...(await exportJWK(publicKey)), kid: 'bench-idp', alg: 'ES256' };
  const server = createServer((_q, res) => res.end(JSON.stringify({ keys: [jwk] })));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { issuer: idpIssuer, jwksUri: `http://127.0.0.1:${(server.address() as { port: number }).port}/jwks`, stop: () => server.close() };
}

async function idpToken(fhirBase: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ role: 'physician', scope: 'user/*.rs', client_id: 'bench-app', fhirUser: benchPractitioner })
    .setProtectedHeader({ alg: 'ES256', kid: 'bench-idp' }).setIssuer(idpIssuer).setAudience(fhirBase).setSubject('bench-doc')
    .setIssuedAt(now).setExpirationTime(now + 3600).setJti(randomUUID()).sign(idpKey!);
}

interface TokenRun { rate: number; p50: number; p99: number; failures: number; serverCpu?: number }

/** `inFlight` loops requesting tokens for `seconds`; each request carries a new assertion (a jti is good once). */
async function tokenLoad(tokenUrl: string, client: BackendClient, seconds: number, inFlight: number, serverPid?: number): Promise<TokenRun> {
  const latencies: number[] = [];
  let failures = 0;
  const cpu0 = cpuSeconds(serverPid);
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (performance.now() < end) {
      const assertion = await assertionFor(tokenUrl, client);
      const started = performance.now();
      try {
        const res = await fetch(tokenUrl, {
          method: 'POST',
          body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'system/*.rs', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion }),
        });
        await res.arrayBuffer();
        if (res.status === 200) latencies.push(performance.now() - started);
        else failures++;
      } catch {
        failures++;
      }
    }
  }));
  const elapsed = (performance.now() - t0) / 1000;
  const cpu1 = cpuSeconds(serverPid);
  const sorted = Float64Array.from(latencies).sort();
  return {
    rate: latencies.length / elapsed, p50: percentile(sorted, 50), p99: percentile(sorted, 99), failures,
    ...(cpu0 !== undefined && cpu1 !== undefined ? { serverCpu: (cpu1 - cpu0) / elapsed } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<number> {
  const wanted = (n: Name) => !only || only.has(n);
  const tStart = performance.now();
  console.log(`Bastion benchmark: node ${process.version}, ${cpus().length} CPUs, ` +
    `${duration} s per scenario after ${warmup} s warm-up, ${connections} connections (bundles: ${bundleConnections}), pipelining 1`);

  const templates = loadSynthea();
  const dataParent = env.BENCH_DATA_DIR ?? tmpdir();
  const dataDir = mkdtempSync(join(dataParent, 'bastion-bench-'));
  const scratch = mkdtempSync(join(tmpdir(), 'bastion-bench-ceiling-'));
  let exitCode = 0;
  let server: Child | undefined;
  let stopIdp: (() => void) | undefined;
  try {
    server = await startChild('bastion', [...serverNodeArgs, serverEntry, 'serve', '--port', '0', '--data-dir', dataDir],
      /Bastion is serving FHIR R4 at (\S+)/, { BASTION_LOG_LEVEL: 'warn', BASTION_AUTH: 'off' });
    const base = server.url;
    const origin = new URL(base).origin;
    const basePath = new URL(base).pathname;
    console.log(`server: ${base} (pid ${server.proc.pid}, data ${dataDir})`);

    const tSeed = performance.now();
    await seed(base, templates);
    console.log(`seeded ${fmtInt(patientCount)} Patients from ${templates.length} Synthea templates in ${((performance.now() - tSeed) / 1000).toFixed(1)} s`);

    // The bytes Bastion serves for one Patient: the ceiling serves exactly these.
    const sample = await call(`${base}/Patient/${seededId(0)}`);
    if (sample.status !== 200) throw new Error(`GET Patient/${seededId(0)} returned ${sample.status}`);
    const bodyFile = join(scratch, 'patient.json');
    writeFileSync(bodyFile, sample.text);
    const sampleBytes = Buffer.byteLength(sample.text);

    const accept = { accept: fhirJson };
    const withBody = { accept: fhirJson, 'content-type': fhirJson };
    const groups = Math.ceil(patientCount / 4);
    const updateBodies = Array.from({ length: patientCount }, (_, i) => {
      const p = seededPatient(templates, i);
      p.active = true;
      return Buffer.from(JSON.stringify(p));
    });
    const createBodies = templates.map((t, i) => {
      const p = withoutId(structuredClone(t.patient));
      p.name = [{ use: 'official', family: `New${tag(i)}`, given: ['Bench'] }];
      return Buffer.from(JSON.stringify(p));
    });
    const txn = transactionBundle(templates);
    const txnBody = Buffer.from(txn.body);

    const ok = (what: string, res: { status: number; text: string }, expect: number) => {
      if (res.status !== expect) throw new Error(`${what}: HTTP ${res.status}, expected ${expect}\n${res.text.slice(0, 1000)}`);
      return JSON.parse(res.text) as Record<string, unknown>;
    };

    const scenarios: Scenario[] = [
      {
        name: 'ceiling', label: 'ceiling: bare Fastify GET', url: '', connections,
        request: rotating((i) => ({ method: 'GET', path: `${basePath}/Patient/${seededId(i)}`, headers: accept }), patientCount),
        smoke: async () => `${fmtInt(sampleBytes)} B body`,
      },
      {
        name: 'read', label: 'GET Patient/{id}', url: origin, connections,
        request: rotating((i) => ({ method: 'GET', path: `${basePath}/Patient/${seededId(i)}`, headers: accept }), patientCount),
        smoke: async () => {
          ok('read', await call(`${base}/Patient/${seededId(1)}`), 200);
          return `${fmtInt(patientCount)} ids`;
        },
      },
      {
        name: 'search', label: 'GET Patient?name=', url: origin, connections,
        request: rotating((g) => ({ method: 'GET', path: `${basePath}/Patient?name=${encodeURIComponent(seededFamily(templates, g))}`, headers: accept }), groups),
        smoke: async () => {
          const b = ok('search', await call(`${base}/Patient?name=${encodeURIComponent(seededFamily(templates, 1))}`), 200);
          const n = (b.entry as unknown[] | undefined)?.length ?? 0;
          if (n === 0) throw new Error('search: the name search found nothing');
          return `${n} matches each`;
        },
      },
      {
        name: 'create', label: 'POST Patient', url: origin, connections,
        request: rotating((i) => ({ method: 'POST', path: `${basePath}/Patient`, headers: withBody, body: createBodies[i] }), createBodies.length),
        smoke: async () => {
          ok('create', await call(`${base}/Patient`, { method: 'POST', body: createBodies[0] }), 201);
          return undefined;
        },
      },
      {
        name: 'update', label: 'PUT Patient/{id}', url: origin, connections,
        request: rotating((i) => ({ method: 'PUT', path: `${basePath}/Patient/${seededId(i)}`, headers: withBody, body: updateBodies[i] }), patientCount),
        smoke: async () => {
          ok('update', await call(`${base}/Patient/${seededId(0)}`, { method: 'PUT', body: updateBodies[0] }), 200);
          return `${fmtInt(patientCount)} ids`;
        },
      },
      {
        name: 'transaction', label: `POST transaction (${txn.entries} entries)`, url: origin, connections: bundleConnections, perRequest: txn.entries,
        request: { method: 'POST', path: basePath, headers: withBody, body: txnBody },
        smoke: async () => {
          const b = ok('transaction', await call(base, { method: 'POST', body: txnBody }), 200);
          const n = (b.entry as unknown[] | undefined)?.length ?? 0;
          if (n !== txn.entries) throw new Error(`transaction: ${n} entries in the response, expected ${txn.entries}`);
          return `${fmtInt(txnBody.length / 1024)} KiB body`;
        },
      },
    ];

    const results: Measured[] = [];
    for (const s of scenarios) {
      if (!wanted(s.name)) continue;
      let ceiling: Child | undefined;
      let pid = server.proc.pid;
      try {
        if (s.name === 'ceiling') {
          ceiling = await startChild('ceiling', [join(root, 'bench/ceiling-server.ts'), bodyFile], /ceiling listening at (\S+)/);
          s.url = ceiling.url;
          pid = ceiling.proc.pid;
        }
        let note: string | undefined;
        try {
          note = await s.smoke();
        } catch (err) {
          console.error(`\n!!! ${s.label}: the smoke request failed, so this scenario would measure errors:\n${(err as Error).message}\n`);
          exitCode = 1;
        }
        process.stdout.write(`running ${s.label.padEnd(34)} `);
        if (warmup > 0) await load(s, warmup, false, pid);
        const m = (await load(s, duration, true, pid))!;
        m.note = note;
        results.push(m);
        const other = (m.otherCpu ?? 0) > 0.1 ? `  (other load ${((m.otherCpu ?? 0) * 100).toFixed(0)}% of a core)` : '';
        console.log(`${fmtInt(m.rate).padStart(7)} req/s  p50 ${fmtMs(m.p50)} ms  p99 ${fmtMs(m.p99)} ms${m.failures ? `  FAILURES ${m.failures}` : ''}${other}`);
      } finally {
        if (ceiling) await stopChild(ceiling);
      }
    }

    // ------------------------------------------------------------------ the same server, authorization on
    let tokenRun: TokenRun | undefined;
    if (wanted('read-auth') || wanted('search-auth') || wanted('read-clinician') || wanted('search-clinician') || wanted('token')) {
      await stopChild(server);
      server = undefined;
      const idp = await startIdentityProvider();
      server = await startChild('bastion', [...serverNodeArgs, serverEntry, 'serve', '--port', '0', '--data-dir', dataDir],
        /Bastion is serving FHIR R4 at (\S+)/, {
          BASTION_LOG_LEVEL: 'warn', BASTION_AUTH: 'smart', BASTION_EXTERNAL_ISSUERS: JSON.stringify([{ issuer: idp.issuer, jwksUri: idp.jwksUri }]),
          // Counted as in production, with limits no load generator reaches: the figures include the counting.
          BASTION_RATE_LIMITS: JSON.stringify({ roles: Object.fromEntries(roles.map((r) => [r, 1_000_000_000])) }),
        });
      stopIdp = idp.stop;
      const authBase = server.url;
      const client = await registerBackendClient(dataDir, scratch);
      const tokenUrl = `${new URL(authBase).origin}/auth/token`;
      const token = await requestToken(tokenUrl, client);
      console.log(`server restarted with authorization on: ${authBase} (pid ${server.proc.pid}); backend client ${client.clientId}`);
      const clinicianToken = await idpToken(authBase);
      const authScenarios: [Name, string, string, 'read' | 'search'][] = [
        ['read-auth', 'GET Patient/{id} + Bearer token', token, 'read'],
        ['search-auth', 'GET Patient?name= + Bearer token', token, 'search'],
        ['read-clinician', 'GET Patient/{id} as a physician', clinicianToken, 'read'],
        ['search-clinician', 'GET Patient?name= as a physician', clinicianToken, 'search'],
      ];
      for (const [name, label, bearerToken, kind] of authScenarios) {
        if (!wanted(name)) continue;
        const headers = { accept: fhirJson, authorization: `Bearer ${bearerToken}` };
        const s: Scenario = {
          name, label, url: new URL(authBase).origin, connections,
          request: kind === 'read'
            ? rotating((i) => ({ method: 'GET', path: `${basePath}/Patient/${seededId(i)}`, headers }), patientCount)
            : rotating((g) => ({ method: 'GET', path: `${basePath}/Patient?name=${encodeURIComponent(seededFamily(templates, g))}`, headers }), groups),
          smoke: async () => {
            const probe = kind === 'read' ? `${authBase}/Patient/${seededId(1)}` : `${authBase}/Patient?name=${encodeURIComponent(seededFamily(templates, 1))}`;
            const b = ok(name, await call(probe, { headers: { authorization: `Bearer ${bearerToken}` } }), 200);
            if (kind === 'search' && ((b.entry as unknown[] | undefined)?.length ?? 0) === 0) throw new Error(`${name}: the search found nothing`);
            const refused = await call(probe);
            if (refused.status !== 401) throw new Error(`${name}: without a token it gave ${refused.status}, not 401`);
            return name.endsWith('clinician') ? 'role table, GP relationship and labels in the query' : 'ES256 JWT (backend service, scopes only)';
          },
        };
        const note = await s.smoke();
        process.stdout.write(`running ${s.label.padEnd(34)} `);
        if (warmup > 0) await load(s, warmup, false, server.proc.pid);
        const m = (await load(s, duration, true, server.proc.pid))!;
        m.note = note;
        results.push(m);
        console.log(`${fmtInt(m.rate).padStart(7)} req/s  p50 ${fmtMs(m.p50)} ms  p99 ${fmtMs(m.p99)} ms${m.failures ? `  FAILURES ${m.failures}` : ''}`);
      }
      if (wanted('token')) {
        process.stdout.write(`running ${'token (client_credentials)'.padEnd(34)} `);
        await tokenLoad(tokenUrl, client, Math.min(warmup, 2), 4);
        tokenRun = await tokenLoad(tokenUrl, client, duration, 4, server.proc.pid);
        console.log(`${fmtInt(tokenRun.rate).padStart(7)} tokens/s  p50 ${fmtMs(tokenRun.p50)} ms  p99 ${fmtMs(tokenRun.p99)} ms${tokenRun.failures ? `  FAILURES ${tokenRun.failures}` : ''}`);
      }
    }

    const serverMem = memory(server.proc.pid);
    if (env.BENCH_JSON) {
      writeFileSync(env.BENCH_JSON, JSON.stringify({
        server: serverEntry,
        memory: serverMem,
        results: results.map((r) => ({
          name: r.scenario.name, rate: r.rate, p50: r.p50, p99: r.p99, failures: r.failures, statuses: r.statuses,
          serverCpu: r.serverCpu, serverMainCpu: r.serverMainCpu,
          mainCpuPerRequestUs: r.serverMainCpu !== undefined ? (r.serverMainCpu / r.rate) * 1e6 : undefined, cpuPerRequestUs: r.serverCpu !== undefined ? (r.serverCpu / r.rate) * 1e6 : undefined,
          clientCpu: r.clientCpu, otherCpu: r.otherCpu,
        })),
      }, null, 2));
    }

    // ------------------------------------------------------------------ the table
    const ceilingRate = results.find((r) => r.scenario.name === 'ceiling')?.rate;
    const rows = results.map((r) => {
      const name = r.scenario.name;
      const key = name === 'read-auth' || name === 'read-clinician' ? 'read' : name === 'search-auth' || name === 'search-clinician' ? 'search' : name;
      const mp = key === 'read' || key === 'search' || key === 'create' ? medplum[key] : undefined;
      const target = key === 'read' || key === 'search' || key === 'create' ? medplumTarget[key] : undefined;
      let vsMedplum = '';
      if (mp !== undefined && target !== undefined) {
        const x = r.rate / mp;
        vsMedplum = `${x.toFixed(1)}x of ${fmtInt(mp)} (aim ${target}x: ${x >= target ? 'met' : 'MISSED'})`;
      }
      const notes = [r.note];
      if (name === 'read-auth') {
        const plain = results.find((x) => x.scenario.name === 'read');
        if (plain) notes.push(`${((r.rate / plain.rate) * 100).toFixed(0)}% of GET without a token (target >= 85%: ${r.rate / plain.rate >= 0.85 ? 'met' : 'MISSED'})`);
      }
      if (name === 'read-clinician' || name === 'search-clinician') {
        const base = results.find((x) => x.scenario.name === (name === 'read-clinician' ? 'read-auth' : 'search-auth'));
        const limit = name === 'read-clinician' ? 0.15 : 0.2;
        if (base) {
          const cost = 1 - r.rate / base.rate;
          notes.push(`engine costs ${(cost * 100).toFixed(0)}% vs scopes only (target <= ${limit * 100}%: ${cost <= limit ? 'met' : 'MISSED'})`);
        }
      }
      if (r.scenario.perRequest) notes.push(`${fmtInt(r.rate * r.scenario.perRequest)} resources/s`);
      if (name === 'ceiling') notes.push(`published bare Fastify ~${fmtInt(fastifyPublished)}/s`);
      return [
        r.scenario.label,
        fmtInt(r.rate),
        fmtMs(r.p50),
        fmtMs(r.p99),
        String(r.failures),
        ceilingRate ? `${((r.rate / ceilingRate) * 100).toFixed(0)}%` : '-',
        r.serverCpu !== undefined ? `${(r.serverCpu * 100).toFixed(0)}% (${((r.serverMainCpu ?? 0) * 100).toFixed(0)}%)` : '-',
        r.serverCpu !== undefined && r.rate > 0 ? fmtInt((r.serverCpu / r.rate) * 1e6) : '-',
        `${(r.clientCpu * 100).toFixed(0)}%`,
        r.otherCpu !== undefined ? `${(r.otherCpu * 100).toFixed(0)}%` : '-',
        vsMedplum,
        notes.filter(Boolean).join('; '),
      ];
    });
    console.log('');
    console.log(table(
      ['scenario', 'req/s', 'p50 ms', 'p99 ms', 'non-2xx/err', 'of ceiling', 'server CPU (main)', 'µs CPU/req', 'client CPU', 'other CPU', 'vs Medplum', 'notes'],
      rows,
      [false, true, true, true, true, true, true, true, true, true, false, false],
    ));
    console.log('');
    console.log(`CPU: share of one core used by the server process, all threads (main thread in brackets; the ceiling process for the ceiling row), by the load generator,
and by everything else on the machine (${cpus().length} cores) meanwhile; µs CPU/req: server CPU time per request (robust to other load).`);
    const noisy = results.filter((r) => (r.otherCpu ?? 0) > 0.1);
    if (noisy.length > 0) {
      console.log(`WARNING: other processes used CPU during ${noisy.map((r) => r.scenario.name).join(', ')}; those figures are low and the ratios unreliable. Rerun on a quiet machine.`);
    }
    console.log('Medplum figures are authenticated; of Bastion\'s rows only those with a token ("+ Bearer token", "as a physician") are; the others run with authorization off.');
    if (tokenRun) {
      console.log(`token endpoint: ${fmtInt(tokenRun.rate)} client_credentials tokens/s (4 in flight, each with a fresh ES384 assertion signed by the load generator), ` +
        `p50 ${fmtMs(tokenRun.p50)} ms, p99 ${fmtMs(tokenRun.p99)} ms, ${tokenRun.failures} failed` +
        (tokenRun.serverCpu !== undefined ? `; server CPU ${(tokenRun.serverCpu * 100).toFixed(0)}%, ${fmtInt((tokenRun.serverCpu / tokenRun.rate) * 1e6)} µs CPU/token` : ''));
    }

    const read = results.find((r) => r.scenario.name === 'read');
    if (read && ceilingRate) {
      const share = read.rate / ceilingRate;
      console.log(`GET by id at ${(share * 100).toFixed(0)}% of the ceiling (target >= ${ceilingTarget * 100}%): ${share >= ceilingTarget ? 'met' : 'MISSED'}`);
    }
    console.log(`server memory after the run: RSS ${mib(serverMem.rss)}, peak RSS ${mib(serverMem.hwm)}`);

    const failed = results.filter((r) => r.failures > 0);
    if (failed.length > 0) {
      exitCode = 1;
      console.error('');
      console.error('!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!');
      for (const r of failed) {
        const codes = Object.entries(r.statuses).filter(([c]) => !c.startsWith('2')).map(([c, n]) => `${n} x HTTP ${c}`).join(', ');
        console.error(`!!! ${r.scenario.label}: ${r.failures} requests failed (${codes || 'connection errors / timeouts'}); its figures are not valid`);
      }
      console.error('!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!');
    }
  } finally {
    if (server) await stopChild(server);
    stopIdp?.();
    rmSync(scratch, { recursive: true, force: true });
    if (env.BENCH_KEEP_DATA) console.log(`data kept in ${dataDir}`);
    else rmSync(dataDir, { recursive: true, force: true });
  }
  console.log(`benchmark time: ${((performance.now() - tStart) / 1000).toFixed(0)} s`);

  // ------------------------------------------------------------------ import throughput (bench/import.ts, if present)
  const importScript = join(root, 'bench/import.ts');
  if (env.BENCH_SKIP_IMPORT) {
    console.log('\nimport: skipped (BENCH_SKIP_IMPORT)');
  } else if (!existsSync(importScript)) {
    console.log('\nimport: bench/import.ts does not exist yet; skipped');
  } else {
    console.log('\nimport throughput (bench/import.ts):');
    const code = await new Promise<number>((resolve) => {
      const child = spawn(process.execPath, [importScript], { cwd: root, stdio: 'inherit', env: process.env });
      track(child);
      child.once('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0)));
    });
    if (code !== 0) {
      console.error(`!!! bench/import.ts exited with code ${code}`);
      exitCode = 1;
    }
  }
  return exitCode;
}

runMain(main);
