import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openEncrypted } from '../../src/store/sqlite/open.ts';

/** The AuditEvents a stopped server in `dataDir` appended, read from its audit file. */
export function auditEventsIn(dataDir: string): Record<string, any>[] {
  const key = Buffer.from(readFileSync(join(dataDir, 'store.key'), 'utf8').trim(), 'hex');
  const db = openEncrypted(join(dataDir, 'bastion-audit.db'), key);
  try {
    return (db.prepare('SELECT event FROM audit_log ORDER BY seq').all() as { event: string }[]).map((r) => JSON.parse(r.event));
  } finally {
    db.close();
  }
}
