import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/config.ts';
import { startServer } from '../../src/main.ts';
import { auditEventsIn } from './audit-file.ts';
import { verifyAuditFile } from '../../src/cli/audit.ts';
import { validateResource } from '../../src/fhir/validation/validate.ts';

test('every interaction, successful or not, leaves an AuditEvent without clinical content', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bastion-audit-'));
  const server = await startServer(loadConfig({ port: 0, dataDir: dir }, { BASTION_AUTH: 'off', BASTION_TLS: 'off' }));
  const base = server.baseUrl;
  const created = await (await fetch(`${base}/Patient`, {
    method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify({ resourceType: 'Patient', name: [{ family: 'Auditedfamily' }] }),
  })).json();
  await fetch(`${base}/Patient/${created.id}`);
  await fetch(`${base}/Patient/missing`);
  await fetch(`${base}/Patient?family=Auditedfamily`);
  const failed = await fetch(base, {
    method: 'POST', headers: { 'content-type': 'application/fhir+json' },
    body: JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry: [
      { resource: { resourceType: 'Patient', id: 'ghost' }, request: { method: 'PUT', url: 'Patient/ghost' } },
      { resource: { resourceType: 'Patient', id: 'bad', gender: 'robot' }, request: { method: 'PUT', url: 'Patient/bad' } },
    ] }),
  });
  assert.equal(failed.status, 400);
  await server.close();

  const all = await auditEventsIn(dir);
  // The server's own start (its keys, its configuration) comes first; the interactions follow.
  const events = all.filter((e) => e.type.code === 'rest');
  const chain = await verifyAuditFile(dir);
  rmSync(dir, { recursive: true, force: true });
  assert.ok(chain.ok && chain.count === all.length, `the server's own trail is one unbroken chain: ${JSON.stringify(chain)}`);

  const tx = events.splice(4);
  assert.equal(events.length, 4);
  assert.deepEqual(events.map((e) => e.subtype[0].code), ['create', 'read', 'read', 'search-type']);
  assert.deepEqual(events.map((e) => e.action), ['C', 'R', 'R', 'R']);
  assert.deepEqual(events.map((e) => e.outcome), ['0', '0', '4', '0']);
  // The rolled-back transaction: its first entry ran, but must not be recorded as a success.
  const ghost = tx.find((e) => e.entity?.some((x: { what?: { reference?: string } }) => x.what?.reference?.startsWith('Patient/ghost')));
  assert.ok(ghost, JSON.stringify(tx));
  assert.equal(ghost.outcome, '4');
  assert.ok(tx.some((e) => e.subtype[0].code === 'transaction' && e.outcome === '4'));
  assert.equal(events[1].entity[0].what.reference, `Patient/${created.id}/_history/1`);
  assert.equal(events[2].entity[0].what.reference, 'Patient/missing');
  assert.ok(events.every((e) => e.resourceType === 'AuditEvent' && e.agent[0].network.address));
  const text = JSON.stringify(events.map(({ entity, ...rest }) => ({ ...rest, entity: entity?.map((x: { what?: unknown }) => x.what) })));
  assert.ok(!text.includes('Auditedfamily'), 'no clinical content outside the base64 query entity');
  for (const e of [...events, ...tx]) {
    const errors = validateResource(e).filter((i) => i.severity === 'error' || i.severity === 'fatal');
    assert.deepEqual(errors, [], `a rendered AuditEvent is valid R4: ${JSON.stringify(e)}`);
  }
});
