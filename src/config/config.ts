import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { hostname } from 'node:os';
import type { ExternalIssuerConfig } from '../auth/access-token.ts';
import { roles, type Role } from '../store/auth-store.ts';
import { relationshipKinds, type RelationshipKind } from '../access/relationship.ts';
import type { AccessContextConfig } from '../access/context.ts';
import { defaultRateLimits, type RateLimitSettings } from '../access/rate-limits.ts';
import type { S3LockSettings } from '../audit/checkpoint-s3.ts';
import type { TlsSettings } from '../http/tls.ts';
import type { KeyProviderSettings } from '../crypto/open-keys.ts';
import { defaultSensitiveIdentifiers, SensitiveIdentifiers } from '../store/sensitive-identifiers.ts';

/** Every setting Bastion reads, validated once at start. Precedence: flag > environment > file > default. */
export interface Config {
  host: string;
  port: number;
  dataDir: string;
  /** Public FHIR base URL; derived from host and port when not set (e.g. behind a proxy). */
  baseUrl: string;
  /** Largest request body accepted, in bytes. */
  maxBodyBytes: number;
  search: { defaultCount: number; maxCount: number };
  history: { defaultCount: number; maxCount: number };
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** A deployment's own role -> permissions table (JSON, as src/access/role-permissions.default.json); unset: the default. */
  rolePermissionsFile?: string;
  /** Time windows and network rules (src/access/context.ts). */
  accessContext: AccessContextConfig;
  /** Per-role element masks (minimum necessary); undefined: the built-in defaults. */
  masks?: Record<string, string[]>;
  /** Requests per sliding window, per user by role, per app, per address without a token (src/access/rate-limits.ts). */
  rateLimits: RateLimitSettings;
  /** The care relationships through which clinicians reach patients' records. */
  relationships: RelationshipKind[];
  /** Where security alerts are POSTed besides the data dir's alerts.ndjson (https, or http on loopback). */
  alertWebhook?: string;
  /** Refuse FHIR interactions (503) while the audit trail cannot be written. */
  auditFailClosed: boolean;
  /** Years audit records are kept before `bastion audit purge` may remove them (at least 6). */
  auditRetentionYears: number;
  /** Sign the Provenance recorded with every write (ES256, the data dir's provenance key). */
  provenanceSignatures: boolean;
  /** Seconds between signed checkpoints of the audit chain's head. */
  auditCheckpointSeconds: number;
  /** A file outside the data dir (a write-once mount) where each checkpoint is appended too. */
  auditCheckpointFile?: string;
  /** An S3 bucket with Object Lock where each checkpoint is kept too, locked for its retention. */
  auditCheckpointS3?: S3LockSettings;
  /** A continuous NDJSON copy of the trail (AuditEvents) for a SIEM: a file appended to, or `-` for stdout. */
  auditStream?: string;
  /** A syslog collector the trail is sent to (RFC 5424 over TLS); the files are PEM. */
  auditSyslog?: { host: string; port: number; caFile?: string; certFile?: string; keyFile?: string };
  /** How clients reach the server: HTTPS (default), plain HTTP behind a TLS-terminating proxy, or plain HTTP on loopback. */
  transport: TransportConfig;
  /** Where the key-encryption key lives; the data keys are wrapped by it. */
  keyProvider: KeyProviderSettings;
  /**
   * PostgreSQL instead of the embedded store (several nodes may share it); the data dir then keeps
   * only keys and local files.
   */
  database?: DatabaseConfig;
  /** This node's name (audit records, change notifications); default: host name and process id. */
  nodeName: string;
  /** Seal every resource version with AES-256-GCM (the `resource-body` key); default on with PostgreSQL, whose tables no file encryption covers. */
  encryptResourceBodies: boolean;
  /** FHIRPath expressions selecting the Identifier elements kept encrypted, searchable through a blind index. */
  sensitiveIdentifiers: string[];
  auth: AuthConfig;
}

export interface DatabaseConfig {
  /** `postgres://user@host:port/db?sslmode=verify-full`; the password from the environment (in the URL there, or PGPASSWORD). */
  url: string;
  /** The schema Bastion's tables live in. */
  schema: string;
  /** Connections per node at most. */
  poolSize: number;
}

export type TransportConfig =
  | ({ mode: 'on' } & TlsSettings)
  /** Plain HTTP from a TLS-terminating proxy at one of these addresses (they alone may set X-Forwarded-For). */
  | { mode: 'proxy'; trustProxy: string[] }
  /** Plain HTTP for development and tests: loopback only. */
  | { mode: 'off' };

