import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Config, DatabaseConfig } from './config/config.ts';
import { assertLoopback, ConfigError } from './config/config.ts';
import { openDataKeys, type KeyProviderSettings } from './crypto/open-keys.ts';
import { signingKeySeal } from './crypto/data-key-seal.ts';
import type { DataKey, DataKeys } from './crypto/data-keys.ts';
import { KeyProviderError } from './crypto/key-provider.ts';
import { fileKeyOf, rekeyFile, storeFiles } from './store/sqlite/file-key.ts';
import { SqliteStore } from './store/sqlite/sqlite-store.ts';
import { PgStore } from './store/postgres/pg-store.ts';
import { PgAuthStore } from './store/postgres/auth-store.ts';
import { Database } from './store/postgres/database.ts';
import { SqliteAuthStore } from './store/sqlite/auth-db.ts';
import { ResourceCodec } from './store/resource-codec.ts';
import { buildApp, type App } from './http/app.ts';
import type { Store } from './store/store.ts';
import { openAuthServer } from './auth/auth-server.ts';
import { configureRolePermissions, loadRolePermissions } from './access/role-permissions.ts';
import { configureRelationships } from './access/relationship.ts';
import { configureAccessContext } from './access/context.ts';
import { configureMasks } from './access/minimum-necessary.ts';
import type { AuthStore } from './store/auth-store.ts';
import { Alerts } from './monitor/alerts.ts';
import { RequestRates } from './monitor/request-rates.ts';
import { PgRateShare } from './store/postgres/rate-share.ts';
import { AuditCheckpoints, FileCheckpointCopy, type CheckpointCopy } from './audit/checkpoints.ts';
import { S3CheckpointCopy, s3CredentialsFromEnv } from './audit/checkpoint-s3.ts';
import { ProvenanceSigner } from './provenance/provenance-signature.ts';
import { keysToBeCreated, startupEvents } from './audit/startup-events.ts';
import { authEventFacts, type AuthEvent } from './auth/auth-events.ts';
import { ReencryptionJob } from './jobs/reencryption.ts';
import { removeAbandonedSnapshots } from './store/sqlite/snapshot.ts';
import { loadOrCreateSigningKeys } from './auth/signing-keys.ts';
import type { JWK } from 'jose';
import { createSecureContext, type Server as TlsServer, type TlsOptions } from 'node:tls';
import { tlsServerOptions, watchCertificates, type TlsSettings } from './http/tls.ts';

export interface Server {
  app: App;
  store: Store;
  /** The authorization server's users, clients and protocol state (auth=smart). */
  authStore?: AuthStore;
  /** First start with auth=smart: the `admin` account's one-time password, for the console only. */
  setupSecret?: string;
  /** Security alerts raised (break-the-glass, ...). */
  alerts: Alerts;
  /** Keeps stored versions under the current keys (after a rotation); its progress. */
  reencryption: ReencryptionJob;
  /** The address actually bound (port 0 picks a free one). */
  url: string;
  baseUrl: string;
  close(): Promise<void>;
}

/** The data dir (made owner-only on first use) and its data keys, unwrapped by the configured key provider. */
export async function openKeys(dataDir: string, keyProvider: KeyProviderSettings = { kind: 'local' }): Promise<DataKeys> {
  // The store file, its WAL and the key files hold PHI or secrets: owner-only, whoever creates them.
  process.umask(0o077);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  try {
    return await openDataKeys(dataDir, keyProvider);
  } catch (err) {
    if (err instanceof KeyProviderError) throw new ConfigError(`Keys: ${err.message}`);
    throw err;
  }
}

/** What resources become at rest, and where: the settings of a config, or the defaults (embedded, identifiers protected, bodies not sealed). */
export type AtRestSettings = Partial<Pick<Config, 'encryptResourceBodies' | 'sensitiveIdentifiers' | 'database' | 'nodeName'>>;

