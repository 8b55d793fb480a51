import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as oauth from 'oauth4webapi';
import { registerClient } from '../../src/auth/clients.ts';
import { addUser } from '../../src/auth/users.ts';
import { useSmartServer } from './smart-server.ts';
import { Browser } from './browser.ts';
import { patient } from '../rest/server.ts';

/** Sign-in sessions end after a time without use (here 2 s instead of 15 minutes). */
const t = useSmartServer({ BASTION_SESSION_IDLE: '2' });
const redirectUri = 'http://127.0.0.1:9/session-callback';
const password = 'session test password';
let clientId = '';

describe('sign-in sessions', () => {
  before(async () => {
    clientId = (await registerClient(t.authStore, { name: 'Session app', type: 'public', redirectUris: [redirectUri], scope: 'openid launch/patient patient/*.rs' })).clientId;
    const id = (await t.server.store.transaction((tx) => tx.create({ ...patient('Sessionpat'), id: crypto.randomUUID() }))).id;
    await addUser(t.authStore, { username: 'sess', role: 'patient', fhirUser: `Patient/${id}`, password });
  });

  async function authorize(browser: Browser): Promise<void> {
    const url = new URL(`${t.issuer}/authorize`);
    for (const [k, v] of Object.entries({
      client_id: clientId, redirect_uri: redirectUri, response_type: 'code', state: 's', aud: t.base, scope: 'openid launch/patient patient/*.rs',
      code_challenge: await oauth.calculatePKCECodeChallenge(oauth.generateRandomCodeVerifier()), code_challenge_method: 'S256',
    })) url.searchParams.set(k, v);
    await browser.open(url.toString(), new URL(t.issuer).origin);
  }

  test('a session in use carries on; one left idle past the limit asks to sign in again', async () => {
    const browser = new Browser();
    const origin = new URL(t.issuer).origin;
    await authorize(browser);
    await browser.submit('/login', { username: 'sess', password }, origin);
    const out = await browser.submit('/consent', { decision: 'allow', scope: browser.checkboxes() }, origin);
    assert.ok(out?.startsWith(redirectUri));
    await authorize(browser);
    assert.match(browser.html, /Allow access\?/, 'still signed in: straight to approval');
    await new Promise((r) => setTimeout(r, 3200));
    await authorize(browser);
    assert.match(browser.html, /Sign in/, 'idle too long: signed out');
  });
});
