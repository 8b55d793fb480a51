import type { HistoryPage, HistoryQuery } from '../store.ts';
import type { ResourceCodec } from '../resource-codec.ts';
import type { Queryable } from './database.ts';
import type { Bodies } from './body-cache.ts';
import { historyEntry, historyFrom, historyPageSql, type HistoryColumns } from '../sql/history-sql.ts';
import { decodeBody } from './search.ts';

interface VersionRow extends HistoryColumns {
  content: string | null;
  sealed: Buffer | null;
}

/** History newest first, as the embedded store's (sqlite/history.ts), on the same columns. */
export async function queryHistory(conn: Queryable, codec: ResourceCodec, query: HistoryQuery, bodies?: Bodies): Promise<HistoryPage> {
  const { from, args } = historyFrom(query);
  const [counted, rows] = await Promise.all([
    conn.query<{ n: number }>(`SELECT count(*) AS n ${from}`, args),
    conn.query<VersionRow>(historyPageSql(from, 'v.content, v.sealed'), [...args, query.count, query.offset]),
  ]);
  return {
    total: counted[0].n,
    entries: rows.map((row) => {
      const content = row.sealed ?? row.content;
      return historyEntry(row, content === null ? undefined : decodeBody(codec, bodies, row.type, row.id, row.version, content));
    }),
  };
}