/** Whether clients may present a certificate to this server itself (its own TLS, client certificates not off): RFC 8705 client authentication and bound tokens. */
export function acceptsClientCertificates(config: Pick<Config, 'transport'>): boolean {
  return config.transport.mode === 'on' && config.transport.clientCertificates !== 'off';
}

export interface AuthConfig {
  /**
   * smart: every FHIR request needs a token (from this server's SMART authorization server or a
   * trusted external issuer). off: no tokens, every caller is the local principal; only allowed
   * on a loopback address (development, tests).
   */
  mode: 'smart' | 'off';
  /** The authorization server's issuer URL (default: the server's origin + /auth). */
  issuer: string;
  accessTokenTtl: number;
  refreshTokenTtl: number;
  /** Seconds of inactivity after which a sign-in session ends (15 minutes). */
  sessionIdle: number;
  /** Seconds after sign-in after which a session ends however active (12 hours). */
  sessionMax: number;
  /** Roles that must sign in with a second factor (TOTP). */
  mfaRoles: Role[];
  /** How long break-the-glass access to a patient lasts, minutes. */
  breakGlassMinutes: number;
  /** Trusted external issuers, from the config file only. */
  externalIssuers: ExternalIssuerConfig[];
}

export type ConfigInput = Partial<{
  host: string;
  port: number | string;
  dataDir: string;
  baseUrl: string;
  maxBodyBytes: number | string;
  defaultCount: number | string;
  maxCount: number | string;
  logLevel: string;
  rolePermissionsFile: string;
  relationships: string | string[];
  accessContext: string | AccessContextConfig;
  masks: string | Record<string, string[]>;
  rateLimits: string | Record<string, unknown>;
  alertWebhook: string;
  auditCheckpointSeconds: number | string;
  auditCheckpointFile: string;
  auditCheckpointS3: string | Record<string, unknown>;
  auditFailClosed: boolean | string;
  provenanceSignatures: boolean | string;
  auditRetentionYears: number | string;
  auditStream: string;
  auditSyslog: string;
  auditSyslogCa: string;
  auditSyslogCert: string;
  auditSyslogKey: string;
  tls: string;
  tlsMinVersion: string;
  tlsCert: string;
  tlsKey: string;
  tlsClientCa: string;
  tlsClientCertificates: string;
  trustProxy: string | string[];
  keyProvider: string | Record<string, unknown>;
  encryptResourceBodies: boolean | string;
  database: string;
  databaseSchema: string;
  databasePoolSize: number | string;
  nodeName: string;
  sensitiveIdentifiers: string | string[];
  auth: string;
  issuer: string;
  accessTokenTtl: number | string;
  refreshTokenTtl: number | string;
  sessionIdle: number | string;
  sessionMax: number | string;
  mfaRoles: string | string[];
  breakGlassMinutes: number | string;
  externalIssuers: ExternalIssuerConfig[];
}>;

/** Environment variable for each setting; the README's reference table is generated from the same list. */
export const environmentVariables: Record<keyof ConfigInput, string> = {
  host: 'BASTION_HOST',
  port: 'BASTION_PORT',
  dataDir: 'BASTION_DATA_DIR',
  baseUrl: 'BASTION_BASE_URL',
  maxBodyBytes: 'BASTION_MAX_BODY_BYTES',
  defaultCount: 'BASTION_SEARCH_DEFAULT_COUNT',
  maxCount: 'BASTION_SEARCH_MAX_COUNT',
  logLevel: 'BASTION_LOG_LEVEL',
  rolePermissionsFile: 'BASTION_ROLE_PERMISSIONS',
  relationships: 'BASTION_RELATIONSHIPS',
  accessContext: 'BASTION_ACCESS_CONTEXT',
  masks: 'BASTION_MASKS',
  rateLimits: 'BASTION_RATE_LIMITS',
  alertWebhook: 'BASTION_ALERT_WEBHOOK',
  auditCheckpointSeconds: 'BASTION_AUDIT_CHECKPOINT_SECONDS',
  auditCheckpointFile: 'BASTION_AUDIT_CHECKPOINT_FILE',
  auditCheckpointS3: 'BASTION_AUDIT_CHECKPOINT_S3',
  auditFailClosed: 'BASTION_AUDIT_FAIL_CLOSED',
  provenanceSignatures: 'BASTION_PROVENANCE_SIGNATURES',
  auditRetentionYears: 'BASTION_AUDIT_RETENTION_YEARS',
  auditStream: 'BASTION_AUDIT_STREAM',
  auditSyslog: 'BASTION_AUDIT_SYSLOG',
  auditSyslogCa: 'BASTION_AUDIT_SYSLOG_CA',
  auditSyslogCert: 'BASTION_AUDIT_SYSLOG_CERT',
  auditSyslogKey: 'BASTION_AUDIT_SYSLOG_KEY',
  tls: 'BASTION_TLS',
  tlsMinVersion: 'BASTION_TLS_MIN_VERSION',
  tlsCert: 'BASTION_TLS_CERT',
  tlsKey: 'BASTION_TLS_KEY',
  tlsClientCa: 'BASTION_TLS_CLIENT_CA',
  tlsClientCertificates: 'BASTION_TLS_CLIENT_CERTIFICATES',
  trustProxy: 'BASTION_TRUST_PROXY',
  keyProvider: 'BASTION_KEY_PROVIDER',
  encryptResourceBodies: 'BASTION_ENCRYPT_RESOURCE_BODIES',
  database: 'BASTION_DATABASE_URL',
  databaseSchema: 'BASTION_DATABASE_SCHEMA',
  databasePoolSize: 'BASTION_DATABASE_POOL_SIZE',
  nodeName: 'BASTION_NODE_NAME',
  sensitiveIdentifiers: 'BASTION_SENSITIVE_IDENTIFIERS',
  auth: 'BASTION_AUTH',
  issuer: 'BASTION_AUTH_ISSUER',
  accessTokenTtl: 'BASTION_ACCESS_TOKEN_TTL',
  refreshTokenTtl: 'BASTION_REFRESH_TOKEN_TTL',
  sessionIdle: 'BASTION_SESSION_IDLE',
  sessionMax: 'BASTION_SESSION_MAX',
  mfaRoles: 'BASTION_MFA_ROLES',
  breakGlassMinutes: 'BASTION_BREAK_GLASS_MINUTES',
  externalIssuers: 'BASTION_EXTERNAL_ISSUERS',
};

