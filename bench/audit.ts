/**
 * `npm run bench:audit`: the audit trail's hash chain. Appends BENCH_AUDIT_RECORDS records (default
 * 1,000,000; typical read records, in batches as the server's group commit makes them) to a fresh
 * store, then runs the verifier over the whole chain and the signed checkpoints, and prints
 * records/s for both.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, auditSigningKey } from '../src/main.ts';
import { AuditCheckpoints } from '../src/audit/checkpoints.ts';
import { verifyAuditFile } from '../src/cli/audit.ts';
import { numberFromEnv, fmtInt } from './harness.ts';

const total = numberFromEnv(process.env, 'BENCH_AUDIT_RECORDS', 1_000_000);
const batch = 512;
const dir = mkdtempSync(join(tmpdir(), 'bastion-bench-audit-'));
try {
  const store = await openStore(dir);
  const checkpoints = new AuditCheckpoints(store, await auditSigningKey(dir));
  const started = performance.now();
  for (let n = 0; n < total; n += batch) {
    const records = Array.from({ length: Math.min(batch, total - n) }, (_, i) => {
      const at = new Date(Date.UTC(2026, 10, 29) + n + i).toISOString();
      return { recorded: at, json: JSON.stringify({ at, do: 'read', st: 200, who: `user-${(n + i) % 97}`, ip: '10.0.0.7', what: [`Patient/${(n + i) % 10007}/_history/1`] }) };
    });
    await store.appendAudit(records);
    if (n % (batch * 200) === 0) await checkpoints.checkpoint();
  }
  await checkpoints.checkpoint();
  const appended = (performance.now() - started) / 1000;
  await store.close();
  const t0 = performance.now();
  const verdict = await verifyAuditFile(dir);
  const verified = (performance.now() - t0) / 1000;
  if (!verdict.ok) throw new Error(`the chain did not verify: ${JSON.stringify(verdict)}`);
  console.log(`audit chain: ${fmtInt(total)} records`);
  console.log(`  append (chained, batches of ${batch})  ${fmtInt(total / appended)} records/s  (${appended.toFixed(1)} s)`);
  console.log(`  verify (chain + checkpoints)        ${fmtInt(total / verified)} records/s  (${verified.toFixed(1)} s)`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
