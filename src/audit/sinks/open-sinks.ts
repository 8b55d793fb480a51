import { readFileSync } from 'node:fs';
import { ConfigError, type Config } from '../../config/config.ts';
import type { AuditSink } from './audit-sink.ts';
import { NdjsonSink } from './ndjson-sink.ts';
import { SyslogSink } from './syslog-sink.ts';

/**
 * The sinks the configuration asks for. A file that cannot be read or a certificate that does not
 * parse is a ConfigError now: a server that silently exported nothing would be worse than one
 * that does not start.
 */
export function openAuditSinks(config: Config, onError: (err: unknown) => void): AuditSink[] {
  const sinks: AuditSink[] = [];
  if (config.auditSyslog) sinks.push(syslogSink(config.auditSyslog, onError));
  // Last, so nothing is left open when the syslog settings are refused.
  if (config.auditStream) sinks.push(new NdjsonSink(config.auditStream, { onError }));
  return sinks;
}

function syslogSink(settings: NonNullable<Config['auditSyslog']>, onError: (err: unknown) => void): SyslogSink {
  const pem = (setting: string, file: string | undefined) => {
    if (file === undefined) return undefined;
    try {
      return readFileSync(file);
    } catch (err) {
      throw new ConfigError(`${setting}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  };
  const ca = pem('auditSyslogCa', settings.caFile);
  const cert = pem('auditSyslogCert', settings.certFile);
  const key = pem('auditSyslogKey', settings.keyFile);
  try {
    return new SyslogSink({
      host: settings.host,
      port: settings.port,
      ...(ca ? { ca } : {}),
      ...(cert ? { cert } : {}),
      ...(key ? { key } : {}),
      onError,
    });
  } catch (err) {
    throw new ConfigError(`auditSyslog: the CA, certificate or key is not usable (${(err as Error).message})`);
  }
}
