import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/config.ts';
import { startServer } from '../../src/main.ts';
import { auditEventsIn } from './audit-file.ts';

/** Keys the server creates and the configuration it starts with are on the trail; a changed configuration says so. */
test('the server records its new signing keys and each start\'s configuration, changed or not', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bastion-startup-'));
  try {
    const start = async (env: Record<string, string> = {}) => (await startServer(loadConfig({ port: 0, dataDir: dir }, { BASTION_AUTH: 'off', BASTION_TLS: 'off', ...env }))).close();
    await start();
    await start();
    await start({ BASTION_AUDIT_CHECKPOINT_SECONDS: '120' });
    const events = await auditEventsIn(dir);
    const kinds = (kind: string) => events.filter((e) => e.subtype.some((c: { code: string }) => c.code === kind));
    const keys = kinds('key-created').map((e) => e.outcomeDesc);
    assert.ok(keys.includes('file=audit-signing-keys.json') && keys.includes('file=provenance-signing-keys.json'), JSON.stringify(keys));
    const configs = kinds('config-loaded');
    assert.deepEqual(configs.map((e) => e.outcomeDesc.split(' ')[1]), ['first', 'unchanged', 'changed']);
    assert.ok(configs.every((e) => e.type.code === '110113' && e.subtype[0].code === '110129' && /^sha256=[0-9a-f]{64} /.test(e.outcomeDesc)));
    assert.equal(configs[0].outcomeDesc.split(' ')[0], configs[1].outcomeDesc.split(' ')[0]);
    assert.notEqual(configs[1].outcomeDesc.split(' ')[0], configs[2].outcomeDesc.split(' ')[0]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
