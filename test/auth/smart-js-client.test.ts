import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server as HttpServer } from 'node:http';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { generate } from 'otplib';
import { registerClient } from '../../src/auth/clients.ts';
import { addUser } from '../../src/auth/users.ts';
import { newTotpSecret } from '../../src/auth/totp.ts';
import { useSmartServer } from './smart-server.ts';
import { patient } from '../rest/server.ts';

/**
 * A standalone launch the way a real SMART app does it: the SMART JS client (fhirclient) in a
 * small app page, in headless Chromium, through Bastion's sign-in, TOTP, patient picker and
 * approval pages, then reading the chosen Patient with the token it got.
 */
const chromiumPath = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find(existsSync);
const t = useSmartServer();
const password = 'a long enough password';
const secret = newTotpSecret();
let appServer: HttpServer;
let appOrigin = '';
let clientId = '';
let patientId = '';

function appPage(script: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>app</title><script src="/fhir-client.js"></script></head><body><script>${script}</script></body></html>`;
}

describe('SMART JS client (fhirclient) in Chromium', { skip: !chromiumPath && !process.env.CI ? 'Chromium is not installed (CI installs it)' : false }, () => {
  before(async () => {
    const fhirClientJs = readFileSync(createRequire(import.meta.url).resolve('fhirclient/build/fhir-client.js'), 'utf8');
    appServer = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/fhir-client.js') return void res.writeHead(200, { 'content-type': 'text/javascript' }).end(fhirClientJs);
      if (path === '/launch.html') {
        return void res.writeHead(200, { 'content-type': 'text/html' }).end(appPage(
          `FHIR.oauth2.authorize({ clientId: ${JSON.stringify(clientId)}, scope: 'openid fhirUser launch/patient patient/*.rs', redirectUri: '/index.html', iss: ${JSON.stringify(t.base)} });`));
      }
      if (path === '/index.html') {
        return void res.writeHead(200, { 'content-type': 'text/html' }).end(appPage(
          `FHIR.oauth2.ready().then((c) => c.request('Patient/' + c.patient.id)).then((p) => { document.title = 'done:' + p.name[0].family; })` +
          `.catch((e) => { document.title = 'error:' + e.message; });`));
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => appServer.listen(0, '127.0.0.1', resolve));
    appOrigin = `http://127.0.0.1:${(appServer.address() as { port: number }).port}`;
    clientId = (await registerClient(t.authStore, {
      name: 'Browser app', type: 'public', redirectUris: [`${appOrigin}/index.html`], scope: 'openid fhirUser launch/patient patient/*.rs',
    })).clientId;
    patientId = (await t.server.store.transaction((tx) => tx.create({ ...patient('Browserpatient', { generalPractitioner: [{ reference: 'Practitioner/browser' }] }), id: crypto.randomUUID() }))).id;
    await addUser(t.authStore, { username: 'drbrowser', role: 'physician', fhirUser: 'Practitioner/browser', password, totpSecret: secret });
  });

  after(() => appServer?.close());

  test('launch, sign in with TOTP, pick the patient, approve, read the Patient', async () => {
    assert.ok(chromiumPath, 'Chromium is needed for this test');
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] });
    try {
      const page = await browser.newPage();
      await page.goto(`${appOrigin}/launch.html`);
      await page.waitForURL(/\/auth\/interaction\//);
      await page.fill('input[name=username]', 'drbrowser');
      await page.fill('input[name=password]', password);
      await page.click('button[type=submit]:has-text("Sign in")');
      await page.waitForSelector('input[name=code]');
      await page.fill('input[name=code]', await generate({ secret }));
      await page.click('button:has-text("Verify")');
      await page.waitForSelector('text=Choose a patient');
      await page.fill('input[name=q]', 'browserpat');
      await page.click('button:has-text("Search")');
      await page.check(`input[name=patient][value="${patientId}"]`);
      await page.click('button:has-text("Choose")');
      await page.waitForSelector('text=Allow access?');
      await page.click('button[value=allow]');
      await page.waitForFunction(() => document.title.startsWith('done:') || document.title.startsWith('error:'), undefined, { timeout: 20_000 });
      assert.equal(await page.title(), 'done:Browserpatient');
    } finally {
      await browser.close();
    }
  });
});
