import { after, before } from 'node:test';
import { createServer, type Server as HttpServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose';
import { loadConfig } from '../../src/config/config.ts';
import { startServer, type Server } from '../../src/main.ts';

export interface IssuerServer {
  base: string;
  server: Server;
  dataDir: string;
  /** Bearer header for a token of `role` with `scope` (default: user/*.cruds, or system/*.cruds for system), plus claims. */
  auth(role: string, scope?: string, claims?: Record<string, unknown>): Promise<Record<string, string>>;
}

/**
 * A Bastion (auth=smart) that trusts a test identity provider whose JWKS is served on loopback:
 * tests mint tokens for any role and scopes without walking the sign-in pages.
 */
export function useIssuerServer(env: Record<string, string> = {}): IssuerServer {
  const issuer = 'https://test-idp.example.test';
  const t = {} as IssuerServer;
  let jwks: HttpServer;
  let dir: string;
  let key: CryptoKey;
  before(async () => {
    const pair = await generateKeyPair('ES256');
    key = pair.privateKey;
    const jwk: JWK = { ...(await exportJWK(pair.publicKey)), kid: 'k', alg: 'ES256' };
    jwks = createServer((_q, res) => res.end(JSON.stringify({ keys: [jwk] })));
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
    dir = mkdtempSync(join(tmpdir(), 'bastion-idp-'));
    t.dataDir = dir;
    t.server = await startServer(loadConfig({ port: 0, dataDir: dir }, {
      BASTION_AUTH: 'smart', BASTION_TLS: 'off', BASTION_EXTERNAL_ISSUERS: JSON.stringify([{ issuer, jwksUri: `http://127.0.0.1:${(jwks.address() as { port: number }).port}/` }]), ...env,
    }));
    t.base = t.server.baseUrl;
  });
  after(async () => {
    await t.server.close();
    jwks.close();
    rmSync(dir, { recursive: true, force: true });
  });
  t.auth = async (role, scope, claims = {}) => {
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ role, scope: scope ?? (role === 'system' ? 'system/*.cruds' : 'user/*.cruds'), client_id: 'app', ...claims })
      .setProtectedHeader({ alg: 'ES256', kid: 'k' }).setIssuer(issuer).setAudience(t.base)
      .setSubject(typeof claims.sub === 'string' ? claims.sub : role === 'system' ? String(claims.client_id ?? 'app') : `${role}-1`).setIssuedAt(now).setExpirationTime(now + 300).setJti(crypto.randomUUID()).sign(key);
    return { authorization: `Bearer ${token}` };
  };
  return t;
}