const defaults = {
  host: '127.0.0.1',
  port: 8080,
  dataDir: './data',
  maxBodyBytes: 32 * 1024 * 1024,
  defaultCount: 20,
  maxCount: 1000,
  logLevel: 'info',
  auth: 'smart',
  accessTokenTtl: 15 * 60,
  refreshTokenTtl: 30 * 24 * 3600,
  sessionIdle: 15 * 60,
  sessionMax: 12 * 3600,
};

export class ConfigError extends Error {}

export function loadConfig(flags: ConfigInput, env: NodeJS.ProcessEnv = process.env, configFile?: string): Config {
  const file = configFile ?? env.BASTION_CONFIG;
  const fromFile = file ? readConfigFile(file) : {};
  if (fromFile.database && passwordOf(fromFile.database)) {
    throw new ConfigError('database: the password comes from the environment (BASTION_DATABASE_URL or PGPASSWORD), not the configuration file');
  }
  const fromEnv: ConfigInput = {};
  for (const [key, name] of Object.entries(environmentVariables) as [keyof ConfigInput, string][]) {
    if (env[name] !== undefined && env[name] !== '') (fromEnv as Record<string, string>)[key] = env[name]!;
  }
  const merged: ConfigInput = { ...fromFile, ...fromEnv, ...dropUndefined(flags) };
  return validate(merged);
}

function readConfigFile(path: string): ConfigInput {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`Cannot read config file ${path}: ${(err as Error).message}`);
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
    const known = new Set(Object.keys(environmentVariables));
    for (const key of Object.keys(parsed)) if (!known.has(key)) throw new Error(`unknown setting "${key}"`);
    return parsed as ConfigInput;
  } catch (err) {
    throw new ConfigError(`Config file ${path} is invalid: ${(err as Error).message}`);
  }
}

function dropUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function validate(input: ConfigInput): Config {
  const host = input.host ?? defaults.host;
  const port = integer('port', input.port ?? defaults.port, 0, 65535);
  const maxBodyBytes = integer('maxBodyBytes', input.maxBodyBytes ?? defaults.maxBodyBytes, 1024, 1024 ** 3);
  const maxCount = integer('maxCount', input.maxCount ?? defaults.maxCount, 1, 10000);
  const defaultCount = integer('defaultCount', input.defaultCount ?? defaults.defaultCount, 1, maxCount);
  const logLevel = input.logLevel ?? defaults.logLevel;
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    throw new ConfigError(`logLevel must be one of fatal, error, warn, info, debug, trace, silent (got "${logLevel}")`);
  }
  const transport = transportOf(input, host);
  if (transport.mode === 'proxy' && !/^https:/.test(input.baseUrl ?? '')) throw new ConfigError('tls=proxy needs baseUrl: the https URL clients reach the proxy at');
  const scheme = transport.mode === 'on' ? 'https' : 'http';
  const baseUrl = (input.baseUrl ?? `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}/fhir`).replace(/\/+$/, '');
  if (!/^https?:\/\/[^/]+(\/.*)?$/.test(baseUrl)) throw new ConfigError(`baseUrl must be an http(s) URL (got "${baseUrl}")`);
  const auth = input.auth ?? defaults.auth;
  if (auth !== 'smart' && auth !== 'off') throw new ConfigError(`auth must be smart or off (got "${auth}")`);
  const issuer = (input.issuer ?? `${new URL(baseUrl).origin}/auth`).replace(/\/+$/, '');
  if (!/^https?:\/\/[^/]+(\/.*)?$/.test(issuer)) throw new ConfigError(`issuer must be an http(s) URL (got "${issuer}")`);
  const issuerPath = new URL(issuer).pathname.replace(/\/+$/, '');
  const fhirPath = new URL(baseUrl).pathname.replace(/\/+$/, '');
  if (issuerPath === '' || issuerPath === fhirPath || fhirPath.startsWith(`${issuerPath}/`) || issuerPath.startsWith(`${fhirPath}/`)) {
    throw new ConfigError(`issuer must have a path of its own beside the FHIR base (e.g. /auth), not "${issuerPath || '/'}"`);
  }
  return {
    host,
    port,
    dataDir: resolve(input.dataDir ?? defaults.dataDir),
    baseUrl,
    maxBodyBytes,
    search: { defaultCount, maxCount },
    history: { defaultCount, maxCount },
    logLevel: logLevel as Config['logLevel'],
    ...(input.rolePermissionsFile ? { rolePermissionsFile: resolve(input.rolePermissionsFile) } : {}),
    relationships: relationshipList(input.relationships ?? [...relationshipKinds]),
    accessContext: accessContextOf(input.accessContext),
    ...(input.masks !== undefined ? { masks: jsonObject('masks', input.masks) as Record<string, string[]> } : {}),
    rateLimits: rateLimitsOf(input.rateLimits),
    ...(input.alertWebhook ? { alertWebhook: webhookUrl(input.alertWebhook) } : {}),
    auditCheckpointSeconds: integer('auditCheckpointSeconds', input.auditCheckpointSeconds ?? 300, 1, 24 * 3600),
    auditFailClosed: booleanSetting('auditFailClosed', input.auditFailClosed ?? true),
    provenanceSignatures: booleanSetting('provenanceSignatures', input.provenanceSignatures ?? true),
    // HIPAA keeps its documentation six years (§164.316(b)(2)): a shorter retention is refused.
    auditRetentionYears: integer('auditRetentionYears', input.auditRetentionYears ?? 6, 6, 100),
    ...(input.auditCheckpointFile ? { auditCheckpointFile: resolve(input.auditCheckpointFile) } : {}),
    ...(input.auditCheckpointS3 ? { auditCheckpointS3: s3LockSettings(input.auditCheckpointS3, Number(input.auditRetentionYears ?? 6)) } : {}),
    ...(input.auditStream ? { auditStream: input.auditStream === '-' ? '-' : resolve(input.auditStream) } : {}),
    ...auditSyslogOf(input),
    transport,
    keyProvider: keyProviderOf(input.keyProvider),
    ...(input.database ? { database: databaseOf(input) } : {}),
    nodeName: nodeNameOf(input.nodeName),
    encryptResourceBodies: booleanSetting('encryptResourceBodies', input.encryptResourceBodies ?? input.database !== undefined),
    sensitiveIdentifiers: sensitiveIdentifiersOf(input.sensitiveIdentifiers),
    auth: {
      mode: auth,
      issuer,
      accessTokenTtl: integer('accessTokenTtl', input.accessTokenTtl ?? defaults.accessTokenTtl, 60, 24 * 3600),
      refreshTokenTtl: integer('refreshTokenTtl', input.refreshTokenTtl ?? defaults.refreshTokenTtl, 60, 365 * 24 * 3600),
      sessionIdle: integer('sessionIdle', input.sessionIdle ?? defaults.sessionIdle, 1, 24 * 3600),
      sessionMax: integer('sessionMax', input.sessionMax ?? defaults.sessionMax, 60, 30 * 24 * 3600),
      breakGlassMinutes: integer('breakGlassMinutes', input.breakGlassMinutes ?? 60, 1, 24 * 60),
      mfaRoles: roleList('mfaRoles', input.mfaRoles ?? ['nurse', 'physician', 'lab-technician', 'billing', 'researcher', 'admin', 'auditor']),
      externalIssuers: externalIssuers(input.externalIssuers),
    },
  };
}

function accessContextOf(value: string | AccessContextConfig | undefined): AccessContextConfig {
  return value === undefined ? {} : (jsonObject('accessContext', value) as AccessContextConfig);
}

