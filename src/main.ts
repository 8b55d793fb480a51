import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from './config/config.ts';
import { assertLoopback } from './config/config.ts';
import { loadOrCreateStoreKey } from './crypto/store-key.ts';
import { SqliteStore } from './store/sqlite/sqlite-store.ts';
import { buildApp, type App } from './http/app.ts';
import type { Store } from './store/store.ts';
import { bearerAuthenticator, localAuthenticator, type Authenticator } from './auth/authenticate.ts';
import { TokenVerifier, externalIssuer, ownIssuer } from './auth/access-token.ts';
import { loadOrCreateSigningKeys } from './auth/signing-keys.ts';

export interface Server {
  app: App;
  store: Store;
  /** The address actually bound (port 0 picks a free one). */
  url: string;
  baseUrl: string;
  close(): Promise<void>;
}

/** Opens (or on first start, creates) the data dir and its encrypted store. */
export function openStore(dataDir: string): Store {
  // The store file, its WAL and the key file hold PHI or secrets: owner-only, whoever creates them.
  process.umask(0o077);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const key = loadOrCreateStoreKey(join(dataDir, 'store.key'));
  return new SqliteStore({ path: join(dataDir, 'bastion.db'), key });
}

/** The composition root: config -> store -> HTTP app -> listening server. */
export async function startServer(config: Config, options: { logger?: boolean | Record<string, unknown> } = {}): Promise<Server> {
  if (config.auth.mode === 'off') assertLoopback(config.host);
  const store = openStore(config.dataDir);
  const authenticator = await authenticatorFor(config);
  const app = buildApp({ config, store, authenticator, logger: options.logger ?? false });
  let url: string;
  try {
    url = await app.fastify.listen({ host: config.host, port: config.port });
  } catch (err) {
    await store.close();
    throw err;
  }
  const port = Number(new URL(url).port);
  const baseUrl = config.port === 0 ? config.baseUrl.replace(/:0\/fhir$/, `:${port}/fhir`) : config.baseUrl;
  if (baseUrl !== config.baseUrl) {
    (config as { baseUrl: string }).baseUrl = baseUrl;
    config.auth.issuer = config.auth.issuer.replace(/:0(?=\/|$)/, `:${port}`);
  }
  return {
    app,
    store,
    url,
    baseUrl,
    async close() {
      await app.fastify.close();
      await store.close();
    },
  };
}

/** auth=smart: tokens of this server's authorization server and of the configured external issuers. */
async function authenticatorFor(config: Config): Promise<Authenticator> {
  if (config.auth.mode === 'off') return localAuthenticator;
  const keys = await loadOrCreateSigningKeys(join(config.dataDir, 'signing-keys.json'));
  const issuers = [
    ownIssuer(config, keys.publicJwks),
    ...config.auth.externalIssuers.map((e) => externalIssuer(e, config)),
  ];
  return bearerAuthenticator(new TokenVerifier(issuers), config.baseUrl);
}
