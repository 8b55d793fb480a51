import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rateLimitFindings } from '../../src/compliance/rate-limits.ts';
import { loadConfig } from '../../src/config/config.ts';

test('rate limits off is a finding; on (the default) is none', () => {
  assert.deepEqual(rateLimitFindings(loadConfig({}, {})), []);
  const off = rateLimitFindings(loadConfig({}, { BASTION_RATE_LIMITS: '{"enabled": false}' }));
  assert.equal(off.length, 1);
  assert.equal(off[0]!.severity, 'medium');
  assert.match(off[0]!.message, /rate limits are off/);
});