/**
 * `{"enabled": true, "windowSeconds": 60, "roles": {"patient": 600}, "clients": {"app": 5000}, "anonymous": 300}`:
 * each part optional, roles given replace those roles' defaults.
 */
function rateLimitsOf(value: string | Record<string, unknown> | undefined): RateLimitSettings {
  if (value === undefined) return { ...defaultRateLimits, roles: { ...defaultRateLimits.roles }, clients: {} };
  const o = jsonObject('rateLimits', value) as Record<string, unknown>;
  const known = ['enabled', 'windowSeconds', 'roles', 'clients', 'anonymous'];
  for (const key of Object.keys(o)) if (!known.includes(key)) throw new ConfigError(`rateLimits: unknown setting "${key}" (${known.join(', ')})`);
  const perWindow = (name: string, v: unknown) => integer(name, v as number | string, 1, 1_000_000_000);
  const rolesGiven = o.roles === undefined ? {} : jsonObject('rateLimits.roles', o.roles) as Record<string, unknown>;
  const roleLimits = { ...defaultRateLimits.roles };
  for (const [role, limit] of Object.entries(rolesGiven)) {
    if (!roles.includes(role as Role)) throw new ConfigError(`rateLimits.roles: "${role}" is not a role (${roles.join(', ')})`);
    roleLimits[role as Role] = perWindow(`rateLimits.roles.${role}`, limit);
  }
  const clientsGiven = o.clients === undefined ? {} : jsonObject('rateLimits.clients', o.clients) as Record<string, unknown>;
  // Built as own properties: a client named "__proto__" is a client, not the object's prototype.
  const clients = Object.fromEntries(Object.entries(clientsGiven).map(([client, limit]) => [client, perWindow(`rateLimits.clients.${client}`, limit)]));
  return {
    enabled: o.enabled === undefined ? true : booleanSetting('rateLimits.enabled', o.enabled as boolean | string),
    // Nodes exchange counts once a second: a window of a few seconds would be mostly unshared.
    windowSeconds: o.windowSeconds === undefined ? defaultRateLimits.windowSeconds : integer('rateLimits.windowSeconds', o.windowSeconds as number | string, 10, 3600),
    roles: roleLimits,
    clients,
    anonymous: o.anonymous === undefined ? defaultRateLimits.anonymous : perWindow('rateLimits.anonymous', o.anonymous),
  };
}

/** A setting that is a JSON object, given as one (config file) or as its text (environment). */
function jsonObject(name: string, value: unknown): object {
  let parsed: unknown = value;
  if (typeof value === 'string') {
    try {
      parsed = JSON.parse(value);
    } catch {
      throw new ConfigError(`${name} must be a JSON object`);
    }
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new ConfigError(`${name} must be a JSON object`);
  return parsed;
}

function relationshipList(value: string | string[]): RelationshipKind[] {
  const list = (typeof value === 'string' ? value.split(',') : value).map((r) => r.trim()).filter(Boolean);
  for (const r of list) if (!relationshipKinds.includes(r as RelationshipKind)) throw new ConfigError(`relationships: "${r}" is not one of ${relationshipKinds.join(', ')}`);
  return list as RelationshipKind[];
}

function roleList(name: string, value: string | string[]): Role[] {
  const list = (typeof value === 'string' ? value.split(',') : value).map((r) => r.trim()).filter(Boolean);
  for (const r of list) if (!roles.includes(r as Role)) throw new ConfigError(`${name}: "${r}" is not a role (${roles.join(', ')})`);
  return list as Role[];
}

function booleanSetting(name: string, value: boolean | string): boolean {
  if (typeof value === 'boolean') return value;
  if (/^(true|1|yes|on)$/i.test(value)) return true;
  if (/^(false|0|no|off)$/i.test(value)) return false;
  throw new ConfigError(`${name} must be true or false (got "${value}")`);
}

/** Alerts name users and patients: they travel encrypted, except to this machine itself. */
function webhookUrl(value: string): string {
  return secureUrl('alertWebhook', value);
}

/** An https URL, or http to this machine itself (nothing crosses a network in clear). */
function secureUrl(name: string, value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`${name} must be a URL (got "${value}")`);
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) throw new ConfigError(`${name} must be an https URL (http only to a loopback address)`);
  return url.toString();
}

function externalIssuers(value: unknown): ExternalIssuerConfig[] {
  if (value === undefined) return [];
  let list: unknown = value;
  if (typeof value === 'string') {
    try {
      list = JSON.parse(value) as unknown;
    } catch {
      throw new ConfigError('externalIssuers must be a JSON list');
    }
  }
  if (!Array.isArray(list)) throw new ConfigError('externalIssuers must be a list');
  return list.map((item, i) => {
    const e = item as ExternalIssuerConfig;
    if (typeof e?.issuer !== 'string' || typeof e.jwksUri !== 'string' || !/^https?:\/\//.test(e.jwksUri)) {
      throw new ConfigError(`externalIssuers[${i}] needs an issuer and an http(s) jwksUri`);
    }
    // Keys fetched in clear could be swapped on the way: whoever did so would sign any token.
    secureUrl(`externalIssuers[${i}].jwksUri`, e.jwksUri);
    return e;
  });
}

