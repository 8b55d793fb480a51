import type { Db } from './open.ts';
import { migrate } from './migrations.ts';

/**
 * The audit file's schema (its own file beside the store: see audit-writer.ts). Append-only is
 * enforced by the file itself, whoever opens it.
 */
export const auditMigrations: string[] = [
  `
  CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY,
    recorded TEXT NOT NULL,
    event TEXT NOT NULL
  );
  CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
  CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
  `,
];

export function migrateAudit(db: Db): number {
  return migrate(db, auditMigrations, 'audit file');
}

/**
 * Stores from before the audit file kept their records in the store file's audit_log table. Those
 * are copied, in order, into a new audit file, once; the originals stay where they were (nothing
 * deletes an audit record).
 */
export function adoptLegacyAudit(store: Db, audit: Db): number {
  const hasAudit = (audit.prepare('SELECT count(*) AS n FROM audit_log').get() as { n: number }).n > 0;
  if (hasAudit) return 0;
  const legacy = store.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'audit_log'`).get();
  if (!legacy) return 0;
  const rows = store.prepare<[], { recorded: string; event: string }>('SELECT recorded, event FROM audit_log ORDER BY seq').iterate();
  const insert = audit.prepare('INSERT INTO audit_log (recorded, event) VALUES (?, ?)');
  let n = 0;
  audit.transaction(() => {
    for (const r of rows) {
      insert.run(r.recorded, r.event);
      n++;
    }
  })();
  return n;
}
