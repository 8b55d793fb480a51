/**
 * `node bench/search.ts`: search latency on the embedded store at two table sizes, to show that the
 * time per query does not grow with the number of resources.
 *
 * For each size (default 1,000 and 100,000 Patients) the Synthea set is replicated with new ids:
 * Patient i gets a family name shared by 4 Patients (so a name search finds 4), a birthDate spread
 * over 1930-2019, BENCH_ENC_PER_PATIENT Encounters (varied period.start) and BENCH_OBS_PER_PATIENT
 * Observations (copies of Synthea vital signs and labs with a few LOINC codes, spread effective
 * dates, subject and encounter pointing at the copies). They are written straight into a data dir
 * through the Store (openStore, one transaction per chunk, several chunks in flight so group commit
 * batches them); then the store is closed, opened once more (so a schema migration, and any re-index
 * it needs, is timed here rather than hidden in the server's start), the server started on that data
 * dir as a child process, and each scenario measured over HTTP with autocannon after a smoke check
 * (a scenario whose smoke request fails or finds nothing is refused, not measured) and a warm-up:
 *
 *   name            Patient?name=<family>                                    (4 matches)
 *   birthdate       Patient?birthdate=ge<date>&_count=20                     (about a tenth match)
 *   subject+code    Observation?subject=Patient/<id>&code=http://loinc.org|<code>
 *   subject+include Observation?subject=Patient/<id>&_include=Observation:subject
 *   encounters      Encounter?patient=Patient/<id>&_sort=-date
 *   page 50         Observation?code=<code>&_count=20, page 50: the server's own next link out of
 *                   page 49 (asked for by _offset=960), whatever its form (_offset or _cursor); the
 *                   smoke check also walks next links from page 1 and compares page 50
 *
 * Patient-specific queries rotate over every Patient of the size in a scrambled order, and the
 * warm-up and both measured runs carry on the same rotation, so no run re-reads what the run before
 * it just read. Each scenario runs at BENCH_CONNECTIONS connections (req/s, p50, p99) and then, for
 * the time per query, at 1 connection (p50, p99; a query too slow for that is timed by a few fetches
 * one after another). The server is left to go idle between runs (a search the load generator gave
 * up on still runs to the end). Then a comparison of the sizes and the issue's targets. Server CPU
 * (and its main thread's), the load generator's, other processes' CPU and the server's reads from
 * storage are shown, as are the store file size and the server's RSS after each size.
 *
 * Environment (all optional):
 *   BENCH_SEARCH_SIZES=1000,100000  Patients per size (each size gets its own data dir)
 *   BENCH_OBS_PER_PATIENT=10        Observations per Patient
 *   BENCH_ENC_PER_PATIENT=3         Encounters per Patient
 *   BENCH_DURATION=10               seconds measured per scenario at BENCH_CONNECTIONS
 *   BENCH_SINGLE_DURATION=5         seconds measured per scenario at 1 connection (0: skip)
 *   BENCH_PREWARM=1                 read the store file once before the server starts, so its pages are in the
 *                                   OS page cache as on a server that has been running (0: measure cold)
 *   BENCH_WARMUP=2                  seconds of warm-up per scenario (not measured)
 *   BENCH_CONNECTIONS=8             concurrent connections
 *   BENCH_ONLY=name,page50          run only these scenarios
 *   BENCH_LOAD_CHUNK=1000           resources per store transaction while loading
 *   BENCH_LOAD_IN_FLIGHT=4          transactions in flight while loading (group commit batches them)
 *   BENCH_WALK_LIMIT=60             seconds the page-50 smoke check may spend walking next links
 *   BENCH_SEARCH_DATA_DIR=dir       keep the loaded data dirs under dir and reuse them on the next run
 *                                   (a size is reloaded unless its marker file says it is complete)
 *   BENCH_DATA_DIR=dir              parent of the temporary data dirs (default: the OS temp dir)
 *   BENCH_KEEP_DATA=1               keep the temporary data dirs afterwards
 *   BENCH_SERVER_NODE_ARGS          extra node flags for the server, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"
 *   BENCH_JSON=file                 also write the results as JSON to this file
 */
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openStore } from '../src/main.ts';
import { cpuSeconds, memory, onExit, runMain, startChild as start, stopChild } from './harness.ts';
import { measure, numberFromEnv, type AcRequest, type Measurement } from './harness.ts';
import { fmtInt, fmtMs, mib, percentile, table, type HumanName, type Resource } from './harness.ts';


// ---------------------------------------------------------------------------------------------
// Settings