/** The collector as `host:port` (`[v6]:port`); the PEM files are read when the sink opens, so a bad one stops the start. */
function auditSyslogOf(input: ConfigInput): { auditSyslog?: NonNullable<Config['auditSyslog']> } {
  const files = { caFile: input.auditSyslogCa, certFile: input.auditSyslogCert, keyFile: input.auditSyslogKey };
  if (!input.auditSyslog) {
    if (files.caFile || files.certFile || files.keyFile) throw new ConfigError('auditSyslogCa, auditSyslogCert and auditSyslogKey need auditSyslog (host:port)');
    return {};
  }
  if (typeof input.auditSyslog !== 'string') throw new ConfigError('auditSyslog must be "host:port"');
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]]+)):(\d+)$/.exec(input.auditSyslog.trim());
  if (!m) throw new ConfigError(`auditSyslog must be host:port, e.g. siem.example.org:6514 or [2001:db8::1]:6514 (got "${input.auditSyslog}")`);
  const port = integer('auditSyslog port', m[3], 1, 65535);
  if (!files.certFile !== !files.keyFile) throw new ConfigError('auditSyslogCert and auditSyslogKey go together: a client certificate needs its private key');
  return {
    auditSyslog: {
      host: m[1] ?? m[2],
      port,
      ...(files.caFile ? { caFile: resolve(files.caFile) } : {}),
      ...(files.certFile ? { certFile: resolve(files.certFile) } : {}),
      ...(files.keyFile ? { keyFile: resolve(files.keyFile) } : {}),
    },
  };
}

/**
 * `tls`: on (HTTPS, TLS 1.3 at least unless lowered to 1.2 explicitly), proxy (plain HTTP from a
 * TLS-terminating proxy at the `trustProxy` addresses), off (plain HTTP, loopback only).
 */
function transportOf(input: ConfigInput, host: string): TransportConfig {
  const mode = input.tls ?? 'on';
  const tlsOnly = { tlsMinVersion: input.tlsMinVersion, tlsCert: input.tlsCert, tlsKey: input.tlsKey, tlsClientCa: input.tlsClientCa, tlsClientCertificates: input.tlsClientCertificates };
  if (mode !== 'on') {
    const stray = Object.entries(tlsOnly).find(([, v]) => v !== undefined && v !== '');
    if (stray) throw new ConfigError(`${stray[0]} needs tls=on`);
  }
  if (mode === 'off') {
    if (!isLoopbackHost(host)) throw new ConfigError(`Refusing plain HTTP (tls=off) on ${host}: only loopback (127.0.0.1, ::1, localhost) may go without TLS; behind a TLS-terminating proxy use tls=proxy`);
    return { mode };
  }
  if (mode === 'proxy') {
    const list = (typeof input.trustProxy === 'string' ? input.trustProxy.split(',') : input.trustProxy ?? []).map((a) => a.trim()).filter(Boolean);
    if (list.length === 0) throw new ConfigError('tls=proxy needs trustProxy: the address(es) or CIDR(s) of the TLS-terminating proxy');
    for (const a of list) if (!/^[0-9a-fA-F:.]+(\/\d{1,3})?$/.test(a)) throw new ConfigError(`trustProxy: "${a}" is not an IP address or CIDR`);
    return { mode, trustProxy: list };
  }
  if (mode !== 'on') throw new ConfigError(`tls must be on, proxy or off (got "${mode}")`);
  const minVersion = ({ '1.3': 'TLSv1.3', 'TLSv1.3': 'TLSv1.3', '1.2': 'TLSv1.2', 'TLSv1.2': 'TLSv1.2' } as const)[input.tlsMinVersion ?? '1.3'];
  if (!minVersion) throw new ConfigError(`tlsMinVersion must be 1.3 or 1.2: nothing older is offered (got "${input.tlsMinVersion}")`);
  if (!input.tlsCert !== !input.tlsKey) throw new ConfigError('tlsCert and tlsKey go together: a certificate needs its private key');
  const clientCertificates = input.tlsClientCertificates ?? (input.tlsClientCa ? 'optional' : 'off');
  if (!['off', 'optional', 'required'].includes(clientCertificates)) throw new ConfigError(`tlsClientCertificates must be off, optional or required (got "${clientCertificates}")`);
  // Without a CA list Node would verify client certificates against the public web roots: any publicly issued certificate would do.
  if (clientCertificates !== 'off' && !input.tlsClientCa) throw new ConfigError(`tlsClientCertificates=${clientCertificates} needs tlsClientCa: the CAs client certificates are verified against`);
  return {
    mode,
    minVersion,
    clientCertificates: clientCertificates as TlsSettings['clientCertificates'],
    ...(input.tlsCert ? { certFile: resolve(input.tlsCert), keyFile: resolve(input.tlsKey!) } : {}),
    ...(input.tlsClientCa ? { clientCaFile: resolve(input.tlsClientCa) } : {}),
  };
}

