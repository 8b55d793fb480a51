import type { HistoryEntry, HistoryPage, HistoryQuery, WriteMethod } from '../store.ts';
import type { ResourceCodec } from '../resource-codec.ts';
import type { Queryable } from './database.ts';
import type { BodyCache } from './body-cache.ts';
import { parseDateRange } from '../../fhir/datetime.ts';
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
export async function queryHistory(conn: Queryable, codec: ResourceCodec, query: HistoryQuery, bodies?: BodyCache): Promise<HistoryPage> {
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
  const from = `FROM resource_versions v JOIN resources r ON r.rid = v.rid ${where.length ? 'WHERE ' + where.join(' AND ') : ''}`;
  const [counted, rows] = await Promise.all([
    conn.query<{ n: number }>(`SELECT count(*) AS n ${from}`, args),
    conn.query<VersionRow>(`SELECT r.type, r.id, v.version, v.last_updated, v.deleted, v.method, v.content, v.sealed ${from} ORDER BY v.seq DESC LIMIT ? OFFSET ?`, [...args, query.count, query.offset]),
  ]);
  return { total: counted[0].n, entries: rows.map((row) => toHistoryEntry(row, codec, bodies)) };
}

function toHistoryEntry(row: VersionRow, codec: ResourceCodec, bodies: BodyCache | undefined): HistoryEntry {
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
