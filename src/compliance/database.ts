import type { Config } from '../config/config.ts';
import { isLoopbackHost } from '../config/config.ts';
import type { Finding } from './finding.ts';

const transmission = '164.312(e)(1) transmission security';
const atRest = '164.312(a)(2)(iv) encryption and decryption';

/**
 * PostgreSQL: the hop to the database carries PHI, and its tables are readable by whoever reads
 * the database's files or backups, unlike the embedded store's encrypted file.
 */
export function databaseFindings(config: Pick<Config, 'database' | 'encryptResourceBodies'>): Finding[] {
  if (!config.database) return [];
  const findings: Finding[] = [];
  const url = new URL(config.database.url);
  const sslmode = url.searchParams.get('sslmode') ?? 'disable';
  if (!isLoopbackHost(url.hostname)) {
    if (sslmode === 'disable' || sslmode === 'prefer' || sslmode === 'allow') {
      findings.push({ control: transmission, severity: 'high', message: `the connection to PostgreSQL at ${url.hostname} is not required to use TLS (sslmode=${sslmode}): set sslmode=verify-full` });
    } else if (sslmode !== 'verify-full') {
      findings.push({ control: transmission, severity: 'medium', message: `the connection to PostgreSQL at ${url.hostname} is encrypted but the server's certificate is not checked against its name (sslmode=${sslmode}): set sslmode=verify-full` });
    }
  }
  if (!config.encryptResourceBodies) {
    findings.push({ control: atRest, severity: 'high', message: 'resource bodies are stored in PostgreSQL as plain JSON (encryptResourceBodies=false): turn it on (the re-encryption job seals what is stored)' });
  }
  findings.push({
    control: atRest, severity: 'low',
    message: 'the search index tables hold searchable values (names, dates, codes) in clear, as any searchable index must: confirm the database\'s storage and backups are encrypted (volume or tablespace encryption)',
  });
  return findings;
}
