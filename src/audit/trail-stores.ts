import type { Db } from '../store/sqlite/open.ts';
import { appendChained, appendCheckpoint, auditHead, chainRows, checkpoints, linkAt, purges, removeThrough } from '../store/sqlite/audit-schema.ts';
import type { PgAuditLog } from '../store/postgres/audit-log.ts';
import type { AuditTrail, TrailRecord } from './audit-trail.ts';

/**
 * The audit trail of each store behind the one interface the audit commands use (audit-trail.ts).
 */

/**
 * The embedded store's audit file, opened by the caller (who closes it). Read synchronously: a
 * whole trail is verified without a round through the event loop per record. Appends from here
 * need the server stopped (its audit worker holds the head).
 */
export function sqliteAuditTrail(db: Db): AuditTrail {
  return {
    chainRows: () => chainRows(db),
    recordsBetween: (since, until) => db.prepare<[string, string], TrailRecord>(
      'SELECT seq, recorded, event FROM audit_log WHERE recorded >= ? AND recorded < ? ORDER BY seq',
    ).iterate(since, until),
    linkAt: async (seq) => linkAt(db, seq),
    head: async () => auditHead(db),
    checkpoints: async () => checkpoints(db),
    purges: async () => purges(db),
    removeThrough: async (purge) => removeThrough(db, purge),
    appendChained: async (recorded, event) => appendChained(db, recorded, event),
    appendCheckpoint: async (checkpoint) => appendCheckpoint(db, checkpoint),
  };
}

/**
 * PostgreSQL's audit tables, appended by the nodes meanwhile: records are read through a cursor in
 * one snapshot, and an append goes through the log's head lock like the nodes' appends.
 */
export function pgAuditTrail(log: PgAuditLog): AuditTrail {
  return {
    chainRows: () => log.chainRows(),
    recordsBetween: (since, until) => log.recordsBetween(since, until),
    linkAt: (seq) => log.linkAt(seq),
    head: () => log.head(),
    checkpoints: () => log.checkpoints(),
    purges: () => log.purges(),
    removeThrough: (purge) => log.removeThrough(purge),
    appendChained: (recorded, event) => log.append([{ recorded, json: event }]),
    appendCheckpoint: (checkpoint) => log.appendCheckpoint(checkpoint),
  };
}
