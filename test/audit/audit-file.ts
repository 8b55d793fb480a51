import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openEncrypted } from '../../src/store/sqlite/open.ts';
import { auditEventOf } from '../../src/audit/audit-read.ts';

/** The AuditEvents a stopped server in `dataDir` appended, read from its audit file. */
export function auditEventsIn(dataDir: string): Record<string, any>[] {
  const key = Buffer.from(readFileSync(join(dataDir, 'store.key'), 'utf8').trim(), 'hex');
  const db = openEncrypted(join(dataDir, 'bastion-audit.db'), key);
  try {
    const rows = db.prepare('SELECT seq, recorded, event FROM audit_log ORDER BY seq').all() as { seq: number; recorded: string; event: string }[];
    return rows.map((r) => auditEventOf({ seq: r.seq, recorded: r.recorded, json: r.event }));
  } finally {
    db.close();
  }
}
