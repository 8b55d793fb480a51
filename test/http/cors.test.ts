import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServer } from '../rest/server.ts';

const t = useServer();

test('CORS: browser requests (with an Origin) get allow and expose headers, preflights are answered; others get none', async () => {
  const plain = await fetch(`${t.base}/metadata`);
  assert.equal(plain.headers.get('access-control-allow-origin'), null);
  const browser = await fetch(`${t.base}/Patient/nope`, { headers: { origin: 'http://app.example' } });
  assert.equal(browser.status, 404);
  assert.equal(browser.headers.get('access-control-allow-origin'), '*');
  assert.match(browser.headers.get('access-control-expose-headers') ?? '', /Location/);
  assert.equal(browser.headers.get('access-control-allow-credentials'), null, 'never with credentials');
  const preflight = await fetch(`${t.base}/Patient/1`, { method: 'OPTIONS', headers: { origin: 'http://app.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' } });
  assert.equal(preflight.status, 204);
  assert.match(preflight.headers.get('access-control-allow-headers') ?? '', /Authorization/);
  assert.match(preflight.headers.get('access-control-allow-methods') ?? '', /PUT/);
});
