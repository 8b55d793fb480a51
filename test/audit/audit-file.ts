import { storeKey } from '../store-key.ts';
import { join } from 'node:path';
import { openEncrypted } from '../../src/store/sqlite/open.ts';
import { auditEventOf } from '../../src/audit/audit-read.ts';

/** The AuditEvents a stopped server in `dataDir` appended, read from its audit file. */
export async function auditEventsIn(dataDir: string): Promise<Record<string, any>[]> {
  const key = await storeKey(dataDir);
  const db = openEncrypted(join(dataDir, 'bastion-audit.db'), key);
  try {
    const rows = db.prepare('SELECT seq, recorded, event FROM audit_log ORDER BY seq').all() as { seq: number; recorded: string; event: string }[];
    return rows.map((r) => auditEventOf({ seq: r.seq, recorded: r.recorded, json: r.event }));
  } finally {
    db.close();
  }
}
