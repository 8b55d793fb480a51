/**
 * `node bench/postgres-audit.ts`: appends/s of the PostgreSQL audit trail (store/postgres/audit-log.ts)
 * for one node and for two nodes on one chain: BENCH_PG_AUDIT_APPENDERS callers per node (default 20),
 * each appending one record at a time and awaiting its commit, for BENCH_PG_AUDIT_SECONDS (default 5).
 * Needs BASTION_TEST_POSTGRES_URL; works in a schema of its own, dropped at the end.
 */
import { randomBytes } from 'node:crypto';
import { Database } from '../src/store/postgres/database.ts';
import { PgAuditLog } from '../src/store/postgres/audit-log.ts';
import { verifyChain, type ChainRow } from '../src/audit/audit-chain.ts';
import { numberFromEnv, fmtInt } from './harness.ts';

const url = process.env.BASTION_TEST_POSTGRES_URL;
if (!url) throw new Error('BASTION_TEST_POSTGRES_URL is not set (scripts/test-postgres.sh starts a PostgreSQL)');
const appenders = numberFromEnv(process.env, 'BENCH_PG_AUDIT_APPENDERS', 20);
const seconds = numberFromEnv(process.env, 'BENCH_PG_AUDIT_SECONDS', 5);

async function run(nodes: number): Promise<void> {
  const schema = `bench_audit_${randomBytes(4).toString('hex')}`;
  const dbs = Array.from({ length: nodes }, () => new Database({ url: url!, schema }));
  try {
    const logs = await Promise.all(dbs.map((db) => PgAuditLog.open(db)));
    let appended = 0;
    const until = performance.now() + seconds * 1000;
    await Promise.all(logs.flatMap((log, node) => Array.from({ length: appenders }, async (_, c) => {
      for (let i = 0; performance.now() < until; i++) {
        const at = new Date().toISOString();
        await log.append([{ recorded: at, json: JSON.stringify({ at, do: 'read', st: 200, who: `user-${c}`, ip: '10.0.0.7', what: [`Patient/${node}-${c}-${i}/_history/1`] }) }]);
        appended++;
      }
    })));
    const elapsed = seconds;
    await Promise.all(logs.map((l) => l.close()));
    const [{ tx }] = await dbs[0].query<{ tx: number }>('SELECT count(DISTINCT xmin::text) AS tx FROM audit_log');
    const rows: ChainRow[] = [];
    for await (const r of logs[0].chainRows()) rows.push(r);
    const verdict = verifyChain(rows);
    if (!verdict.ok || verdict.count !== appended) throw new Error(`the chain did not verify: ${JSON.stringify(verdict)}`);
    console.log(`  ${nodes} node${nodes > 1 ? 's' : ' '} x ${appenders} appenders  ${fmtInt(appended / elapsed)} appends/s  (${fmtInt(appended)} records in ${fmtInt(tx)} transactions, chain verified)`);
  } finally {
    await dbs[0].exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
    await Promise.all(dbs.map((db) => db.close()));
  }
}

console.log(`PostgreSQL audit trail: single-record appends, each awaited, ${seconds} s`);
await run(1);
await run(2);
