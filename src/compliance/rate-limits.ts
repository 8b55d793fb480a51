import type { Config } from '../config/config.ts';
import type { Finding } from './finding.ts';

const threats = '164.306(a)(2) protection against reasonably anticipated threats';

/** Without rate limits a stolen token pulls records as fast as the server serves them. */
export function rateLimitFindings(config: Pick<Config, 'rateLimits'>): Finding[] {
  if (config.rateLimits.enabled) return [];
  return [{ control: threats, severity: 'medium', message: 'request rate limits are off (rateLimits.enabled=false): a stolen token can read records as fast as the server serves them; turn them on' }];
}
