import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { displayDatabaseUrl, type Config } from '../config/config.ts';
import type { AuthEvent } from '../auth/auth-events.ts';

/** The server's own signing keys beside the authorization server's (auth-server.ts records those). */
const serverKeyFiles = ['audit-signing-keys.json', 'provenance-signing-keys.json'];

/** Which of the server's key files do not exist yet: call before they are created, record after. */
export function keysToBeCreated(dataDir: string): string[] {
  return serverKeyFiles.filter((f) => !existsSync(join(dataDir, f)));
}

/**
 * What the server records about itself at start: each signing key it created, and the
 * configuration it runs with (its SHA-256, and whether it differs from the previous start's: a
 * configuration change is an administrative action the trail must show, HIPAA §164.312(b)).
 * The hash, not the settings, goes on the trail; the data dir keeps the last one to compare.
 */
export function startupEvents(config: Config, created: string[]): AuthEvent[] {
  const events: AuthEvent[] = created
    .filter((f) => existsSync(join(config.dataDir, f)))
    .map((f) => ({ kind: 'key-created', who: 'system', address: 'server', success: true, detail: `file=${f}` }));
  const hash = createHash('sha256').update(JSON.stringify(hashedSettings(config))).digest('hex');
  const file = join(config.dataDir, 'config.sha256');
  const previous = existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined;
  if (previous !== hash) writeFileSync(file, `${hash}\n`, { mode: 0o600 });
  const change = previous === undefined ? 'first' : previous === hash ? 'unchanged' : 'changed';
  events.push({ kind: 'config-loaded', who: 'system', address: 'server', success: true, detail: `sha256=${hash} ${change}` });
  return events;
}

/**
 * The settings the hash is of: not this node's name (its default holds the process id, so every
 * start would be a change), nor the database password (a hash of it on the trail would let anyone
 * who reads the trail test guesses of it).
 */
function hashedSettings(config: Config): Omit<Config, 'nodeName'> {
  const { nodeName: _name, ...settings } = config;
  return config.database ? { ...settings, database: { ...config.database, url: displayDatabaseUrl(config.database.url) } } : settings;
}
