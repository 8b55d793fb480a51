import type { Db } from './open.ts';
import type { HistoryEntry, HistoryPage, HistoryQuery, WriteMethod } from '../store.ts';
import type { VersionRow } from './statements.ts';
import type { ResourceCodec } from '../resource-codec.ts';
import { historyFrom } from '../sql/history-sql.ts';

/** History newest first (the query's rows: sql/history-sql.ts). */
export function queryHistory(db: Db, codec: ResourceCodec, query: HistoryQuery): HistoryPage {
  const { from, args } = historyFrom(query);
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
