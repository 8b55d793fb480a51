import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type Provider from 'oidc-provider';
import type { Config } from '../config/config.ts';
import { DuplicateError, type AuthStore, type UserRecord } from '../store/auth-store.ts';
import { bearerAuthenticator, localAuthenticator, type Authenticator } from './authenticate.ts';
import { TokenVerifier, externalIssuer, ownIssuer } from './access-token.ts';
import { loadOrCreateSigningKeys, type KeyFileSeal } from './signing-keys.ts';
import { Revocations } from './revocations.ts';
import { createProvider } from './server/provider.ts';
import { useSmartMiddleware } from './server/smart-middleware.ts';
import { mountProvider } from './server/mount.ts';
import { smartConfiguration } from './smart-configuration.ts';
import { registerInteractions } from './server/interactions.ts';
import { registerAdminApi } from './server/admin-api.ts';
import { addUser } from './users.ts';
import { BreakGlassRegistry } from './break-glass-registry.ts';
import { randomBytes } from 'node:crypto';
import { authEventFacts, takeHandedOver, userCreatedDetail, type AuthEvent } from './auth-events.ts';
import { takeExpiredSessions } from './server/session-watch.ts';
import type { StoreReader } from '../store/store.ts';
import type { Alerts } from '../monitor/alerts.ts';
import type { AuditLog } from '../audit/audit-log.ts';

/** The authorization side of a server: who may call the FHIR API, and (auth=smart) the SMART authorization server. */
export interface AuthServer {
  authenticator: Authenticator;
  store?: AuthStore;
  /** Set on the first start: the admin account's one-time password, to show the operator once (never logged). */
  setupSecret?: string;
  /** Registers the authorization server's routes (before the server listens). */
  register(fastify: FastifyInstance, fhir: StoreReader, audit: AuditLog): void;
  close(): Promise<void>;
}