/** Opens (or on first start, creates) the store: the data dir's encrypted file, or the configured PostgreSQL database. */
export async function openStore(dataDir: string, keys?: DataKeys, settings: AtRestSettings = {}): Promise<Store> {
  keys ??= await openKeys(dataDir);
  const { database } = settings;
  const codec = new ResourceCodec(keys, {
    encryptBodies: settings.encryptResourceBodies ?? database !== undefined,
    ...(settings.sensitiveIdentifiers ? { sensitiveIdentifiers: settings.sensitiveIdentifiers } : {}),
  });
  if (database) return openPgStore(database, codec, settings.nodeName);
  return new SqliteStore({ path: join(dataDir, 'bastion.db'), key: storeFileKey(dataDir, keys, 'bastion.db'), codec });
}

async function openPgStore(database: DatabaseConfig, codec: ResourceCodec, node: string | undefined): Promise<Store> {
  try {
    return await PgStore.open({ url: database.url, schema: database.schema, max: database.poolSize, codec, ...(node ? { node } : {}) });
  } catch (err) {
    // Unreachable, refused, wrong password: a configuration problem, said without the URL (it may hold the password).
    throw new ConfigError(`PostgreSQL: ${(err as Error).message}`);
  }
}

/**
 * The authorization server's store: the data dir's encrypted file, or (with a database) tables
 * beside the store's, each record sealed under the auth-record key and found by keyed MACs.
 */
export async function openAuthStore(config: Pick<Config, 'dataDir' | 'database'>, keys: DataKeys): Promise<AuthStore> {
  if (!config.database) return new SqliteAuthStore(join(config.dataDir, 'bastion-auth.db'), storeFileKey(config.dataDir, keys, 'bastion-auth.db'));
  const db = new Database({ url: config.database.url, schema: config.database.schema, max: Math.max(2, Math.ceil(config.database.poolSize / 4)) });
  try {
    return await PgAuthStore.open({
      db, ownsDb: true, key: keys.current('auth-record'), keyByVersion: (version) => authRecordKey(keys, version), lookupKey: keys.current('blind-index').key,
    });
  } catch (err) {
    await db.close().catch(() => undefined);
    throw new ConfigError(`PostgreSQL: ${(err as Error).message}`);
  }
}

/** A version of the auth-record key, or undefined when it is unknown or retired. */
function authRecordKey(keys: DataKeys, version: number): DataKey | undefined {
  try {
    return { id: `auth-record.${version}`, version, key: keys.key(`auth-record.${version}`) };
  } catch {
    return undefined;
  }
}

/** The key a store file is encrypted with now (the current store-file key once the server has re-keyed it). */
export function storeFileKey(dataDir: string, keys: DataKeys, file: (typeof storeFiles)[number]): Buffer {
  return fileKeyOf(join(dataDir, file), storeFileVersions(keys)).key;
}

/** Re-keys the store files still under an older store-file key (after `bastion keys rotate`); only with nothing else holding them open. */
export function rekeyStoreFiles(dataDir: string, keys: DataKeys): string[] {
  const versions = storeFileVersions(keys);
  return storeFiles.filter((file) => rekeyFile(join(dataDir, file), versions, keys.current('store-file')));
}

function storeFileVersions(keys: DataKeys) {
  return keys.liveIds('store-file').map((id) => ({ id, key: keys.key(id) }));
}

/** The key the audit chain's checkpoints are signed with (ES256), created with the data dir. */
export async function auditSigningKey(dataDir: string, which: 'private' | 'public' = 'private', dataKeys?: DataKeys): Promise<JWK> {
  const keys = await loadOrCreateSigningKeys(join(dataDir, 'audit-signing-keys.json'), signingKeySeal(dataKeys ?? await openKeys(dataDir)));
  const set = which === 'private' ? keys.privateJwks : keys.publicJwks;
  return set.keys.find((k) => k.alg === 'ES256')!;
}

/** The key the Provenance of writes is signed with (ES256), created with the data dir. */
export async function provenanceSigner(dataDir: string, dataKeys?: DataKeys): Promise<ProvenanceSigner> {
  const keys = await loadOrCreateSigningKeys(join(dataDir, 'provenance-signing-keys.json'), signingKeySeal(dataKeys ?? await openKeys(dataDir)));
  const es256 = (set: { keys: JWK[] }) => set.keys.find((k) => k.alg === 'ES256')!;
  return new ProvenanceSigner(es256(keys.privateJwks), es256(keys.publicJwks));
}

