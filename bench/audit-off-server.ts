/**
 * Bastion with its audit trail switched off, for bench/audit-cost.ts only: auditing's cost is the
 * difference between this and bin/bastion.js in the same run. There is deliberately no setting
 * that does this: a server that can run unaudited is not one HIPAA's audit controls trust.
 */
import { AuditLog } from '../src/audit/audit-log.ts';

AuditLog.prototype.record = function record(): void {};
const { main } = await import('../src/cli/bastion.ts');
const code = await main(process.argv.slice(2));
if (code !== 0) process.exitCode = code;
