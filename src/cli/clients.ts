import { readFileSync } from 'node:fs';
import { loadConfig } from '../config/config.ts';
import { ClientRegistrationError, registerClient, type ClientType } from '../auth/clients.ts';
import { parse, UsageError } from './args.ts';
import { addArguments, withAuthStore } from './auth-commands.ts';
import { clientRegisteredDetail } from '../auth/auth-events.ts';

export const clientsHelp = `Usage: bastion clients add --name <name> --type public|confidential|backend --scope "<scopes>" [options]

Registers a client application and prints its client_id (and, for a confidential client, its
secret, shown only this once). Works while the server runs. Recorded in the audit trail as done by
the console (never the secret).

  public         a browser or native app: authorization code with PKCE, no secret
  confidential   a server-side app: authorization code with a client secret
  backend        a service without a user: client_credentials with a signed JWT (its JWKS) or
                 with its TLS client certificate (RFC 8705; the server needs tlsClientCertificates)

Options:
  --name <name>            shown to users on the approval page
  --type <type>            public, confidential or backend
  --scope "<scopes>"       the most the client may be granted, e.g. "openid fhirUser launch/patient patient/*.rs"
  --redirect-uri <uri>     (repeatable) exact redirect URIs, for public and confidential clients
  --secret-method <m>      confidential clients: client_secret_basic (default) or client_secret_post
  --jwks <file>            backend clients: a JSON Web Key Set file with the client's public keys
  --jwks-uri <url>         backend clients: where the client publishes its JWKS
  --tls-subject <dn>       backend clients: authenticate with a client certificate from the tlsClientCa
                           CAs whose subject is this DN (tls_client_auth), e.g. "CN=lab-feed,O=Example Lab"
  --certificate <file>     backend clients: authenticate with this self-signed client certificate (PEM;
                           self_signed_tls_client_auth)
  --certificate-bound <b>  bind access tokens to the client certificate (RFC 8705): true or false;
                           default true with --tls-subject or --certificate, false otherwise
  --data-dir <dir>         data directory (BASTION_DATA_DIR; default ./data)
  --config <file>          JSON config file (BASTION_CONFIG)
  -h, --help               this help
`;

export async function clientsCommand(args: string[]): Promise<void> {
  const rest = addArguments('clients', args, clientsHelp);
  if (!rest) return;
  const { values } = parse(rest, {
    name: { type: 'string' }, type: { type: 'string' }, scope: { type: 'string' }, 'redirect-uri': { type: 'string', multiple: true },
    'secret-method': { type: 'string' }, jwks: { type: 'string' }, 'jwks-uri': { type: 'string' },
    'tls-subject': { type: 'string' }, certificate: { type: 'string' }, 'certificate-bound': { type: 'string' }, 'data-dir': { type: 'string' }, config: { type: 'string' },
  });
  if (values.help) {
    process.stdout.write(clientsHelp);
    return;
  }
  const str = (name: string) => values[name] as string | undefined;
  if (!str('name') || !str('type') || !str('scope')) throw new UsageError('--name, --type and --scope are required');
  const secretMethod = str('secret-method');
  if (secretMethod !== undefined && secretMethod !== 'client_secret_basic' && secretMethod !== 'client_secret_post') {
    throw new UsageError('--secret-method is client_secret_basic or client_secret_post');
  }
  let jwks: { keys: Record<string, unknown>[] } | undefined;
  if (str('jwks')) {
    try {
      jwks = JSON.parse(readFileSync(str('jwks')!, 'utf8')) as { keys: Record<string, unknown>[] };
    } catch (err) {
      throw new UsageError(`cannot read the JWKS file: ${(err as Error).message}`);
    }
  }
  let certificate: string | undefined;
  if (str('certificate')) {
    try {
      certificate = readFileSync(str('certificate')!, 'utf8');
    } catch (err) {
      throw new UsageError(`cannot read the certificate file: ${(err as Error).message}`);
    }
  }
  const bound = str('certificate-bound');
  if (bound !== undefined && bound !== 'true' && bound !== 'false') throw new UsageError('--certificate-bound is true or false');
  const config = loadConfig({ dataDir: str('data-dir') }, process.env, str('config'));
  await withAuthStore(config, async (store, record) => {
    const { clientId, clientSecret } = await registerClient(store, {
      name: str('name')!, type: str('type') as ClientType, scope: str('scope')!,
      redirectUris: (values['redirect-uri'] as unknown as string[] | undefined) ?? [], secretMethod, jwks, jwksUri: str('jwks-uri'),
      tlsSubjectDn: str('tls-subject'), certificate, ...(bound !== undefined ? { certificateBound: bound === 'true' } : {}),
    }).catch((err: unknown) => {
      throw err instanceof ClientRegistrationError ? new UsageError(err.message) : err;
    });
    record({ kind: 'client-registered', detail: clientRegisteredDetail(clientId, str('type')!, str('scope')!) });
    process.stdout.write(`client_id: ${clientId}\n`);
    if (clientSecret) process.stdout.write(`client_secret (shown only now): ${clientSecret}\n`);
  });
}
