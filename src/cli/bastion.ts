import { ConfigError } from '../config/config.ts';
import { UsageError } from './args.ts';
import { serve } from './serve.ts';
import { importCommand } from './import.ts';
import { reindexCommand } from './reindex.ts';
import { usersCommand } from './users.ts';
import { clientsCommand } from './clients.ts';
import { auditCommand } from './audit.ts';
import { keysCommand } from './keys.ts';
import { complianceCommand } from './compliance.ts';
import { backupCommand, restoreCommand } from './backup.ts';
import { migrateCommand } from './migrate.ts';

const help = `Usage: bastion <command> [options]

Commands:
  serve     start the FHIR server
  import    load NDJSON or Bundle files into the store
  reindex   rebuild the search index from the stored resources
  users     add users who sign in to apps (users add)
  clients   register client applications (clients add)
  audit     check the audit trail's hash chain (audit verify)
  keys      key status and rotation (keys status, keys rotate)
  compliance  check transport, key custody and key age against the HIPAA safeguards
  backup    write an encrypted backup of the data dir, while the server runs
  restore   restore a backup into a new data dir, and verify it
  migrate   move this embedded deployment to PostgreSQL (migrate --to postgres://...), and verify it

Run 'bastion <command> --help' for a command's options.
`;

const commands: Record<string, (args: string[]) => Promise<void>> = {
  serve, import: importCommand, reindex: reindexCommand, users: usersCommand, clients: clientsCommand, audit: auditCommand,
  keys: keysCommand, compliance: complianceCommand,
  backup: backupCommand, restore: restoreCommand, migrate: migrateCommand,
};

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(help);
    return command ? 0 : 1;
  }
  const run = commands[command];
  if (!run) {
    process.stderr.write(`Unknown command "${command}".\n\n${help}`);
    return 2;
  }
  try {
    await run(rest);
    return 0;
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConfigError) {
      process.stderr.write(`bastion ${command}: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`bastion ${command}: ${(err as Error).message}\n`);
    return 1;
  }
}
