import type { Db } from './open.ts';
import type { HistoryEntry, HistoryPage, HistoryQuery, WriteMethod } from '../store.ts';
import type { VersionRow } from './statements.ts';
import type { ResourceCodec } from '../resource-codec.ts';
import { parseDateRange } from '../../fhir/datetime.ts';

/**
 * History newest first. `_at` selects the versions current at some point within the period the
 * value denotes: created before its end and not yet replaced at its start.
 */
export function queryHistory(db: Db, codec: ResourceCodec, query: HistoryQuery): HistoryPage {
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
      where.push(`v.last_updated < ?`);
      args.push(new Date(range.end).toISOString());
      where.push(`coalesce((SELECT n.last_updated FROM resource_versions n WHERE n.rid = v.rid AND n.version = v.version + 1), '9999') > ?`);
      args.push(new Date(range.start).toISOString());
    }
  }
  const from = `FROM resource_versions v JOIN resources r ON r.rid = v.rid ${where.length ? 'WHERE ' + where.join(' AND ') : ''}`;
  const total = (db.prepare(`SELECT count(*) AS n ${from}`).get(...args) as { n: number }).n;
  const rows = db
    .prepare(`SELECT r.type, r.id, v.version, v.last_updated, v.deleted, v.method, v.content ${from} ORDER BY v.seq DESC LIMIT ? OFFSET ?`)
    .all(...args, query.count, query.offset) as VersionRow[];
  return { total, entries: rows.map((row) => toHistoryEntry(row, codec)) };
}

function toHistoryEntry(row: VersionRow, codec: ResourceCodec): HistoryEntry {
  return {
    resourceType: row.type,
    id: row.id,
    versionId: String(row.version),
    lastUpdated: row.last_updated,
    deleted: row.deleted === 1,
    json: row.content === null ? undefined : codec.decode(row.type, row.id, row.version, row.content),
    method: row.method as WriteMethod,
  };
}