/** The outside places checkpoints go to: a file, an S3 bucket with Object Lock. */
function checkpointCopies(config: Config): CheckpointCopy[] {
  const copies: CheckpointCopy[] = [];
  if (config.auditCheckpointFile) copies.push(new FileCheckpointCopy(config.auditCheckpointFile));
  if (config.auditCheckpointS3) {
    const credentials = s3CredentialsFromEnv();
    if (!credentials) throw new ConfigError('auditCheckpointS3 needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment');
    copies.push(new S3CheckpointCopy(config.auditCheckpointS3, credentials));
  }
  return copies;
}

/** The listener's TLS options; a certificate file that cannot be read or parsed stops the start with its path named. */
async function tlsOptionsOrConfigError(config: Config, tls: TlsSettings): Promise<TlsOptions> {
  try {
    const options = await tlsServerOptions(config, tls);
    createSecureContext(options);
    return options;
  } catch (err) {
    throw new ConfigError(`TLS: ${(err as Error).message}`);
  }
}

/**
 * The key operations of a start: the data keys unwrapped (with the provider's KEK version), store
 * files re-keyed to a rotated store-file key, and the store-file versions that then open nothing.
 */
async function keyEvents(keys: DataKeys, rekeyed: string[]): Promise<AuthEvent[]> {
  const system = { who: 'system', address: 'server', success: true } as const;
  const events: AuthEvent[] = [{ ...system, kind: 'keys-unwrapped', detail: `provider=${keys.provider.kind} keys=${keys.ages().map((a) => a.id).join(',')}` }];
  if (rekeyed.length > 0) events.push({ ...system, kind: 'store-rekeyed', detail: `files=${rekeyed.join(',')} key=${keys.current('store-file').id}` });
  for (const id of await keys.retireSuperseded('store-file')) events.push({ ...system, kind: 'key-retired', detail: `key=${id} reason=store-files-rekeyed` });
  return events;
}

/** The rate limits' counts: this node's own, or with a database summed with the other nodes' once a second. */
async function requestRates(config: Config, keys: DataKeys): Promise<RequestRates> {
  const windowSeconds = config.rateLimits.windowSeconds;
  // Once a minute at most: the exchange runs every second, and a database down for an hour is one problem.
  let warned = 0;
  const onError = (err: unknown) => {
    if (Date.now() - warned < 60_000) return;
    warned = Date.now();
    process.emitWarning(`rate-limit counts not exchanged with the other nodes (each node counts alone meanwhile): ${(err as { code?: string })?.code ?? (err as Error)?.name ?? 'error'}`);
  };
  const onFull = () => process.emitWarning('rate limits: too many keys counted at once; new ones go uncounted until some go quiet');
  if (!config.database || !config.rateLimits.enabled) return new RequestRates({ windowSeconds, onError, onFull });
  try {
    const share = await PgRateShare.open({ url: config.database.url, schema: config.database.schema, node: config.nodeName, lookupKey: keys.current('blind-index').key });
    return new RequestRates({ windowSeconds, share, onError, onFull });
  } catch (err) {
    throw new ConfigError(`PostgreSQL: ${(err as Error).message}`);
  }
}

