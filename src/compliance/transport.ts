import type { Config } from '../config/config.ts';
import type { Finding } from './finding.ts';

const control = '164.312(e)(1) transmission security';

/** Plain HTTP (behind a proxy or on loopback), TLS 1.2 allowed, a development certificate in use. */
export function transportFindings(config: Pick<Config, 'transport'>): Finding[] {
  const t = config.transport;
  if (t.mode === 'off') return [{ control, severity: 'high', message: 'plain HTTP (tls=off): only for development on loopback; PHI must not be served this way' }];
  if (t.mode === 'proxy') {
    return [{ control, severity: 'low', message: `plain HTTP behind a TLS-terminating proxy (${t.trustProxy.join(', ')}): the hop from the proxy is unencrypted; confirm the proxy enforces TLS 1.2+ and that the network between is private` }];
  }
  const findings: Finding[] = [];
  if (t.minVersion === 'TLSv1.2') findings.push({ control, severity: 'low', message: 'TLS 1.2 is accepted (tlsMinVersion=1.2); TLS 1.3 only is the default' });
  if (!t.certFile) findings.push({ control, severity: 'medium', message: 'a self-signed development certificate is served: configure tlsCert and tlsKey' });
  return findings;
}
