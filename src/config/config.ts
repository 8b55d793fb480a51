import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

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
};

const defaults = {
  host: '127.0.0.1',
  port: 8080,
  dataDir: './data',
  maxBodyBytes: 32 * 1024 * 1024,
  defaultCount: 20,
  maxCount: 1000,
  logLevel: 'info',
};

export class ConfigError extends Error {}

export function loadConfig(flags: ConfigInput, env: NodeJS.ProcessEnv = process.env, configFile?: string): Config {
  const file = configFile ?? env.BASTION_CONFIG;
  const fromFile = file ? readConfigFile(file) : {};
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
  const baseUrl = (input.baseUrl ?? `http://${host.includes(':') ? `[${host}]` : host}:${port}/fhir`).replace(/\/+$/, '');
  if (!/^https?:\/\/[^/]+(\/.*)?$/.test(baseUrl)) throw new ConfigError(`baseUrl must be an http(s) URL (got "${baseUrl}")`);
  return {
    host,
    port,
    dataDir: resolve(input.dataDir ?? defaults.dataDir),
    baseUrl,
    maxBodyBytes,
    search: { defaultCount, maxCount },
    history: { defaultCount, maxCount },
    logLevel: logLevel as Config['logLevel'],
  };
}

function integer(name: string, value: number | string, min: number, max: number): number {
  const n = typeof value === 'number' ? value : /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(`${name} must be an integer from ${min} to ${max} (got "${value}")`);
  return n;
}

/**
 * Until the authorization server lands every request runs as an anonymous local principal, so the
 * server must not be reachable from anywhere but this machine.
 */
export function assertLoopback(host: string): void {
  const loopback = host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
  if (!loopback) {
    throw new ConfigError(
      `Refusing to listen on ${host}: without the authorization server every request is anonymous, so only loopback (127.0.0.1, ::1, localhost) is allowed`,
    );
  }
}
