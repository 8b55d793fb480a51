/**
 * What the benchmarks share: child processes (the server, the ceiling) started and stopped
 * cleanly, and CPU and memory read from /proc (Linux; undefined elsewhere).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { EventEmitter } from 'node:events';

// autocannon (CommonJS, untyped): the part of its API the benchmarks use.

export interface AcRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  setupRequest?: (request: AcRequest, context: object) => AcRequest;
}

export interface AcOptions {
  url: string;
  connections: number;
  pipelining: number;
  duration: number;
  timeout?: number;
  requests: AcRequest[];
}

export interface AcResult {
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  statusCodeStats: Record<string, { count: number }>;
}

export type AcInstance = EventEmitter & PromiseLike<AcResult>;
export const autocannon = createRequire(import.meta.url)('autocannon') as (options: AcOptions) => AcInstance;

/** A non-negative number from the environment, or `fallback` when unset. */
export function numberFromEnv(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const v = env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number (got "${v}")`);
  return n;
}

const children = new Set<ChildProcess>();
const exitHooks: (() => void)[] = [];
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const hook of exitHooks) hook();
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
    process.exit(130);
  });
}

/** Also run when the benchmark exits, however it exits (e.g. removing temporary data). */
export function onExit(hook: () => void): void {
  exitHooks.push(hook);
}

/** Children that must not outlive the benchmark (killed on exit). */
export function track(proc: ChildProcess): void {
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
}

export interface Child {
  proc: ChildProcess;
  url: string;
}

/** Starts `node args` in `cwd` and resolves with the URL it prints (the first group of `pattern`). */
export function startChild(
  cwd: string, label: string, args: string[], pattern: RegExp, extraEnv: Record<string, string> = {}, timeoutSeconds = 60,
): Promise<Child> {
  // Loopback benchmarks measure Bastion over plain HTTP (as the figures we compare with are), unless BASTION_TLS says otherwise.
  const proc = spawn(process.execPath, args, { cwd, env: { BASTION_TLS: 'off', ...process.env, ...extraEnv }, stdio: ['ignore', 'pipe', 'inherit'] });
  track(proc);
  return new Promise((resolve, reject) => {
    let buffered = '';
    let found = false;
    const timer = setTimeout(() => fail(new Error(`${label} did not report its address within ${timeoutSeconds} s`)), timeoutSeconds * 1000);
    const fail = (err: Error) => {
      clearTimeout(timer);
      if (proc.exitCode === null) proc.kill('SIGKILL');
      reject(err);
    };
    proc.once('exit', (code, signal) => {
      if (!found) fail(new Error(`${label} exited (${signal ?? code}) before reporting its address:\n${buffered}`));
    });
    proc.stdout!.setEncoding('utf8');
    proc.stdout!.on('data', (chunk: string) => {
      if (found) {
        for (const line of chunk.split('\n')) if (line.trim()) process.stdout.write(`[${label}] ${line}\n`);
        return;
      }
      buffered += chunk;
      const m = pattern.exec(buffered);
      if (m) {
        found = true;
        clearTimeout(timer);
        resolve({ proc, url: m[1] });
      }
    });
  });
}

export async function stopChild(child: Child): Promise<void> {
  if (child.proc.exitCode !== null || child.proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.proc.once('exit', () => resolve()));
  child.proc.kill('SIGTERM');
  const timeout = setTimeout(() => child.proc.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timeout);
}

/** user + system CPU seconds of a process (all its threads), or of its main thread (the event loop) with `mainThread`. */
export function cpuSeconds(pid: number | undefined, mainThread = false): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(mainThread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After "(comm) ": utime and stime are fields 14 and 15 (1-based in proc(5)).
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

/** Busy CPU seconds of the whole machine (all cores), from /proc/stat. */
export function machineBusySeconds(): number | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
    const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
    return (user + nice + system + irq + softirq + (steal || 0)) / 100;
  } catch {
    return undefined;
  }
}

/** Resident and peak resident memory of a process, in bytes. */
export function memory(pid: number | undefined): { rss?: number; hwm?: number } {
  if (pid === undefined) return {};
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => {
      const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status);
      return m ? Number(m[1]) * 1024 : undefined;
    };
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return {};
  }
}

/** What one autocannon run measured, with the CPU the server, the client and everything else used meanwhile. */
export interface Measurement {
  rate: number;
  p50: number;
  p99: number;
  requests: number;
  failures: number;
  statuses: Record<string, number>;
  /** Share of a core, all of the server's threads / its main thread. */
  serverCpu?: number;
  serverMainCpu?: number;
  clientCpu: number;
  /** CPU used by everything else on the machine (cores): other load makes the figures unreliable. */
  otherCpu?: number;
}

/**
 * Runs autocannon and, when `record`, measures it: latencies of successful requests only (a
 * scenario measures successes), server CPU from /proc.
 */
export async function measure(options: AcOptions, record: boolean, serverPid: number | undefined): Promise<Measurement | undefined> {
  const latencies: number[] = [];
  const cpu0 = cpuSeconds(serverPid);
  const main0 = cpuSeconds(serverPid, true);
  const machine0 = machineBusySeconds();
  const client0 = process.cpuUsage();
  const t0 = performance.now();
  const instance = autocannon(options);
  if (record) {
    instance.on('response', (_client: unknown, status: number, _bytes: number, responseTime: number) => {
      if (status >= 200 && status < 300) latencies.push(responseTime);
    });
  }
  const result = await instance;
  const elapsed = (performance.now() - t0) / 1000;
  if (!record) return undefined;
  const cpu1 = cpuSeconds(serverPid);
  const main1 = cpuSeconds(serverPid, true);
  const machine1 = machineBusySeconds();
  const client = process.cpuUsage(client0);
  const clientSeconds = (client.user + client.system) / 1e6;
  const sorted = Float64Array.from(latencies).sort();
  const statuses: Record<string, number> = {};
  for (const [code, { count }] of Object.entries(result.statusCodeStats)) statuses[code] = count;
  return {
    rate: latencies.length / result.duration,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    requests: latencies.length,
    failures: result.non2xx + result.errors + result.timeouts,
    statuses,
    serverCpu: cpu0 !== undefined && cpu1 !== undefined ? (cpu1 - cpu0) / elapsed : undefined,
    serverMainCpu: main0 !== undefined && main1 !== undefined ? (main1 - main0) / elapsed : undefined,
    clientCpu: clientSeconds / elapsed,
    otherCpu: cpu0 !== undefined && cpu1 !== undefined && machine0 !== undefined && machine1 !== undefined
      ? Math.max(0, (machine1 - machine0 - (cpu1 - cpu0) - clientSeconds) / elapsed)
      : undefined,
  };
}

// ---------------------------------------------------------------------------------------------
// Data and output shared by the benchmarks

export interface Resource {
  resourceType: string;
  id?: string;
  [key: string]: unknown;
}

export interface HumanName {
  family?: string;
  given?: string[];
  [key: string]: unknown;
}

/** The value at percentile `p` of ascending `sorted` (nearest rank); NaN when empty. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

export function fmtMs(n: number | undefined): string {
  return n === undefined || Number.isNaN(n) ? '-' : n < 10 ? n.toFixed(2) : n.toFixed(1);
}

export function table(header: string[], rows: string[][], rightAligned: boolean[]): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]) => cells.map((cell, c) => (rightAligned[c] ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].map((l) => l.trimEnd()).join('\n');
}

export function mib(bytes: number | undefined): string {
  return bytes === undefined ? 'n/a' : bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(2)} GiB` : `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** Runs a benchmark's main: its result is the exit code; a crash prints its stack and exits 1. */
export function runMain(main: () => Promise<number>): void {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      console.error(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
      process.exitCode = 1;
    },
  );
}
