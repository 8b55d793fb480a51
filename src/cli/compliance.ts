import { loadConfig } from '../config/config.ts';
import { openKeys } from '../main.ts';
import { parse } from './args.ts';
import { transportFindings } from '../compliance/transport.ts';
import { databaseFindings } from '../compliance/database.ts';
import { rateLimitFindings } from '../compliance/rate-limits.ts';
import { keyCustodyFindings } from '../compliance/key-custody.ts';
import { keyAgeFindings } from '../compliance/key-age.ts';
import type { Finding } from '../compliance/finding.ts';

export const complianceHelp = `Usage: bastion compliance [--data-dir D] [--config F] [--json]

Checks this deployment's configuration and keys against the HIPAA technical safeguards it can see:
transport (TLS, plain HTTP), the PostgreSQL connection and tables (TLS to the database, sealed
bodies), request rate limits, key custody (where the master key lives) and key age (quarterly rotation). Exits 1 when a high-severity finding is reported.
`;

export async function complianceCommand(args: string[]): Promise<void> {
  const { values } = parse(args, { 'data-dir': { type: 'string' }, config: { type: 'string' }, json: { type: 'boolean' } });
  if (values.help) {
    process.stdout.write(complianceHelp);
    return;
  }
  const config = loadConfig({ dataDir: values['data-dir'] as string | undefined }, process.env, values.config as string | undefined);
  const keys = await openKeys(config.dataDir, config.keyProvider);
  const findings: Finding[] = [
    ...transportFindings(config),
    ...databaseFindings(config),
    ...rateLimitFindings(config),
    ...keyCustodyFindings(config.keyProvider, config.dataDir),
    ...keyAgeFindings(await keys.provider.versions(), keys.ages()),
  ];
  if (values.json) process.stdout.write(JSON.stringify({ findings }, null, 2) + '\n');
  else if (findings.length === 0) process.stdout.write('no findings\n');
  else for (const f of findings) process.stdout.write(`[${f.severity}] ${f.control}: ${f.message}\n`);
  if (findings.some((f) => f.severity === 'high')) process.exitCode = 1;
}