const root = fileURLToPath(new URL('..', import.meta.url));
const env = process.env;
const num = (name: string, fallback: number): number => numberFromEnv(env, name, fallback);
const sizes = (env.BENCH_SEARCH_SIZES ?? '1000,100000').split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 8) throw new Error(`BENCH_SEARCH_SIZES: "${s}" is not a number of Patients >= 8`);
  return n;
});
const obsPerPatient = Math.round(num('BENCH_OBS_PER_PATIENT', 10));
const encPerPatient = Math.round(num('BENCH_ENC_PER_PATIENT', 3));
const duration = num('BENCH_DURATION', 10);
const singleDuration = num('BENCH_SINGLE_DURATION', Math.min(5, duration));
const warmup = num('BENCH_WARMUP', 2);
const prewarm = num('BENCH_PREWARM', 1) !== 0;
const connections = Math.max(1, Math.round(num('BENCH_CONNECTIONS', 8)));
const loadChunk = Math.max(1, Math.round(num('BENCH_LOAD_CHUNK', 1000)));
const loadInFlight = Math.max(1, Math.round(num('BENCH_LOAD_IN_FLIGHT', 4)));
const walkLimit = num('BENCH_WALK_LIMIT', 60);
const only = env.BENCH_ONLY ? new Set(env.BENCH_ONLY.split(',').map((s) => s.trim())) : undefined;
const keptDataDir = env.BENCH_SEARCH_DATA_DIR;
const serverEntry = join(root, 'bin/bastion.js');
const serverNodeArgs = (env.BENCH_SERVER_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
/** As test/shared-data.ts finds it: ../shared/data beside the repository. */
const syntheaDir = join(root, '../shared/data/synthea/bundles');

/** Bumped whenever the generated data changes, so a kept data dir of an older shape is reloaded. */
const generatorVersion = 1;
const markerName = 'bench-search.json';

const targets = { name: 5, include: 10 } as const;

// ---------------------------------------------------------------------------------------------
// Children: start, parse the address they print, stop; CPU and memory from /proc.

const tempDirs = new Set<string>();
onExit(() => {
  if (!env.BENCH_KEEP_DATA) for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});
const startChild = (label: string, args: string[], pattern: RegExp, extraEnv: Record<string, string> = {}) => start(root, label, args, pattern, extraEnv, 600);

/**
 * Waits until the server has (nearly) stopped using CPU. A search the load generator gave up on
 * (end of a run, timeout) still runs to completion in the server, and would slow the next run.
 */
async function waitIdle(pid: number | undefined, maxSeconds = 600): Promise<number> {
  const t0 = performance.now();
  if (pid === undefined) return 0;
  for (;;) {
    const a = cpuSeconds(pid);
    await new Promise((r) => setTimeout(r, 300));
    const b = cpuSeconds(pid);
    if (a === undefined || b === undefined || (b - a) / 0.3 < 0.15) break;
    if (performance.now() - t0 > maxSeconds * 1000) break;
  }
  return (performance.now() - t0) / 1000;
}

/** Bytes a process has had read from storage (not from the page cache), from /proc/<pid>/io. */
function diskReadBytes(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const m = /^read_bytes:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}


function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

// ---------------------------------------------------------------------------------------------
// Test data: Synthea, replicated with new ids

interface Templates {
  patients: Resource[];
  encounters: Resource[];
  /** LOINC code -> Synthea Observations with that code and a valueQuantity. */
  observations: Map<string, Resource[]>;
  codes: string[];
}

/** Vital signs and labs with a valueQuantity, common in the Synthea set: Observation i of a Patient has codes[i % length]. */
const wantedCodes = ['8302-2', '29463-7', '39156-5', '72514-3', '2339-0'];
const loinc = 'http://loinc.org';

function loadTemplates(): Templates {
  if (!existsSync(syntheaDir)) throw new Error(`The Synthea bundles are not at ${syntheaDir}`);
  const patients: Resource[] = [];
  const encounters: Resource[] = [];
  const observations = new Map<string, Resource[]>();
  for (const file of readdirSync(syntheaDir).filter((f) => f.endsWith('.json')).sort()) {
    const bundle = JSON.parse(readFileSync(join(syntheaDir, file), 'utf8')) as { entry?: { resource: Resource }[] };
    for (const { resource: r } of bundle.entry ?? []) {
      if (r.resourceType === 'Patient') patients.push(r);
      else if (r.resourceType === 'Encounter' && (r.period as { start?: string } | undefined)?.start) encounters.push(r);
      else if (r.resourceType === 'Observation' && r.valueQuantity !== undefined) {
        const coding = (r.code as { coding?: { system?: string; code?: string }[] }).coding?.find((c) => c.system === loinc);
        if (!coding?.code || !wantedCodes.includes(coding.code)) continue;
        let list = observations.get(coding.code);
        if (!list) observations.set(coding.code, (list = []));
        list.push(r);
      }
    }
  }
  const codes = wantedCodes.filter((c) => observations.has(c));
  if (patients.length === 0) throw new Error(`No Patients found in ${syntheaDir}`);
  if (encPerPatient > 0 && encounters.length === 0) throw new Error(`No Encounters found in ${syntheaDir}`);
  if (obsPerPatient > 0 && codes.length === 0) throw new Error(`No Observations with the LOINC codes ${wantedCodes.join(', ')} in ${syntheaDir}`);
  return { patients, encounters, observations, codes };
}

const patientId = (i: number) => `sp${i}`;
const encounterId = (i: number, e: number) => `se${i}-${e}`;
const observationId = (i: number, k: number) => `so${i}-${k}`;

/** A fixed-length tag (Q + four letters), so a prefix (name) search for one never matches another. */
function tag(n: number): string {
  const a = 'abcdefghijklmnopqrstuvwxyz';
  if (n >= 26 ** 4) throw new Error('Too many name groups for the 4-letter tag');
  return `Q${a[Math.floor(n / 17576) % 26].toUpperCase()}${a[Math.floor(n / 676) % 26]}${a[Math.floor(n / 26) % 26]}${a[n % 26]}`;
}

/** Patients 4g .. 4g+3 share template g and the family name of group g. */
function family(t: Templates, group: number): string {
  const names = t.patients[group % t.patients.length].name as HumanName[] | undefined;
  return `${(names?.[0]?.family ?? 'Bench').replace(/[^A-Za-z]/g, '') || 'Bench'}${tag(group)}`;
}

const day = 86_400_000;
const birthFrom = Date.UTC(1930, 0, 1);
const birthSpan = 90 * 365; // days: 1930 to 2019
const isoDate = (ms: number) => new Date(ms).toISOString().slice(0, 10);
/** Spread over the whole span for any number of Patients (7919 is prime, coprime with the span). */
const birthDate = (i: number) => isoDate(birthFrom + ((i * 7919 + 17) % birthSpan) * day);
const clinicalFrom = Date.UTC(2000, 0, 1);
const clinicalSpan = 8000; // days: 2000 to 2021
const encounterStart = (i: number, e: number) => clinicalFrom + ((i * 53 + e * 389) % clinicalSpan) * day + ((i * 7 + e) % 10) * 3_600_000;
const observationTime = (i: number, k: number) => clinicalFrom + ((i * 37 + k * 211) % clinicalSpan) * day + ((i + k * 13) % 600) * 60_000;

const clone = (r: Resource): Resource => structuredClone(r);

function makePatient(t: Templates, i: number): Resource {
  const group = Math.floor(i / 4);
  const template = t.patients[group % t.patients.length];
  const p = clone(template);
  const id = patientId(i);
  const names = (p.name as HumanName[] | undefined) ?? [{ given: ['Pat'] }];
  const fam = family(t, group);
  for (const name of names) {
    name.family = fam;
    if (name.given?.length) name.given = [`${name.given[0]}${'abcd'[i % 4]}`, ...name.given.slice(1)];
  }
  p.name = names;
  p.id = id;
  p.birthDate = birthDate(i);
  // A death date from the template could precede the new birth date.
  delete p.deceasedDateTime;
  delete p.deceasedBoolean;
  // Identifiers that carried the template's id carry the new one.
  for (const ident of (p.identifier as { value?: string }[] | undefined) ?? []) if (ident.value === template.id) ident.value = id;
  // The narrative would name the template's Patient.
  delete p.text;
  return p;
}

function makeEncounter(t: Templates, i: number, e: number): Resource {
  const enc = clone(t.encounters[(i * encPerPatient + e) % t.encounters.length]);
  enc.id = encounterId(i, e);
  enc.subject = { reference: `Patient/${patientId(i)}` };
  // Practitioners, Organizations and Locations are not replicated: no reference may dangle.
  for (const k of ['participant', 'serviceProvider', 'location', 'reasonReference', 'diagnosis', 'episodeOfCare', 'basedOn', 'partOf', 'appointment', 'account', 'hospitalization']) delete enc[k];
  const start = encounterStart(i, e);
  enc.period = { start: new Date(start).toISOString(), end: new Date(start + 40 * 60_000).toISOString() };
  return enc;
}

function makeObservation(t: Templates, i: number, k: number): Resource {
  const code = t.codes[k % t.codes.length];
  const pool = t.observations.get(code)!;
  const o = clone(pool[(i * 7 + k) % pool.length]);
  o.id = observationId(i, k);
  o.subject = { reference: `Patient/${patientId(i)}` };
  if (encPerPatient > 0) o.encounter = { reference: `Encounter/${encounterId(i, k % encPerPatient)}` };
  else delete o.encounter;
  delete o.hasMember;
  delete o.derivedFrom;
  delete o.performer;
  const at = new Date(observationTime(i, k)).toISOString();
  o.effectiveDateTime = at;
  o.issued = at;
  return o;
}

/** Patient i, its Encounters, its Observations; for i in [0, n). */
function* generate(t: Templates, n: number): Generator<Resource> {
  for (let i = 0; i < n; i++) {
    yield makePatient(t, i);
    for (let e = 0; e < encPerPatient; e++) yield makeEncounter(t, i, e);
    for (let k = 0; k < obsPerPatient; k++) yield makeObservation(t, i, k);
  }
}

// ---------------------------------------------------------------------------------------------
// Loading straight into the store

interface Marker {
  generatorVersion: number;
  patients: number;
  obsPerPatient: number;
  encPerPatient: number;
  resources: number;
  loadSeconds: number;
  loadedAt: string;
}

interface LoadInfo {
  resources: number;
  seconds: number;
  reused: boolean;
}

function expectedMarker(n: number): Omit<Marker, 'loadSeconds' | 'loadedAt'> {
  return { generatorVersion, patients: n, obsPerPatient, encPerPatient, resources: n * (1 + obsPerPatient + encPerPatient) };
}

function readMarker(dir: string): Marker | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, markerName), 'utf8')) as Marker;
  } catch {
    return undefined;
  }
}

