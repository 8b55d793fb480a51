/**
 * `npm run bench:encryption-cost`: what application-level encryption of resource bodies costs.
 * Runs `npm run bench`'s reads, searches and writes against Bastion with every stored version
 * sealed (BASTION_ENCRYPT_RESOURCE_BODIES=true: AES-256-GCM per version, on top of the store
 * file's encryption) and with bodies stored as text, alternating, and prints each throughput and
 * the sealed share of the text one. The issue's target: at most 10% slower (sealed >= 90%).
 * Sensitive identifiers are encrypted in both (they always are).
 *
 * Environment: BENCH_ROUNDS=3 (alternating pairs), BENCH_DURATION=10 (seconds per scenario);
 * the other BENCH_* settings of bench/run.ts pass through.
 */
import { numberFromEnv } from './harness.ts';
import { compareAlternating } from './alternating.ts';

compareAlternating({
  scenarios: (process.env.BENCH_SCENARIOS ?? 'read,search,create,update').split(','),
  variants: [['sealed', { env: { BASTION_ENCRYPT_RESOURCE_BODIES: 'true' } }], ['text', { env: { BASTION_ENCRYPT_RESOURCE_BODIES: 'false' } }]],
  rounds: Math.max(1, Math.round(numberFromEnv(process.env, 'BENCH_ROUNDS', 3))),
  target: 0.9,
  targetText: 'sealed >= 90% of text (encryption costs at most 10%)',
});
