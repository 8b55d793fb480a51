import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/config.ts';
import { startServer } from '../../src/main.ts';
import { auditEventsIn } from './audit-file.ts';

test('the continuous NDJSON stream carries every committed record, with its id in the trail', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bastion-stream-'));
  const stream = join(dir, 'siem.ndjson');
  const server = await startServer(loadConfig({ port: 0, dataDir: join(dir, 'data') }, { BASTION_AUTH: 'off', BASTION_TLS: 'off', BASTION_AUDIT_STREAM: stream }));
  const created = await (await fetch(`${server.baseUrl}/Patient`, {
    method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify({ resourceType: 'Patient', name: [{ family: 'Streamed' }] }),
  })).json();
  await fetch(`${server.baseUrl}/Patient/${created.id}`);
  await fetch(`${server.baseUrl}/Patient/missing`);
  await server.close();
  const lines = readFileSync(stream, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const trail = await auditEventsIn(join(dir, 'data'));
  rmSync(dir, { recursive: true, force: true });
  assert.equal(lines.length, trail.length);
  assert.deepEqual(lines.map((e) => e.id), trail.map((_e, i) => String(i + 1)));
  const interactions = lines.filter((e) => e.type.code === 'rest');
  assert.deepEqual(interactions.map((e) => e.subtype[0].code), ['create', 'read', 'read']);
  assert.deepEqual(interactions.map((e) => e.outcome), ['0', '0', '4']);
  assert.ok(!JSON.stringify(lines).includes('Streamed'), 'references, not clinical content');
});
