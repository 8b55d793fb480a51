import { after, before } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/config.ts';
import { startServer, type Server } from '../../src/main.ts';

export interface TestServer {
  base: string;
  server: Server;
  dataDir: string;
}

/** A real Bastion on a free loopback port, with its own data dir, for the tests of one file. */
export function useServer(env: Record<string, string> = {}): TestServer {
  const t = {} as TestServer;
  before(async () => {
    t.dataDir = mkdtempSync(join(tmpdir(), 'bastion-rest-'));
    // The FHIR behaviour under test is the same with or without tokens; test/auth covers auth=smart.
    const config = loadConfig({ port: 0, dataDir: t.dataDir }, { BASTION_AUTH: 'off', BASTION_TLS: 'off', ...env });
    t.server = await startServer(config);
    t.base = t.server.baseUrl;
  });
  after(async () => {
    await t.server.close();
    rmSync(t.dataDir, { recursive: true, force: true });
  });
  return t;
}

export interface Reply {
  status: number;
  headers: Headers;
  body: any;
  text: string;
}

export async function call(url: string, init: RequestInit & { json?: unknown } = {}): Promise<Reply> {
  const headers = new Headers(init.headers);
  let body = init.body;
  if (init.json !== undefined) {
    body = JSON.stringify(init.json);
    if (!headers.has('content-type')) headers.set('content-type', 'application/fhir+json');
  }
  const res = await fetch(url, { ...init, headers, body });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: res.status, headers: res.headers, body: parsed, text };
}

export const patient = (family: string, extra: Record<string, unknown> = {}) => ({
  resourceType: 'Patient',
  name: [{ family, given: ['Test'] }],
  gender: 'female',
  birthDate: '1980-01-02',
  ...extra,
});
