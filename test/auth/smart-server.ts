import { after, before } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/config.ts';
import { startServer, type Server } from '../../src/main.ts';
import type { AuthStore } from '../../src/store/auth-store.ts';

export interface SmartTestServer {
  server: Server;
  base: string;
  issuer: string;
  authStore: AuthStore;
  dataDir: string;
}

/** A Bastion with auth=smart on a free loopback port, for the tests of one file. */
export function useSmartServer(env: Record<string, string> = {}): SmartTestServer {
  const t = {} as SmartTestServer;
  before(async () => {
    t.dataDir = mkdtempSync(join(tmpdir(), 'bastion-smart-'));
    t.server = await startServer(loadConfig({ port: 0, dataDir: t.dataDir }, { BASTION_AUTH: 'smart', BASTION_TLS: 'off', ...env }));
    t.base = t.server.baseUrl;
    t.issuer = t.base.replace(/\/fhir$/, '/auth');
    t.authStore = t.server.authStore!;
  });
  after(async () => {
    await t.server.close();
    rmSync(t.dataDir, { recursive: true, force: true });
  });
  return t;
}
