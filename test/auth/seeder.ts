import assert from 'node:assert/strict';
import { call } from '../rest/server.ts';
import type { IssuerServer } from './external-issuer.ts';

export interface Seeder {
  /** Logical ids of what was created, by the name it was created under. */
  ids: Record<string, string>;
  /** POSTs `body` with a system token, asserts 201, remembers its id as `name`; returns `Type/id`. */
  create(name: string, body: Record<string, unknown>): Promise<string>;
}

/** Seeds test data through the API with a backend service's token, as a real system would. */
export async function seeder(t: IssuerServer): Promise<Seeder> {
  const headers = await t.auth('system');
  const ids: Record<string, string> = {};
  return {
    ids,
    async create(name, body) {
      const r = await call(`${t.base}/${body.resourceType}`, { method: 'POST', headers, json: body });
      assert.equal(r.status, 201, r.text);
      ids[name] = r.body.id;
      return `${body.resourceType}/${r.body.id}`;
    },
  };
}
