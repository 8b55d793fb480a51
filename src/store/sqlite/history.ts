import type { Db } from './open.ts';
import type { HistoryPage, HistoryQuery } from '../store.ts';
import type { VersionRow } from './statements.ts';
import type { ResourceCodec } from '../resource-codec.ts';
import { historyEntry, historyFrom, historyPageSql } from '../sql/history-sql.ts';

/** History newest first (the query's rows: sql/history-sql.ts). */
export function queryHistory(db: Db, codec: ResourceCodec, query: HistoryQuery): HistoryPage {
  const { from, args } = historyFrom(query);
  const total = (db.prepare(`SELECT count(*) AS n ${from}`).get(...args) as { n: number }).n;
  const rows = db.prepare(historyPageSql(from, 'v.content')).all(...args, query.count, query.offset) as VersionRow[];
  return {
    total,
    entries: rows.map((row) => historyEntry(row, row.content === null ? undefined : codec.decode(row.type, row.id, row.version, row.content))),
  };
}