/**
 * `keyProvider`: `local` (default: the data dir's keyring under BASTION_MASTER_KEY / _PASSPHRASE),
 * or JSON: `{"kind": "vault-transit", "address", "keyName", "mount"?, "namespace"?, "caFile"?}`,
 * `{"kind": "aws-kms", "region", "keyId", "endpoint"?}`, `{"kind": "pkcs11", "module", "tokenLabel" | "slot", "keyLabel"}`.
 * Tokens, credentials and PINs come from the environment, never from here.
 */
/** A database URL's password: its userinfo's, or a `password` parameter (libpq and pg read both). */
function passwordOf(url: string): string | undefined {
  try {
    const parsed = new URL(url);
    return parsed.password || parsed.searchParams.get('password') || undefined;
  } catch {
    return undefined;
  }
}

/** The URL as it may be shown or kept: no password (nor a `password` parameter). */
export function displayDatabaseUrl(text: string): string {
  try {
    const url = new URL(text);
    url.password = '';
    url.searchParams.delete('password');
    return url.toString();
  } catch {
    return 'postgres://...';
  }
}

function databaseOf(input: ConfigInput): DatabaseConfig {
  let url: URL;
  try {
    url = new URL(input.database!);
  } catch {
    throw new ConfigError('database must be a postgres:// URL');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') throw new ConfigError(`database must be a postgres:// URL (got ${url.protocol}//...)`);
  if (!url.hostname) throw new ConfigError('database needs a host');
  const schema = input.databaseSchema ?? 'public';
  // As store/postgres/database.ts schemaName: 50 characters at most (its notification channels' names).
  if (!/^[a-z_][a-z0-9_]{0,49}$/.test(schema)) throw new ConfigError(`databaseSchema must be a plain lower-case SQL name of at most 50 characters (got "${schema}")`);
  return { url: input.database!, schema, poolSize: integer('databasePoolSize', input.databasePoolSize ?? 10, 2, 500) };
}

function nodeNameOf(value: string | undefined): string {
  const name = value ?? `${hostname().replace(/[^A-Za-z0-9._-]/g, '').slice(0, 50) || 'node'}-${process.pid}`;
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(name)) throw new ConfigError(`nodeName must be 1-64 letters, digits, '.', '_' or '-' (got "${name.slice(0, 80)}")`);
  return name;
}

function keyProviderOf(value: string | Record<string, unknown> | undefined): KeyProviderSettings {
  if (value === undefined || value === 'local') return { kind: 'local' };
  const raw = jsonObject('keyProvider', value) as Record<string, unknown>;
  const text = (name: string, required: boolean): string | undefined => {
    const v = raw[name];
    if (v === undefined && !required) return undefined;
    if (typeof v !== 'string' || v.trim() === '') throw new ConfigError(`keyProvider.${name} must be a non-empty string`);
    return v;
  };
  const secretKeys = ['token', 'pin', 'secretAccessKey', 'accessKeyId', 'sessionToken', 'masterKey', 'passphrase'];
  const secret = Object.keys(raw).find((k) => secretKeys.includes(k));
  if (secret) throw new ConfigError(`keyProvider.${secret}: secrets come from the environment (VAULT_TOKEN, AWS_*, BASTION_PKCS11_PIN, BASTION_MASTER_KEY), not the configuration`);
  const optional = (names: string[]) => Object.fromEntries(names.filter((n) => raw[n] !== undefined).map((n) => [n, text(n, true)]));
  switch (raw.kind) {
    case 'local':
      return { kind: 'local' };
    case 'vault-transit':
      return { kind: 'vault-transit', address: text('address', true)!, keyName: text('keyName', true)!, ...optional(['mount', 'namespace']), ...(raw.caFile ? { caFile: resolve(text('caFile', true)!) } : {}) };
    case 'aws-kms':
      return { kind: 'aws-kms', region: text('region', true)!, keyId: text('keyId', true)!, ...optional(['endpoint']) };
    case 'pkcs11': {
      if (raw.mechanism !== undefined && raw.mechanism !== 'aes-gcm' && raw.mechanism !== 'aes-key-wrap-pad') throw new ConfigError('keyProvider.mechanism must be aes-gcm or aes-key-wrap-pad');
      if (raw.slot !== undefined && !Number.isInteger(raw.slot)) throw new ConfigError('keyProvider.slot must be an integer');
      if (raw.slot === undefined && raw.tokenLabel === undefined) throw new ConfigError('keyProvider pkcs11 needs tokenLabel or slot');
      return {
        kind: 'pkcs11', module: text('module', true)!, keyLabel: text('keyLabel', true)!, ...optional(['tokenLabel']),
        ...(raw.slot !== undefined ? { slot: raw.slot as number } : {}), ...(raw.mechanism ? { mechanism: raw.mechanism as 'aes-gcm' | 'aes-key-wrap-pad' } : {}),
      };
    }
    default:
      throw new ConfigError('keyProvider.kind must be local, vault-transit, aws-kms or pkcs11');
  }
}

