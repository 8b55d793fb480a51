import { after, before, describe } from 'node:test';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PgStore } from '../../src/store/postgres/pg-store.ts';
import { ResourceCodec } from '../../src/store/resource-codec.ts';
import { openDataKeys } from '../../src/crypto/open-keys.ts';
import type { DataKeys } from '../../src/crypto/data-keys.ts';
import { storeConformance } from './conformance.ts';
import { searchConformance } from './search-conformance.ts';
import { freshSchema, pgSkip, postgresUrl } from '../postgres.ts';

// The conformance suites the embedded store passes, unchanged, on PostgreSQL: with JSON bodies,
// and as deployed (every body sealed, identifiers encrypted).
describe('PostgreSQL store', { skip: pgSkip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'bastion-pg-store-'));
  let keys: DataKeys;
  before(async () => {
    keys = await openDataKeys(join(dir, 'keys'), { kind: 'local' }, { BASTION_MASTER_KEY: randomBytes(32).toString('hex') });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const plain = () => PgStore.open({ url: postgresUrl!, schema: freshSchema(), max: 4 });
  const sealed = () => PgStore.open({ url: postgresUrl!, schema: freshSchema(), max: 4, codec: new ResourceCodec(keys, { encryptBodies: true }) });

  describe('store conformance', () => storeConformance(plain));
  describe('search conformance', () => searchConformance(plain));
  describe('store conformance with sealed bodies', () => storeConformance(sealed));
  describe('search conformance with sealed bodies', () => searchConformance(sealed));
});