/** The composition root: config -> store -> HTTP app -> listening server. */
export async function startServer(config: Config, options: { logger?: boolean | Record<string, unknown> } = {}): Promise<Server> {
  if (config.auth.mode === 'off') assertLoopback(config.host);
  if (config.rolePermissionsFile) configureRolePermissions(loadRolePermissions(config.rolePermissionsFile));
  configureRelationships(config.relationships);
  const copies = checkpointCopies(config);
  try {
    configureAccessContext(config.accessContext);
    if (config.masks) configureMasks(config.masks);
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  const https = config.transport.mode === 'on' ? await tlsOptionsOrConfigError(config, config.transport) : undefined;
  const keys = await openKeys(config.dataDir, config.keyProvider);
  removeAbandonedSnapshots(config.dataDir);
  // The embedded store's files; PostgreSQL's tables have no file key (their bodies are sealed instead).
  const rekeyed = config.database ? [] : rekeyStoreFiles(config.dataDir, keys);
  const store = await openStore(config.dataDir, keys, config);
  const alerts = new Alerts({
    file: join(config.dataDir, 'alerts.ndjson'),
    ...(config.alertWebhook ? { webhook: config.alertWebhook } : {}),
    // Where, never what: an alert's content stays out of the log.
    onError: (where, err) => process.emitWarning(`security alert not delivered to the ${where}: ${(err as Error)?.name ?? 'error'}`),
  });
  let auth;
  try {
    auth = await openAuthServer(config, { openStore: () => openAuthStore(config, keys), cookie: keys.current('cookie').key, signingKeys: signingKeySeal(keys) }, alerts);
  } catch (err) {
    await store.close();
    throw err;
  }
  const pseudonymKey = keys.current('pseudonym').key;
  const newKeys = keysToBeCreated(config.dataDir);
  const signer = config.provenanceSignatures ? await provenanceSigner(config.dataDir, keys) : undefined;
  let rates: RequestRates;
  try {
    rates = await requestRates(config, keys);
  } catch (err) {
    await auth.close();
    await store.close();
    throw err;
  }
  const app = buildApp({
    config, store, ...(https ? { https } : {}), authenticator: auth.authenticator, logger: options.logger ?? false, pseudonymKey: Buffer.from(pseudonymKey), ...(signer ? { provenanceSigner: signer } : {}),
    rates, alerts,
  });
  const checkpoints = new AuditCheckpoints(store, await auditSigningKey(config.dataDir, 'private', keys), copies,
    (err) => process.emitWarning(`audit checkpoint not copied: ${(err as Error)?.message ?? 'error'}`));
  checkpoints.start(config.auditCheckpointSeconds, (err) => process.emitWarning(`audit checkpoint failed: ${(err as Error)?.name ?? 'error'}`));
  auth.register(app.fastify, store, app.audit);
  for (const event of startupEvents(config, newKeys)) app.audit.record(authEventFacts(event));
  for (const event of await keyEvents(keys, rekeyed)) app.audit.record(authEventFacts(event));
  const reencryption = new ReencryptionJob({
    store, keys, dataDir: config.dataDir, sealed: config.encryptResourceBodies, sensitiveIdentifiers: config.sensitiveIdentifiers,
    record: (event) => app.audit.record(authEventFacts(event)), log: (message) => app.fastify.log.info(message),
  });
  await reencryption.prepare();
  reencryption.start();
  let url: string;
  try {
    url = await app.fastify.listen({ host: config.host, port: config.port });
  } catch (err) {
    await rates.close();
    await auth.close();
    await store.close();
    throw err;
  }
  const stopWatching = config.transport.mode === 'on'
    ? watchCertificates(app.fastify.server as unknown as TlsServer, config, config.transport, (err) => {
      if (err) process.emitWarning(`TLS certificate change not taken: ${err.message}`);
    })
    : () => undefined;
  const port = Number(new URL(url).port);
  const baseUrl = config.port === 0 ? config.baseUrl.replace(/:0\/fhir$/, `:${port}/fhir`) : config.baseUrl;
  if (baseUrl !== config.baseUrl) {
    (config as { baseUrl: string }).baseUrl = baseUrl;
    config.auth.issuer = config.auth.issuer.replace(/:0(?=\/|$)/, `:${port}`);
  }
  return {
    app,
    store,
    authStore: auth.store,
    ...(auth.setupSecret ? { setupSecret: auth.setupSecret } : {}),
    url,
    baseUrl,
    alerts,
    reencryption,
    async close() {
      stopWatching();
      await reencryption.stop();
      await app.fastify.close();
      // The trail's last records are flushed by now: the head they end in is signed before closing.
      await checkpoints.stop();
      await alerts.flush();
      await auth.close();
      await store.close();
    },
  };
}