export async function openAuthServer(
  config: Config, secrets: { openStore: () => Promise<AuthStore>; cookie: Buffer; signingKeys?: KeyFileSeal }, alerts: Alerts,
): Promise<AuthServer> {
  if (config.auth.mode === 'off') return { authenticator: localAuthenticator, register: () => {}, close: async () => {} };
  const store = await secrets.openStore();
  try {
    const revocations = new Revocations(store, config.auth.accessTokenTtl);
    await revocations.load();
    // Until the audit trail is at hand (register), events wait here with their time.
    const early: { event: AuthEvent; at: string }[] = [];
    let emit: (event: AuthEvent) => void = (event) => early.push({ event, at: new Date().toISOString() });
    const keysFile = join(config.dataDir, 'signing-keys.json');
    const newKeys = !existsSync(keysFile);
    const keys = await loadOrCreateSigningKeys(keysFile, secrets.signingKeys);
    if (newKeys) emit({ kind: 'key-created', who: 'system', address: 'server', success: true, detail: `authorization server signing keys kid=${keys.publicJwks.keys.map((k) => k.kid).join(',')}` });
    const verifier = new TokenVerifier(
      [ownIssuer(config, keys.publicJwks), ...config.auth.externalIssuers.map((e) => externalIssuer(e, config))],
      (jti, grantId) => revocations.isRevoked(jti, grantId),
    );
    const cookieSecret = secrets.cookie;
    const setup = await firstAdmin(store);
    if (setup) emit({ kind: 'user-created', who: 'system', address: 'server', success: true, detail: `${userCreatedDetail(setup.user, true)} first start` });
    const setupSecret = setup?.secret;
    let provider: Provider | undefined;
    const providerNow = () => {
      if (!provider) {
        provider = createProvider({ config, store, signingJwks: keys.privateJwks, cookieSecret, revocations, emit: (e) => emit(e) });
        // Behind a TLS-terminating proxy the request arrives as HTTP: X-Forwarded-Proto says it was HTTPS (secure cookies).
        provider.proxy = config.transport.mode === 'proxy';
        useSmartMiddleware(provider, store, verifier, revocations, (e) => emit(e));
      }
      return { provider, issuer: config.auth.issuer };
    };
    const emergency = new BreakGlassRegistry(store, config.auth.breakGlassMinutes * 60);
    await emergency.load();
    // Several nodes on one database: a token revoked, or emergency access granted, on another node
    // holds here too, from the moment its notification arrives (both lists only ever grow).
    const unwatch = await store.watch?.([...Revocations.models, BreakGlassRegistry.model], (model) => {
      void (model === BreakGlassRegistry.model ? emergency.load() : revocations.load()).catch(() => undefined);
    });
    const authenticator = bearerAuthenticator(verifier, config.baseUrl, {
      patientsOf: (user) => emergency.patientsOf(user),
      async grant(principal, request) {
        const until = await emergency.grant(principal.id, request.patient, request.reason);
        // High severity in the audit (with the reason), and an alert (without it) for whoever watches.
        emit({ kind: 'break-glass', who: principal.id, address: principal.address, client: principal.clientId, success: true, reasons: ['break-the-glass'],
          detail: `severity=high until=${new Date(until).toISOString()} patient=Patient/${request.patient} reason=${request.reason}` });
        alerts.raise({ kind: 'break-glass', severity: 'high', at: new Date().toISOString(), who: principal.id, about: [`Patient/${request.patient}`], detail: `emergency access until ${new Date(until).toISOString()}` });
      },
      refused(principal, request, refusal) {
        emit({ kind: 'break-glass-refused', who: principal.id, address: principal.address, client: principal.clientId, success: false,
          detail: `severity=high refused=${refusal} patient=Patient/${request.patient.slice(0, 64)} reason=${request.reason}` });
      },
    });
    let housekeeping: NodeJS.Timeout | undefined;
    let housekeepingRun: Promise<void> = Promise.resolve();
    return {
      authenticator,
      store,
      ...(setupSecret ? { setupSecret } : {}),
      register(fastify, fhir, audit) {
        const prefix = new URL(config.auth.issuer).pathname.replace(/\/+$/, '');
        mountProvider(fastify, prefix, ['/interaction', '/launch', '/admin'], providerNow);
        emit = (event) => audit.record(authEventFacts(event));
        for (const { event, at } of early.splice(0)) audit.record(authEventFacts(event, at));
        // Records the console handed over, and sessions that expired; within seconds (sooner with short sessions).
        const housekeep = () => {
          housekeepingRun = housekeepingRun.then(() => housekeepOnce(store, audit, config.auth.sessionMax, emit)).catch(() => undefined);
        };
        housekeep();
        housekeeping = setInterval(housekeep, 1000 * Math.max(1, Math.min(5, Math.floor(config.auth.sessionIdle / 2))));
        housekeeping.unref();
        fastify.addHook('onClose', async () => {
          clearInterval(housekeeping);
          await housekeepingRun;
        });
        registerInteractions(fastify, prefix, {
          config, store, fhir, cookieSecret, provider: () => providerNow().provider,
          mfaRoles: config.auth.mfaRoles,
          emit,
        });
        registerAdminApi(fastify, prefix, { issuer: () => config.auth.issuer, store, fhir, authenticator, emit });
        fastify.get('/fhir/.well-known/smart-configuration', async (_request, reply) => {
          reply.header('cache-control', 'no-store');
          // Discovery is fetched by browser apps from their own origin.
          reply.header('access-control-allow-origin', '*');
          return smartConfiguration(config);
        });
      },
      close: async () => {
        clearInterval(housekeeping);
        await housekeepingRun;
        await unwatch?.();
        await store.close();
      },
    };
  } catch (err) {
    await store.close();
    throw err;
  }
}

/** With no users yet, an `admin` with a generated password that must be changed at first sign-in (TOTP enrolment follows). */
async function firstAdmin(store: AuthStore): Promise<{ secret: string; user: UserRecord } | undefined> {
  if ((await store.countUsers()) > 0) return undefined;
  const secret = randomBytes(15).toString('base64url');
  try {
    const user = await addUser(store, { username: 'admin', role: 'admin', password: secret, mustChangePassword: true });
    return { secret, user };
  } catch (err) {
    // Another node starting on the same database made it first.
    if (err instanceof DuplicateError) return undefined;
    throw err;
  }
}

/**
 * The server's own auth housekeeping: appends the records the console handed over while the
 * server ran (removed once they are in the trail), and records sessions that expired.
 */
async function housekeepOnce(store: AuthStore, audit: AuditLog, sessionMax: number, emit: (event: AuthEvent) => void): Promise<void> {
  const handed = await takeHandedOver(store);
  if (handed.facts.length > 0) {
    for (const facts of handed.facts) audit.record(facts);
    await audit.flush();
    if (!audit.unwritable) await handed.done();
  }
  for (const session of await takeExpiredSessions(store)) {
    const absolute = session.loginTs !== undefined && session.expiresAt >= session.loginTs + sessionMax;
    emit({ kind: 'session-expired', who: session.accountId, address: 'server', success: true,
      detail: `${absolute ? 'absolute lifetime' : 'idle timeout'} expired=${new Date(session.expiresAt * 1000).toISOString()}` });
  }
}

