/**
 * `npm run bench:audit-cost`: what auditing costs reads and searches. Runs `npm run bench`'s
 * authorized scenarios (a backend service and a physician, reads and name searches) against
 * Bastion as it ships and against the same server with auditing stubbed out
 * (bench/audit-off-server.ts), alternating, and prints each throughput and the audited share of
 * the unaudited one. The issue's target: audited >= 80% of audit-off.
 *
 * Environment: BENCH_ROUNDS=3 (alternating pairs), BENCH_DURATION=10 (seconds per scenario);
 * the other BENCH_* settings of bench/run.ts pass through.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fmtInt, numberFromEnv, table } from './harness.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const rounds = Math.max(1, Math.round(numberFromEnv(process.env, 'BENCH_ROUNDS', 3)));
const scenarios = ['read-auth', 'search-auth', 'read-clinician', 'search-clinician'];
const servers = { audited: join(root, 'bin/bastion.js'), 'audit off': join(root, 'bench/audit-off-server.ts') };
const scratch = mkdtempSync(join(tmpdir(), 'bastion-bench-audit-cost-'));

interface Result { name: string; rate: number; cpuPerRequestUs?: number }
const rates: Record<string, Record<string, number[]>> = {};
const cpu: Record<string, Record<string, number[]>> = {};

try {
  for (let round = 1; round <= rounds; round++) {
    // Alternate which goes first: the machine's drift then falls on both alike.
    const order = round % 2 === 1 ? (['audited', 'audit off'] as const) : (['audit off', 'audited'] as const);
    for (const which of order) {
      const json = join(scratch, `${round}-${which}.json`);
      process.stdout.write(`round ${round}/${rounds}: ${which} ... `);
      const run = spawnSync(process.execPath, [join(root, 'bench/run.ts')], {
        cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'],
        env: { ...process.env, BENCH_ONLY: scenarios.join(','), BENCH_SKIP_IMPORT: '1', BENCH_SERVER: servers[which], BENCH_JSON: json },
      });
      if (run.status !== 0) throw new Error(`bench/run.ts failed for ${which}:\n${run.stdout}`);
      const results = (JSON.parse(readFileSync(json, 'utf8')) as { results: Result[] }).results;
      for (const r of results) {
        ((rates[r.name] ??= {})[which] ??= []).push(r.rate);
        if (r.cpuPerRequestUs !== undefined) ((cpu[r.name] ??= {})[which] ??= []).push(r.cpuPerRequestUs);
      }
      console.log(results.map((r) => `${r.name} ${fmtInt(r.rate)}/s`).join(', '));
    }
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}

const median = (xs: number[] = []) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
console.log(`\nmedians of ${rounds} alternating round(s); target: audited >= 80% of audit off\n`);
console.log(table(
  ['scenario', 'audited req/s', 'audit off req/s', 'audited/off', 'CPU µs/req audited', 'CPU µs/req off', 'verdict'],
  scenarios.filter((s) => rates[s]).map((s) => {
    const on = median(rates[s].audited);
    const off = median(rates[s]['audit off']);
    const share = on / off;
    return [s, fmtInt(on), fmtInt(off), `${(share * 100).toFixed(0)}%`, fmtInt(median(cpu[s]?.audited)), fmtInt(median(cpu[s]?.['audit off'])), share >= 0.8 ? 'met' : 'MISSED'];
  }),
  [false, true, true, true, true, true, false],
));
