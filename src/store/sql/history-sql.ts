import type { HistoryEntry, HistoryQuery, WriteMethod } from '../store.ts';
import { parseDateRange } from '../../fhir/datetime.ts';

/**
 * The FROM and WHERE of a history query, the same for both stores (their version tables have the
 * same columns). `_at` selects the versions current at some point within the period the value
 * denotes: created before its end and not yet replaced at its start.
 */
export function historyFrom(query: HistoryQuery): { from: string; args: (string | number)[] } {
  const where: string[] = [];
  const args: (string | number)[] = [];
  if (query.resourceType) {
    where.push('v.type = ?');
    args.push(query.resourceType);
  }
  if (query.id !== undefined) {
    where.push('r.id = ?');
    args.push(query.id);
  }
  if (query.since) {
    where.push('v.last_updated >= ?');
    args.push(query.since);
  }
  if (query.until) {
    where.push('v.last_updated <= ?');
    args.push(query.until);
  }
  if (query.at) {
    const range = parseDateRange(query.at);
    if (range) {
      where.push('v.last_updated < ?');
      args.push(new Date(range.end).toISOString());
      where.push(`coalesce((SELECT n.last_updated FROM resource_versions n WHERE n.rid = v.rid AND n.version = v.version + 1), '9999') > ?`);
      args.push(new Date(range.start).toISOString());
    }
  }
  return { from: `FROM resource_versions v JOIN resources r ON r.rid = v.rid ${where.length ? 'WHERE ' + where.join(' AND ') : ''}`, args };
}

/** The columns of a version both stores read (current or past); each adds its own body column(s). */
export interface VersionColumns {
  type: string;
  id: string;
  version: number;
  last_updated: string;
  deleted: number;
}

/** What a history page reads of a version, beside the body. */
export interface HistoryColumns extends VersionColumns {
  method: string;
}

/** One page of `from`'s versions, newest first, with the store's body columns; binds `from`'s args, then count and offset. */
export function historyPageSql(from: string, bodyColumns: string): string {
  return `SELECT r.type, r.id, v.version, v.last_updated, v.deleted, v.method, ${bodyColumns} ${from} ORDER BY v.seq DESC LIMIT ? OFFSET ?`;
}

/** The history entry of a version row, with its body as the store decoded it (none for a deletion). */
export function historyEntry(row: HistoryColumns, json: string | undefined): HistoryEntry {
  return {
    resourceType: row.type,
    id: row.id,
    versionId: String(row.version),
    lastUpdated: row.last_updated,
    deleted: row.deleted === 1,
    json,
    method: row.method as WriteMethod,
  };
}
