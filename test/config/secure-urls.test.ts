import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../../src/config/config.ts';

const issuers = (jwksUri: string) => ({ BASTION_EXTERNAL_ISSUERS: JSON.stringify([{ issuer: 'https://idp.example.org', jwksUri }]) });

test("a trusted issuer's keys are fetched over https, or http to this machine only: keys swapped in clear would sign any token", () => {
  assert.throws(() => loadConfig({}, issuers('http://idp.example.org/jwks')), ConfigError);
  assert.throws(() => loadConfig({}, issuers('http://10.0.0.5/jwks')), ConfigError);
  assert.equal(loadConfig({}, issuers('https://idp.example.org/jwks')).auth.externalIssuers.length, 1);
  assert.equal(loadConfig({}, issuers('http://127.0.0.1:9999/jwks')).auth.externalIssuers.length, 1);
  assert.equal(loadConfig({}, issuers('http://[::1]:9999/jwks')).auth.externalIssuers.length, 1);
});

test('alert webhooks likewise: alerts name users and patients', () => {
  assert.throws(() => loadConfig({}, { BASTION_ALERT_WEBHOOK: 'http://siem.example.org/hook' }), ConfigError);
  assert.equal(loadConfig({}, { BASTION_ALERT_WEBHOOK: 'http://localhost:8000/hook' }).alertWebhook, 'http://localhost:8000/hook');
});
