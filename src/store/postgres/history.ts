import type { HistoryEntry, HistoryPage, HistoryQuery, WriteMethod } from '../store.ts';
import type { ResourceCodec } from '../resource-codec.ts';
import type { Queryable } from './database.ts';
import type { Bodies } from './body-cache.ts';
import { historyFrom } from '../sql/history-sql.ts';
import { decodeBody } from './search.ts';

interface VersionRow {
  type: string;
  id: string;
  version: number;
  last_updated: string;
  deleted: number;
  method: string;
  content: string | null;
  sealed: Buffer | null;
}

/** History newest first, as the embedded store's (sqlite/history.ts), on the same columns. */
export async function queryHistory(conn: Queryable, codec: ResourceCodec, query: HistoryQuery, bodies?: Bodies): Promise<HistoryPage> {
  const { from, args } = historyFrom(query);
  const [counted, rows] = await Promise.all([
    conn.query<{ n: number }>(`SELECT count(*) AS n ${from}`, args),
    conn.query<VersionRow>(`SELECT r.type, r.id, v.version, v.last_updated, v.deleted, v.method, v.content, v.sealed ${from} ORDER BY v.seq DESC LIMIT ? OFFSET ?`, [...args, query.count, query.offset]),
  ]);
  return { total: counted[0].n, entries: rows.map((row) => toHistoryEntry(row, codec, bodies)) };
}

function toHistoryEntry(row: VersionRow, codec: ResourceCodec, bodies: Bodies | undefined): HistoryEntry {
  const content = row.sealed ?? row.content;
  return {
    resourceType: row.type,
    id: row.id,
    versionId: String(row.version),
    lastUpdated: row.last_updated,
    deleted: row.deleted === 1,
    json: content === null ? undefined : decodeBody(codec, bodies, row.type, row.id, row.version, content),
    method: row.method as WriteMethod,
  };
}
