import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { call, useServer } from './server.ts';
import { validateResource } from '../../src/fhir/validation/validate.ts';

describe('the operations this server defines', () => {
  const t = useServer();

  test('every definition the CapabilityStatement names for them reads back as a valid OperationDefinition', async () => {
    const metadata = (await call(`${t.base}/metadata`)).body;
    const own = metadata.rest[0].resource
      .flatMap((r: { operation?: { name: string; definition: string }[] }) => r.operation ?? [])
      .filter((o: { definition: string }) => o.definition.startsWith(t.base));
    assert.deepEqual(own.map((o: { name: string }) => o.name).sort(), ['accounting-of-disclosures', 'verify-signature']);
    for (const o of own) {
      const r = await call(o.definition);
      assert.equal(r.status, 200, `${o.definition}: ${r.text}`);
      assert.equal(r.body.url, o.definition);
      assert.equal(r.body.code, o.name);
      const errors = validateResource(r.body).filter((i) => i.severity === 'error' || i.severity === 'fatal');
      assert.deepEqual(errors, []);
    }
    assert.equal((await call(`${t.base}/OperationDefinition/not-one-of-ours`)).status, 404);
  });
});