/** A JSON list of FHIRPath expressions (the environment takes the JSON text); each must compile. */
function sensitiveIdentifiersOf(value: string | string[] | undefined): string[] {
  if (value === undefined) return [...defaultSensitiveIdentifiers];
  let list: unknown = value;
  if (typeof value === 'string') {
    try {
      list = JSON.parse(value);
    } catch {
      throw new ConfigError('sensitiveIdentifiers must be a JSON list of FHIRPath expressions');
    }
  }
  if (!Array.isArray(list) || list.some((e) => typeof e !== 'string' || e.trim() === '')) throw new ConfigError('sensitiveIdentifiers must be a list of FHIRPath expressions');
  try {
    new SensitiveIdentifiers(list as string[]);
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  return list as string[];
}

/** `auditCheckpointS3`: `{"bucket", "region", "endpoint"?, "prefix"?, "mode"?, "retainDays"?}` (JSON in the environment). */
function s3LockSettings(value: string | Record<string, unknown>, retentionYears: number): S3LockSettings {
  let raw: Record<string, unknown>;
  try {
    raw = typeof value === 'string' ? (JSON.parse(value) as Record<string, unknown>) : value;
  } catch {
    throw new ConfigError('auditCheckpointS3 must be JSON: {"bucket": "...", "region": "..."}');
  }
  const { bucket, region, endpoint, prefix, mode = 'COMPLIANCE', retainDays } = raw ?? {};
  if (typeof bucket !== 'string' || !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) throw new ConfigError('auditCheckpointS3.bucket must be an S3 bucket name');
  if (typeof region !== 'string' || !/^[a-z0-9-]{2,32}$/.test(region)) throw new ConfigError('auditCheckpointS3.region must be a region such as us-east-1');
  if (mode !== 'COMPLIANCE' && mode !== 'GOVERNANCE') throw new ConfigError('auditCheckpointS3.mode must be COMPLIANCE or GOVERNANCE');
  if (prefix !== undefined && (typeof prefix !== 'string' || prefix.startsWith('/') || prefix.length > 512)) throw new ConfigError('auditCheckpointS3.prefix must be a key prefix without a leading slash');
  if (endpoint !== undefined) {
    let url: URL;
    try {
      url = new URL(String(endpoint));
    } catch {
      throw new ConfigError('auditCheckpointS3.endpoint must be a URL');
    }
    const loopback = url.hostname === '127.0.0.1' || url.hostname === 'localhost' || url.hostname === '[::1]';
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) throw new ConfigError('auditCheckpointS3.endpoint must be https (http only on loopback)');
  }
  // Locked at least as long as the trail is kept (a day more for each leap year).
  const days = retainDays === undefined ? retentionYears * 366 : integer('auditCheckpointS3.retainDays', retainDays as number, retentionYears * 365, 36_600);
  return {
    bucket, region, mode, retainDays: days,
    ...(endpoint !== undefined ? { endpoint: String(endpoint) } : {}),
    ...(typeof prefix === 'string' ? { prefix } : {}),
  };
}

function integer(name: string, value: number | string, min: number, max: number): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(`${name} must be an integer from ${min} to ${max} (got "${value}")`);
  return n;
}

/** 127.0.0.0/8, ::1 (bracketed or not, as URL host names come) and localhost. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/**
 * Until the authorization server lands every request runs as an anonymous local principal, so the
 * server must not be reachable from anywhere but this machine.
 */
export function assertLoopback(host: string): void {
  if (!isLoopbackHost(host)) {
    throw new ConfigError(
      `Refusing to listen on ${host} with auth=off: every request would be anonymous, so only loopback (127.0.0.1, ::1, localhost) is allowed`,
    );
  }
}