/** Loads size n into `dir` unless a marker there says it already holds exactly that. */
async function ensureLoaded(t: Templates, dir: string, n: number): Promise<LoadInfo> {
  const want = expectedMarker(n);
  const have = readMarker(dir);
  if (have && (Object.keys(want) as (keyof typeof want)[]).every((k) => have[k] === want[k])) {
    console.log(`reusing ${dir}: ${fmtInt(have.resources)} resources, loaded ${have.loadedAt} in ${have.loadSeconds.toFixed(0)} s`);
    return { resources: have.resources, seconds: have.loadSeconds, reused: true };
  }
  if (existsSync(dir)) {
    const entries = readdirSync(dir);
    const ours = entries.every((e) => e === markerName || e === 'store.key' || e.startsWith('bastion'));
    if (!ours) throw new Error(`${dir} holds files this benchmark did not write (${entries.join(', ')}); refusing to replace it`);
    if (entries.length > 0) console.log(`${dir} holds no complete load of this size; reloading it`);
    rmSync(dir, { recursive: true, force: true });
  }
  const total = want.resources;
  console.log(`loading ${fmtInt(n)} Patients, ${fmtInt(n * encPerPatient)} Encounters, ${fmtInt(n * obsPerPatient)} Observations ` +
    `(${fmtInt(total)} resources) into ${dir}: ${loadChunk} per transaction, ${loadInFlight} in flight`);
  const store = await openStore(dir);
  const t0 = performance.now();
  let done = 0;
  let lastReport = t0;
  let lastDone = 0;
  try {
    const inFlight = new Set<Promise<void>>();
    let failure: unknown;
    const submit = (chunk: Resource[]) => {
      const p: Promise<void> = store
        .transaction(async (tx) => {
          for (const r of chunk) await tx.create(r as Resource & { id: string; resourceType: string });
        })
        .then(
          () => {
            done += chunk.length;
            const now = performance.now();
            if (now - lastReport >= 5000) {
              const rate = ((done - lastDone) * 1000) / (now - lastReport);
              const overall = (done * 1000) / (now - t0);
              console.log(`  ${fmtInt(done).padStart(11)} / ${fmtInt(total)} (${((done / total) * 100).toFixed(0).padStart(3)}%)  ` +
                `${fmtInt(rate).padStart(6)} resources/s now, ${fmtInt(overall)} overall, about ${fmtInt((total - done) / overall)} s to go`);
              lastReport = now;
              lastDone = done;
            }
          },
          (err: unknown) => {
            failure ??= err;
          },
        )
        .finally(() => inFlight.delete(p));
      inFlight.add(p);
    };
    let chunk: Resource[] = [];
    for (const r of generate(t, n)) {
      chunk.push(r);
      if (chunk.length < loadChunk) continue;
      submit(chunk);
      chunk = [];
      if (inFlight.size >= loadInFlight) await Promise.race(inFlight);
      if (failure) break;
    }
    if (chunk.length > 0 && !failure) submit(chunk);
    await Promise.all(inFlight);
    if (failure) throw failure;
  } finally {
    await store.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  if (done !== total) throw new Error(`loaded ${done} of ${total} resources`);
  console.log(`loaded ${fmtInt(total)} resources in ${seconds.toFixed(1)} s = ${fmtInt(total / seconds)} resources/s ` +
    `(store file ${mib(fileSize(join(dir, 'bastion.db')))}, WAL ${mib(fileSize(join(dir, 'bastion.db-wal')))})`);
  const marker: Marker = { ...want, loadSeconds: seconds, loadedAt: new Date().toISOString() };
  writeFileSync(join(dir, markerName), JSON.stringify(marker, null, 2));
  return { resources: total, seconds, reused: false };
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers (smoke checks use fetch; the measured load is autocannon's)

const fhirJson = 'application/fhir+json';
const accept = { accept: fhirJson };

interface Bundle {
  resourceType: string;
  link?: { relation: string; url: string }[];
  entry?: { fullUrl?: string; resource: Resource & Record<string, unknown>; search?: { mode?: string } }[];
}

async function call(url: string, init: { method?: string; body?: string } = {}): Promise<{ status: number; text: string; ms: number }> {
  const t0 = performance.now();
  const res = await fetch(url, {
    method: init.method ?? 'GET',
    headers: { accept: fhirJson, ...(init.body !== undefined ? { 'content-type': fhirJson } : {}) },
    body: init.body,
  });
  const text = await res.text();
  return { status: res.status, text, ms: performance.now() - t0 };
}

async function getBundle(url: string): Promise<{ bundle: Bundle; ms: number }> {
  const res = await call(url);
  if (res.status !== 200) throw new Error(`GET ${url}: HTTP ${res.status}\n${res.text.slice(0, 1000)}`);
  const bundle = JSON.parse(res.text) as Bundle;
  if (bundle.resourceType !== 'Bundle') throw new Error(`GET ${url}: not a Bundle`);
  return { bundle, ms: res.ms };
}

const matches = (b: Bundle) => (b.entry ?? []).filter((e) => e.search?.mode !== 'include');
const includes = (b: Bundle) => (b.entry ?? []).filter((e) => e.search?.mode === 'include');
const linkOf = (b: Bundle, relation: string) => b.link?.find((l) => l.relation === relation)?.url;

/** The generated resources must be valid R4: asks the server's own $validate about one of each type. */
async function validateSamples(base: string, t: Templates): Promise<string[]> {
  const problems: string[] = [];
  const samples = [makePatient(t, 1), ...(encPerPatient > 0 ? [makeEncounter(t, 1, 0)] : []), ...(obsPerPatient > 0 ? [makeObservation(t, 1, 0)] : [])];
  for (const r of samples) {
    const res = await call(`${base}/${r.resourceType}/$validate`, { method: 'POST', body: JSON.stringify(r) });
    if (res.status !== 200) {
      problems.push(`${r.resourceType}/$validate: HTTP ${res.status} ${res.text.slice(0, 300)}`);
      continue;
    }
    const outcome = JSON.parse(res.text) as { issue?: { severity: string; diagnostics?: string; expression?: string[] }[] };
    for (const i of outcome.issue ?? []) {
      if (i.severity === 'error' || i.severity === 'fatal') problems.push(`${r.resourceType}: ${i.diagnostics ?? ''} ${(i.expression ?? []).join(', ')}`);
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Scenarios

type Name = 'name' | 'birthdate' | 'subject+code' | 'subject+include' | 'encounters' | 'page50';
const scenarioNames: Name[] = ['name', 'birthdate', 'subject+code', 'subject+include', 'encounters', 'page50'];

interface Scenario {
  name: Name;
  label: string;
  /** Paths (under the origin) for variant i; `variants` of them, used in a scrambled order. */
  path: (i: number) => string;
  variants: number;
  /** One request (or a few) by fetch before the load; throws if the scenario would not measure real matches. */
  smoke: () => Promise<string>;
}

/** A measurement; `sequential`: by fetch, one request after another (the 1-connection run completed too few), so without CPU figures. */
type Run = Omit<Measurement, 'clientCpu'> & {
  clientCpu?: number;
  /** Bytes the server read from storage (page-cache misses) per request. */
  diskPerRequest?: number;
  sequential?: boolean;
};

interface Measured {
  scenario: Name;
  label: string;
  note: string;
  multi?: Run;
  single?: Run;
  /** Why the scenario was not measured. */
  refused?: string;
}

/** Visits 0..n-1 in a scrambled order (a stride coprime with n), so consecutive requests hit unrelated rows. */
const scrambles = new Map<number, (i: number) => number>();

function scrambled(n: number): (i: number) => number {
  let f = scrambles.get(n);
  if (!f) scrambles.set(n, (f = makeScrambled(n)));
  return f;
}

function makeScrambled(n: number): (i: number) => number {
  let stride = Math.max(1, Math.floor(n * 0.618));
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  while (gcd(stride, n) !== 1) stride++;
  return (i) => (((i % n) * stride) + 7) % n;
}

/**
 * Where each scenario's rotation has got to: the warm-up, the N-connection and the 1-connection
 * runs carry on from one another rather than each starting over, so no run is served from pages the
 * run before it just read (the caches would flatter it).
 */
const rotation = new Map<Name, number>();

function nextVariant(s: Scenario): string {
  const i = rotation.get(s.name) ?? 0;
  rotation.set(s.name, i + 1);
  return s.path(scrambled(s.variants)(i));
}

function rotating(s: Scenario): AcRequest {
  return {
    method: 'GET',
    path: s.path(0),
    headers: accept,
    setupRequest: (request) => ({ ...request, path: nextVariant(s) }),
  };
}

async function load(origin: string, s: Scenario, conns: number, seconds: number, record: boolean, serverPid: number | undefined): Promise<Run | undefined> {
  const disk0 = diskReadBytes(serverPid);
  const m = await measure({ url: origin, connections: conns, pipelining: 1, duration: seconds, timeout: 60, requests: [rotating(s)] }, record, serverPid);
  const disk1 = diskReadBytes(serverPid);
  return m && { ...m, diskPerRequest: disk0 !== undefined && disk1 !== undefined && m.requests > 0 ? (disk1 - disk0) / m.requests : undefined };
}

/** For a query too slow for the 1-connection run to complete a few: up to `most` requests one after another, by fetch. */
async function sequentialRun(origin: string, s: Scenario, most = 5, maxSeconds = 30): Promise<Run> {
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let failures = 0;
  const t0 = performance.now();
  for (let i = 0; i < most && (i === 0 || performance.now() - t0 < maxSeconds * 1000); i++) {
    const res = await call(origin + nextVariant(s));
    statuses[res.status] = (statuses[res.status] ?? 0) + 1;
    if (res.status >= 200 && res.status < 300) latencies.push(res.ms);
    else failures++;
  }
  const sorted = Float64Array.from(latencies).sort();
  const seconds = (performance.now() - t0) / 1000;
  return { rate: latencies.length / seconds, p50: percentile(sorted, 50), p99: percentile(sorted, 99), requests: latencies.length, failures, statuses, sequential: true };
}

function buildScenarios(base: string, t: Templates, n: number): Scenario[] {
  const basePath = new URL(base).pathname;
  const groups = Math.floor(n / 4);
  const enc = encodeURIComponent;
  const pid = (i: number) => enc(`Patient/${patientId(i)}`);
  const codeParam = (c: string) => enc(`${loinc}|${c}`);
  // ge dates from 2008-01-01 to 2011-08: each selects roughly a tenth of the Patients.
  const birthdates = Array.from({ length: 12 }, (_, m) => isoDate(Date.UTC(2008, m * 4, 1)));
  const perCode = Math.floor(obsPerPatient / t.codes.length) + (obsPerPatient % t.codes.length > 0 ? 1 : 0);
  // Page 50 paths: the server's own next links out of page 49, one per code (filled by the smoke check).
  const page50Paths: string[] = [];

  const expectMatches = (what: string, b: Bundle, test: (n: number) => boolean, want: string): number => {
    const got = matches(b).length;
    if (!test(got)) throw new Error(`${what}: ${got} matches, expected ${want}`);
    return got;
  };

  return [
    {
      name: 'name',
      label: 'Patient?name=<family>',
      path: (g) => `${basePath}/Patient?name=${enc(family(t, g))}`,
      variants: groups,
      smoke: async () => {
        const { bundle, ms } = await getBundle(`${base}/Patient?name=${enc(family(t, 1))}`);
        expectMatches('name', bundle, (k) => k === 4, '4');
        return `4 matches each, ${fmtInt(groups)} names; smoke ${fmtMs(ms)} ms`;
      },
    },
    {
      name: 'birthdate',
      label: 'Patient?birthdate=ge<date>&_count=20',
      path: (i) => `${basePath}/Patient?birthdate=ge${birthdates[i]}&_count=20`,
      variants: birthdates.length,
      smoke: async () => {
        const { bundle, ms } = await getBundle(`${base}/Patient?birthdate=ge${birthdates[0]}&_count=20`);
        expectMatches('birthdate', bundle, (k) => k === 20, '20');
        const bad = matches(bundle).find((e) => String(e.resource.birthDate) < birthdates[0]);
        if (bad) throw new Error(`birthdate: ${bad.resource.id} born ${String(bad.resource.birthDate)} matched ge${birthdates[0]}`);
        const { bundle: counted } = await getBundle(`${base}/Patient?birthdate=ge${birthdates[0]}&_count=0`);
        const total = (counted as Bundle & { total?: number }).total ?? 0;
        return `20 of ~${fmtInt(total)} (${((total / n) * 100).toFixed(0)}%); smoke ${fmtMs(ms)} ms`;
      },
    },
    {
      name: 'subject+code',
      label: 'Observation?subject=&code=',
      path: (i) => `${basePath}/Observation?subject=${pid(i)}&code=${codeParam(t.codes[i % t.codes.length])}`,
      variants: n,
      smoke: async () => {
        const { bundle, ms } = await getBundle(`${base}/Observation?subject=${pid(3)}&code=${codeParam(t.codes[3 % t.codes.length])}`);
        const got = expectMatches('subject+code', bundle, (k) => k > 0 && k <= perCode, `1..${perCode}`);
        return `${got} matches each; smoke ${fmtMs(ms)} ms`;
      },
    },
    {
      name: 'subject+include',
      label: 'Observation?subject=&_include=Observation:subject',
      path: (i) => `${basePath}/Observation?subject=${pid(i)}&_include=Observation:subject`,
      variants: n,
      smoke: async () => {
        const { bundle, ms } = await getBundle(`${base}/Observation?subject=${pid(3)}&_include=Observation:subject`);
        expectMatches('subject+include', bundle, (k) => k === Math.min(obsPerPatient, 20), String(Math.min(obsPerPatient, 20)));
        const inc = includes(bundle);
        if (inc.length !== 1 || inc[0].resource.id !== patientId(3)) throw new Error(`subject+include: included ${inc.map((e) => e.fullUrl).join(', ') || 'nothing'}, expected Patient/${patientId(3)}`);
        return `${matches(bundle).length} + 1 included; smoke ${fmtMs(ms)} ms`;
      },
    },
    {
      name: 'encounters',
      label: 'Encounter?patient=&_sort=-date',
      path: (i) => `${basePath}/Encounter?patient=${pid(i)}&_sort=-date`,
      variants: n,
      smoke: async () => {
        const { bundle, ms } = await getBundle(`${base}/Encounter?patient=${pid(3)}&_sort=-date`);
        expectMatches('encounters', bundle, (k) => k === Math.min(encPerPatient, 20), String(Math.min(encPerPatient, 20)));
        const starts = matches(bundle).map((e) => String((e.resource.period as { start: string }).start));
        for (let k = 1; k < starts.length; k++) if (starts[k - 1] < starts[k]) throw new Error(`encounters: not sorted by -date: ${starts.join(', ')}`);
        return `${starts.length} matches each, newest first; smoke ${fmtMs(ms)} ms`;
      },
    },
    {
      name: 'page50',
      label: 'Observation?code=&_count=20, page 50',
      path: (i) => page50Paths[i % page50Paths.length],
      // Known once the smoke check has run (it runs before the load).
      get variants() {
        return Math.max(1, page50Paths.length);
      },
      smoke: async () => {
        // Walk page 1 to page 50 by the server's next links once, for the first code (within BENCH_WALK_LIMIT).
        const first = `${base}/Observation?code=${codeParam(t.codes[0])}&_count=20`;
        let url = first;
        let walkMs = 0;
        let walked = 0;
        let page: Bundle | undefined;
        const walkStart = performance.now();
        for (let p = 1; p <= 50; p++) {
          const { bundle, ms } = await getBundle(url);
          walkMs += ms;
          walked = p;
          page = bundle;
          if (p === 50) break;
          const next = linkOf(bundle, 'next');
          if (!next) throw new Error(`page50: page ${p} of ${first} has no next link (${matches(bundle).length} matches)`);
          if (performance.now() - walkStart > walkLimit * 1000) break;
          url = next;
        }
        let walkedIds: string | undefined;
        if (walked === 50) {
          expectMatches('page50 (walked)', page!, (k) => k === 20, '20');
          walkedIds = matches(page!).map((e) => e.resource.id).join(',');
        }
        const walkNote = walked === 50 ? `walk of 50 pages ${fmtInt(walkMs)} ms` : `walk stopped at page ${walked} after ${fmtInt(walkMs)} ms`;
        // For each code, what gets measured is the server's own next link out of page 49, whatever
        // its form (_offset, or a continuation token). Page 49 is asked for by _offset=960; if the
        // server does not take _offset, only the walked code is measured.
        let directMs = 0;
        for (const c of t.codes) {
          let next: string | undefined;
          const res = await call(`${base}/Observation?code=${codeParam(c)}&_count=20&_offset=960`);
          if (res.status === 200) next = linkOf(JSON.parse(res.text) as Bundle, 'next');
          if (!next && c === t.codes[0] && walked === 50) next = url;
          if (!next) {
            if (page50Paths.length > 0) continue;
            throw new Error(`page50: no link to page 50 for code ${c} (GET ..._offset=960: HTTP ${res.status}${res.status === 200 ? ', no next link' : ''}; walk reached page ${walked})`);
          }
          const u = new URL(next);
          const { bundle: p50, ms } = await getBundle(next);
          directMs = Math.max(directMs, ms);
          expectMatches(`page50 (${c})`, p50, (k) => k === 20, '20');
          if (c === t.codes[0] && walkedIds !== undefined && matches(p50).map((e) => e.resource.id).join(',') !== walkedIds) {
            throw new Error('page50: page 50 reached from page 49 by _offset differs from page 50 reached by walking next links');
          }
          page50Paths.push(u.pathname + u.search);
        }
        return `${page50Paths.length} codes; next link: ${decodeURIComponent(page50Paths[0].replace(/^.*\?/, '?'))}; ${walkNote}; smoke ${fmtMs(directMs)} ms`;
      },
    },
  ];
}

// ---------------------------------------------------------------------------------------------
// Output

const sizeLabel = (n: number) => `${fmtInt(n)} Patients / ${fmtInt(n * obsPerPatient)} Observations`;

// ---------------------------------------------------------------------------------------------
// Main

interface SizeResult {
  patients: number;
  /** The source the server ran for this size: another engineer may commit between sizes. */
  source: string;
  load: LoadInfo;
  storeBytes: number;
  walBytes: number;
  rss?: number;
  hwm?: number;
  results: Measured[];
}

/** Reads a file from start to end in 8 MiB chunks (and drops the bytes). */
function readWhole(path: string): number {
  const fd = openSync(path, 'r');
  const buf = Buffer.allocUnsafe(8 * 2 ** 20);
  let total = 0;
  try {
    for (let n = readSync(fd, buf); n > 0; n = readSync(fd, buf)) total += n;
  } finally {
    closeSync(fd);
  }
  return total;
}

async function runSize(t: Templates, dir: string, n: number): Promise<SizeResult> {
  console.log(`\n=== ${sizeLabel(n)}, ${fmtInt(n * encPerPatient)} Encounters ===`);
  const loadInfo = await ensureLoaded(t, dir, n);
  // Any migration (and the re-index some need) happens here, timed, rather than in the server's start.
  const tOpen = performance.now();
  await (await openStore(dir)).close();
  const openSeconds = (performance.now() - tOpen) / 1000;
  if (prewarm) {
    // Right after loading, most of the file was written but not read: the kernel may have dropped it,
    // and the first minutes of queries would measure the disk, not the server.
    const tWarm = performance.now();
    const bytes = readWhole(join(dir, 'bastion.db'));
    console.log(`store file read once into the OS page cache: ${(bytes / 2 ** 30).toFixed(2)} GiB in ${((performance.now() - tWarm) / 1000).toFixed(1)} s (BENCH_PREWARM=0 to measure cold)`);
  }
  console.log(`store opened and closed in ${openSeconds.toFixed(1)} s${openSeconds > 5 ? ' (a schema migration re-indexed it?)' : ''}`);
  const server = await startChild('bastion', [...serverNodeArgs, serverEntry, 'serve', '--port', '0', '--data-dir', dir],
    // Search is measured here, not tokens (npm run bench measures those): no authorization.
    /Bastion is serving FHIR R4 at (\S+)/, { BASTION_LOG_LEVEL: 'warn', BASTION_AUTH: 'off' }).catch((err: Error) => {
    if (loadInfo.reused) err.message += `\n(the server failed on a data dir kept from an earlier run: if its store file is from an incompatible build, delete ${dir} to have it loaded again)`;
    throw err;
  });
  const results: Measured[] = [];
  const source = sourceVersion();
  let mem: { rss?: number; hwm?: number } = {};
  try {
    const base = server.url;
    const origin = new URL(base).origin;
    const pid = server.proc.pid;
    console.log(`server: ${base} (pid ${pid}, data ${dir})`);
    const invalid = await validateSamples(base, t);
    if (invalid.length > 0) console.error(`WARNING: generated resources fail $validate:\n  ${invalid.join('\n  ')}`);
    else console.log('generated Patient, Encounter and Observation pass $validate');

    for (const s of buildScenarios(base, t, n)) {
      if (only && !only.has(s.name)) continue;
      let note: string;
      try {
        note = await s.smoke();
      } catch (err) {
        const why = (err as Error).message;
        console.error(`!!! ${s.label}: the smoke check failed, so it is not measured:\n${why}`);
        results.push({ scenario: s.name, label: s.label, note: '', refused: why.split('\n')[0] });
        continue;
      }
      process.stdout.write(`  ${s.label.padEnd(50)} `);
      await waitIdle(pid);
      if (warmup > 0) await load(origin, s, connections, warmup, false, pid);
      await waitIdle(pid);
      const multi = duration > 0 ? await load(origin, s, connections, duration, true, pid) : undefined;
      const drain = await waitIdle(pid);
      let single = singleDuration > 0 ? await load(origin, s, 1, singleDuration, true, pid) : undefined;
      if (single && single.requests < 5) {
        await waitIdle(pid);
        single = await sequentialRun(origin, s);
      }
      if (drain > 2) note += `; server busy ${drain.toFixed(0)} s after the ${connections}-connection run`;
      const m: Measured = { scenario: s.name, label: s.label, note, multi, single };
      results.push(m);
      const parts: string[] = [];
      if (multi) parts.push(`${connections} conn: ${fmtInt(multi.rate).padStart(6)} req/s p50 ${fmtMs(multi.p50)} p99 ${fmtMs(multi.p99)} ms${multi.failures ? ` FAILURES ${multi.failures}` : ''}`);
      if (single) parts.push(`1 conn: p50 ${fmtMs(single.p50)} p99 ${fmtMs(single.p99)} ms${single.sequential ? ` (${single.requests} by fetch)` : ''}${single.failures ? ` FAILURES ${single.failures}` : ''}`);
      console.log(parts.join('  |  '));
    }
    mem = memory(pid);
  } finally {
    await stopChild(server);
  }
  const sr: SizeResult = {
    patients: n, source, load: loadInfo, storeBytes: fileSize(join(dir, 'bastion.db')), walBytes: fileSize(join(dir, 'bastion.db-wal')),
    rss: mem.rss, hwm: mem.hwm, results,
  };
  printSize(sr);
  const noisy = results.filter((r) => Math.max(r.multi?.otherCpu ?? 0, r.single?.otherCpu ?? 0) > 0.1);
  if (noisy.length > 0) console.log(`WARNING: other processes used CPU during ${noisy.map((r) => r.scenario).join(', ')} (marked !); those figures are pessimistic. Rerun on a quiet machine.`);
  return sr;
}

function otherCell(r: Measured): string {
  const o = Math.max(r.multi?.otherCpu ?? -1, r.single?.otherCpu ?? -1);
  return o < 0 ? '-' : `${(o * 100).toFixed(0)}%${o > 0.1 ? ' !' : ''}`;
}

function printSize(sr: SizeResult): void {
  console.log('');
  console.log(`${sizeLabel(sr.patients)}, ${fmtInt(sr.patients * encPerPatient)} Encounters (${fmtInt(sr.load.resources)} resources` +
    `${sr.load.reused ? ', reused data dir' : `, loaded at ${fmtInt(sr.load.resources / sr.load.seconds)} resources/s`}); server source ${sr.source}`);
  const rows = sr.results.map((r) => [
    r.label,
    r.multi ? fmtInt(r.multi.rate) : '-',
    fmtMs(r.multi?.p50),
    fmtMs(r.multi?.p99),
    fmtMs(r.single?.p50) + (r.single?.sequential ? '*' : ''),
    fmtMs(r.single?.p99) + (r.single?.sequential ? '*' : ''),
    `${r.multi ? fmtInt(r.multi.requests) : '-'} / ${r.single ? fmtInt(r.single.requests) : '-'}`,
    r.refused ? 'REFUSED' : String((r.multi?.failures ?? 0) + (r.single?.failures ?? 0)),
    r.multi?.serverCpu !== undefined ? `${(r.multi.serverCpu * 100).toFixed(0)}% (${((r.multi.serverMainCpu ?? 0) * 100).toFixed(0)}%)` : '-',
    r.multi?.clientCpu !== undefined ? `${(r.multi.clientCpu * 100).toFixed(0)}%` : '-',
    r.multi?.diskPerRequest !== undefined ? fmtInt(r.multi.diskPerRequest / 1024) : '-',
    r.multi?.serverCpu !== undefined && r.multi.rate > 0 ? fmtInt((r.multi.serverCpu / r.multi.rate) * 1e6) : '-',
    otherCell(r),
    r.refused ?? r.note,
  ]);
  console.log(table(
    ['scenario', 'req/s', `p50 ms`, `p99 ms`, 'p50 1c', 'p99 1c', 'n (Nc / 1c)', 'failures', 'srv CPU (main)', 'client CPU', 'disk KiB/req', 'µs CPU/req', 'other CPU', 'notes'],
    rows,
    [false, true, true, true, true, true, true, true, true, true, true, true, true, false],
  ));
  console.log(`req/s, p50, p99 at ${connections} connections (N); "1c" at 1 connection (* too slow for that: up to 5 requests one after another by fetch); ` +
    `n: requests measured; srv CPU: share of a core the server used at N connections, all threads (main thread in brackets); client CPU: the load generator's; ` +
    `disk KiB/req: read from storage by the server per request at N connections (page-cache misses: the I/O waits are not CPU); ` +
    `µs CPU/req: server CPU time per request (all threads); other CPU: used by other processes (max of the two runs). Store file ${mib(sr.storeBytes)} (WAL ${mib(sr.walBytes)}); ` +
    `server RSS ${mib(sr.rss)}, peak ${mib(sr.hwm)}.`);
}

function printComparison(all: SizeResult[]): number {
  const first = all[0];
  const last = all[all.length - 1];
  if (all.length === 1) {
    console.log('\n(one size only: set BENCH_SEARCH_SIZES to two or more sizes to compare them)');
    printTargets(last);
    return 0;
  }
  console.log(`\n=== time per query by table size: ${all.map((s) => fmtInt(s.patients)).join(' vs ')} Patients ===`);
  const header = ['scenario'];
  for (const s of all) header.push(`p50 1c @${fmtInt(s.patients)}`);
  for (const s of all) header.push(`p50 ${connections}c @${fmtInt(s.patients)}`);
  header.push('ratio 1c', `ratio ${connections}c`, 'verdict');
  let grows = 0;
  const rows = scenarioNames.filter((n) => first.results.some((r) => r.scenario === n)).map((name) => {
    const per = all.map((s) => s.results.find((r) => r.scenario === name));
    const label = per.find(Boolean)!.label;
    const cells = [label];
    for (const r of per) cells.push(r?.refused ? 'REFUSED' : fmtMs(r?.single?.p50) + (r?.single?.sequential ? '*' : ''));
    for (const r of per) cells.push(r?.refused ? 'REFUSED' : fmtMs(r?.multi?.p50));
    const ratio = (a?: number, b?: number) => (a && b ? b / a : undefined);
    const r1 = ratio(per[0]?.single?.p50, per[per.length - 1]?.single?.p50);
    const rN = ratio(per[0]?.multi?.p50, per[per.length - 1]?.multi?.p50);
    cells.push(r1 !== undefined ? `${r1.toFixed(2)}x` : '-', rN !== undefined ? `${rN.toFixed(2)}x` : '-');
    // Per-query time: the 1-connection p50 when measured, else the concurrent one.
    const a = per[0]?.single?.p50 ?? per[0]?.multi?.p50;
    const b = per[per.length - 1]?.single?.p50 ?? per[per.length - 1]?.multi?.p50;
    let verdict = '-';
    if (a !== undefined && b !== undefined && !Number.isNaN(a) && !Number.isNaN(b)) {
      const flat = b / a <= 1.5 || b - a < 0.5;
      verdict = flat ? 'flat' : `GROWS (+${fmtMs(b - a)} ms)`;
      if (!flat) grows++;
    }
    cells.push(verdict);
    return cells;
  });
  console.log(table(header, rows, header.map((_, i) => i > 0 && i < header.length - 1)));
  if (new Set(all.map((s) => s.source)).size > 1) {
    console.log(`WARNING: the source changed during the run (${all.map((s) => `${fmtInt(s.patients)}: ${s.source}`).join('; ')}); the sizes ran different code. ` +
      'Rerun (with BENCH_SEARCH_DATA_DIR the data is reused) when src/ is quiet.');
  }
  console.log(`ratio: p50 at ${fmtInt(last.patients)} / p50 at ${fmtInt(first.patients)} Patients. flat: the 1-connection p50 grew by at most 1.5x or 0.5 ms.`);
  console.log(grows === 0 ? 'Time per query does not grow with the table size.' : `${grows} scenario(s) get slower as the tables grow.`);
  printTargets(last);
  return grows;
}

function printTargets(last: SizeResult): void {
  console.log(`\n=== targets at ${sizeLabel(last.patients)} ===`);
  const check = (name: Name, what: string, limit: number) => {
    const r = last.results.find((x) => x.scenario === name);
    if (!r || r.refused) {
      console.log(`${what} p50 < ${limit} ms: not measured`);
      return;
    }
    const verdicts: string[] = [];
    if (r.single) verdicts.push(`1 connection ${fmtMs(r.single.p50)} ms: ${r.single.p50 < limit ? 'met' : 'MISSED'}`);
    if (r.multi) verdicts.push(`${connections} connections ${fmtMs(r.multi.p50)} ms: ${r.multi.p50 < limit ? 'met' : 'MISSED'}`);
    console.log(`${what} p50 < ${limit} ms: ${verdicts.join('; ')}`);
  };
  check('name', 'name search (Patient?name=)', targets.name);
  check('subject+include', 'subject + include (Observation?subject=&_include=Observation:subject)', targets.include);
}

/** The commit the server runs, and whether src/ differs from it (the figures are for that code). */
function sourceVersion(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: root, encoding: 'utf8' }).trim();
    if (!dirty) return head;
    // A digest of the changes, so two runs on different uncommitted code do not look alike.
    const diff = execFileSync('git', ['diff', 'HEAD', '--', 'src'], { cwd: root, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    return `${head} + uncommitted changes to ${dirty.split('\n').length} file(s) in src/ (diff ${createHash('sha256').update(diff).update(dirty).digest('hex').slice(0, 8)})`;
  } catch {
    return 'unknown (no git)';
  }
}

async function main(): Promise<number> {
  const tStart = performance.now();
  console.log(`Bastion search benchmark: node ${process.version}, ${cpus().length} CPUs; sizes ${sizes.map(fmtInt).join(', ')} Patients, ` +
    `${obsPerPatient} Observations and ${encPerPatient} Encounters each; ${duration} s at ${connections} connections and ` +
    `${singleDuration} s at 1 connection per scenario after ${warmup} s warm-up`);
  console.log(`source: ${sourceVersion()}`);
  const t = loadTemplates();
  console.log(`templates: ${t.patients.length} Patients, ${t.encounters.length} Encounters, Observations with LOINC ${t.codes.join(', ')} from ${syntheaDir}`);

  let parent: string;
  if (keptDataDir) {
    parent = keptDataDir;
    mkdirSync(parent, { recursive: true });
  } else {
    parent = mkdtempSync(join(env.BENCH_DATA_DIR ?? tmpdir(), 'bastion-search-bench-'));
    tempDirs.add(parent);
  }

  let exitCode = 0;
  const all: SizeResult[] = [];
  try {
    for (const n of sizes) {
      const dir = join(parent, `patients-${n}-obs-${obsPerPatient}-enc-${encPerPatient}`);
      all.push(await runSize(t, dir, n));
    }
  } finally {
    if (keptDataDir) console.log(`\ndata kept in ${parent} (reused on the next run with BENCH_SEARCH_DATA_DIR=${parent})`);
    else if (env.BENCH_KEEP_DATA) console.log(`\ndata kept in ${parent}`);
    else {
      rmSync(parent, { recursive: true, force: true });
      tempDirs.delete(parent);
    }
  }

  printComparison(all);

  console.log('\nload throughput:');
  for (const s of all) {
    console.log(`  ${sizeLabel(s.patients)}: ${fmtInt(s.load.resources)} resources in ${s.load.seconds.toFixed(1)} s = ` +
      `${fmtInt(s.load.resources / s.load.seconds)} resources/s${s.load.reused ? ' (from an earlier run; reused)' : ''}`);
  }

  if (env.BENCH_JSON) {
    writeFileSync(env.BENCH_JSON, JSON.stringify({ connections, obsPerPatient, encPerPatient, sizes: all }, null, 2));
  }

  const failed = all.flatMap((s) => s.results.filter((r) => r.refused || (r.multi?.failures ?? 0) + (r.single?.failures ?? 0) > 0).map((r) => ({ s, r })));
  if (failed.length > 0) {
    exitCode = 1;
    console.error('');
    for (const { s, r } of failed) {
      if (r.refused) {
        console.error(`!!! ${r.label} at ${fmtInt(s.patients)} Patients: not measured (${r.refused})`);
        continue;
      }
      const statuses = { ...r.multi?.statuses };
      for (const [c, k] of Object.entries(r.single?.statuses ?? {})) statuses[c] = (statuses[c] ?? 0) + k;
      const codes = Object.entries(statuses).filter(([c]) => !c.startsWith('2')).map(([c, k]) => `${k} x HTTP ${c}`).join(', ');
      console.error(`!!! ${r.label} at ${fmtInt(s.patients)} Patients: requests failed (${codes || 'connection errors / timeouts'}); its figures are not valid`);
    }
  }
  console.log(`\nbenchmark time: ${((performance.now() - tStart) / 1000).toFixed(0)} s`);
  return exitCode;
}

runMain(main);
