import { loadConfig } from '../config/config.ts';
import { startServer } from '../main.ts';
import { parse } from './args.ts';

export const serveHelp = `Usage: bastion serve [options]

Starts the FHIR server on the embedded, encrypted store, over HTTPS (TLS 1.3). A new data dir is
initialised on first start, with its keys and, without tlsCert/tlsKey, a development certificate
(data/tls-dev-cert.pem, to pin: curl --cacert data/tls-dev-cert.pem ...).

Options:
  --host <addr>      address to listen on (BASTION_HOST; default 127.0.0.1; loopback only with BASTION_AUTH=off or BASTION_TLS=off)
  --port <n>         port (BASTION_PORT; default 8080; 0 picks a free port)
  --data-dir <dir>   data directory (BASTION_DATA_DIR; default ./data)
  --config <file>    JSON config file (BASTION_CONFIG)
  -h, --help         this help
`;

export async function serve(args: string[]): Promise<void> {
  const { values } = parse(args, {
    host: { type: 'string' }, port: { type: 'string' }, 'data-dir': { type: 'string' }, config: { type: 'string' },
  });
  if (values.help) {
    process.stdout.write(serveHelp);
    return;
  }
  const str = (name: string) => values[name] as string | undefined;
  const config = loadConfig({ host: str('host'), port: str('port'), dataDir: str('data-dir') }, process.env, str('config'));
  const server = await startServer(config, { logger: { level: config.logLevel } });
  process.stdout.write(`Bastion is serving FHIR R4 at ${server.baseUrl}\n(data: ${config.dataDir})\n`);
  if (config.auth.mode === 'smart') process.stdout.write(`SMART authorization server: ${config.auth.issuer} (discovery: ${server.baseUrl}/.well-known/smart-configuration)\n`);
  else process.stdout.write('Authorization is off (BASTION_AUTH=off): every request is anonymous, loopback only.\n');
  if (server.setupSecret) {
    process.stdout.write(`\nFirst start: created the account "admin" with the one-time password\n\n    ${server.setupSecret}\n\n` +
      'Sign in with it (it must be changed, and an authenticator app enrolled, at first sign-in). It is not shown again.\n');
  }
  const stop = async () => {
    await server.close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
