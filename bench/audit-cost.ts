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
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { numberFromEnv } from './harness.ts';
import { compareAlternating } from './alternating.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
compareAlternating({
  scenarios: ['read-auth', 'search-auth', 'read-clinician', 'search-clinician'],
  variants: [['audited', {}], ['audit off', { server: join(root, 'bench/audit-off-server.ts') }]],
  rounds: Math.max(1, Math.round(numberFromEnv(process.env, 'BENCH_ROUNDS', 3))),
  target: 0.8,
  targetText: 'audited >= 80% of audit off',
});
