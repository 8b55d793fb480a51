import { after } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { SqliteAuthStore } from '../../src/store/sqlite/auth-db.ts';
import { authStoreConformance } from './auth-store-conformance.ts';

const dir = mkdtempSync(join(tmpdir(), 'bastion-auth-store-'));
let n = 0;
after(() => rmSync(dir, { recursive: true, force: true }));

authStoreConformance('sqlite', async () => new SqliteAuthStore(join(dir, `auth-${n++}.db`), randomBytes(32)));
