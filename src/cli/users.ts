import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../config/config.ts';
import { addUser, UserError } from '../auth/users.ts';
import type { Role } from '../store/auth-store.ts';
import { parse, UsageError } from './args.ts';
import { addArguments, withAuthStore } from './auth-commands.ts';
import { userCreatedDetail } from '../auth/auth-events.ts';

export const usersHelp = `Usage: bastion users add --username <name> --role <role> [options]

Creates a user who signs in on the authorization pages. Roles: patient, nurse, physician,
lab-technician, billing, researcher, admin, system. Nurses, physicians, lab technicians, billing,
researchers and admins enrol a TOTP authenticator at their first sign-in unless given one here.
Works while the server runs. Recorded in the audit trail as done by the console (never the password).

Options:
  --username <name>       sign-in name (A-Z a-z 0-9 . _ @ -)
  --role <role>           one of the roles above
  --fhir-user <ref>       the user's FHIR resource, e.g. Practitioner/7 (patients: Patient/<id>, required)
  --password-file <file>  read the password from this file (first line); otherwise one is generated and printed once
  --totp-secret <base32>  an already provisioned TOTP secret
  --data-dir <dir>        data directory (BASTION_DATA_DIR; default ./data)
  --config <file>         JSON config file (BASTION_CONFIG)
  -h, --help              this help
`;

export async function usersCommand(args: string[]): Promise<void> {
  const rest = addArguments('users', args, usersHelp);
  if (!rest) return;
  const { values } = parse(rest, {
    username: { type: 'string' }, role: { type: 'string' }, 'fhir-user': { type: 'string' }, 'password-file': { type: 'string' },
    'totp-secret': { type: 'string' }, 'data-dir': { type: 'string' }, config: { type: 'string' },
  });
  if (values.help) {
    process.stdout.write(usersHelp);
    return;
  }
  const str = (name: string) => values[name] as string | undefined;
  if (!str('username') || !str('role')) throw new UsageError('--username and --role are required');
  const passwordFile = str('password-file');
  let password: string;
  let generated = false;
  if (passwordFile) {
    password = readFileSync(passwordFile, 'utf8').split(/\r?\n/)[0];
  } else {
    password = randomBytes(15).toString('base64url');
    generated = true;
  }
  const config = loadConfig({ dataDir: str('data-dir') }, process.env, str('config'));
  await withAuthStore(config, async (store, record) => {
    const user = await addUser(store, {
      username: str('username')!, role: str('role') as Role, fhirUser: str('fhir-user'), password, totpSecret: str('totp-secret'),
      mustChangePassword: generated,
    }).catch((err: unknown) => {
      throw err instanceof UserError ? new UsageError(err.message) : err;
    });
    record({ kind: 'user-created', detail: userCreatedDetail(user, generated) });
    process.stdout.write(`created user ${user.username} (${user.role}), id ${user.id}\n`);
    if (generated) process.stdout.write(`one-time password (to be changed at first sign-in): ${password}\n`);
  });
}
