import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fmtInt, table } from './harness.ts';

const root = fileURLToPath(new URL('..', import.meta.url));

/** One side of a comparison: a server entry (default bin/bastion.js) and environment for it. */
export interface Variant {
  server?: string;
  env?: Record<string, string>;
}

interface Result { name: string; rate: number; cpuPerRequestUs?: number }

/**
 * Runs `npm run bench`'s scenarios against two variants of the server, alternating which goes
 * first each round (the machine's drift then falls on both alike), and prints the medians, the
 * share of the first variant's throughput in the second's, and the verdict against `target`.
 */
export function compareAlternating(options: { scenarios: string[]; variants: [string, Variant][]; rounds: number; target: number; targetText: string }): void {
  const { scenarios, variants, rounds } = options;
  const [first, second] = variants.map(([name]) => name);
  const rates: Record<string, Record<string, number[]>> = {};
  const cpu: Record<string, Record<string, number[]>> = {};
  const scratch = mkdtempSync(join(tmpdir(), 'bastion-bench-ab-'));
  try {
    for (let round = 1; round <= rounds; round++) {
      const order = round % 2 === 1 ? variants : [...variants].reverse();
      for (const [name, variant] of order) {
        const json = join(scratch, `${round}-${name}.json`);
        process.stdout.write(`round ${round}/${rounds}: ${name} ... `);
        const run = spawnSync(process.execPath, [join(root, 'bench/run.ts')], {
          cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'],
          env: { ...process.env, ...variant.env, BENCH_ONLY: scenarios.join(','), BENCH_SKIP_IMPORT: '1', BENCH_SERVER: variant.server ?? join(root, 'bin/bastion.js'), BENCH_JSON: json },
        });
        if (run.status !== 0) throw new Error(`bench/run.ts failed for ${name}:\n${run.stdout}`);
        const results = (JSON.parse(readFileSync(json, 'utf8')) as { results: Result[] }).results;
        for (const r of results) {
          ((rates[r.name] ??= {})[name] ??= []).push(r.rate);
          if (r.cpuPerRequestUs !== undefined) ((cpu[r.name] ??= {})[name] ??= []).push(r.cpuPerRequestUs);
        }
        console.log(results.map((r) => `${r.name} ${fmtInt(r.rate)}/s`).join(', '));
      }
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  const median = (xs: number[] = []) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  console.log(`\nmedians of ${rounds} alternating round(s); target: ${options.targetText}\n`);
  console.log(table(
    ['scenario', `${first} req/s`, `${second} req/s`, `${first}/${second}`, `CPU µs/req ${first}`, `CPU µs/req ${second}`, 'verdict'],
    scenarios.filter((s) => rates[s]).map((s) => {
      const a = median(rates[s][first]);
      const b = median(rates[s][second]);
      const share = a / b;
      return [s, fmtInt(a), fmtInt(b), `${(share * 100).toFixed(0)}%`, fmtInt(median(cpu[s]?.[first])), fmtInt(median(cpu[s]?.[second])), share >= options.target ? 'met' : 'MISSED'];
    }),
    [false, true, true, true, true, true, false],
  ));
}
