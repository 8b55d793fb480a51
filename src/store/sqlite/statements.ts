import type { Db } from './open.ts';
import type Database from 'better-sqlite3-multiple-ciphers';
import type { HistoryColumns, VersionColumns } from '../sql/history-sql.ts';

export interface CurrentRow extends VersionColumns {
  rid: number;
  /** JSON text, or sealed bytes (app-level encryption): see ResourceCodec. */
  content: string | Uint8Array | null;
}

export interface VersionRow extends HistoryColumns {
  content: string | Uint8Array | null;
}

/** Prepared once per connection: preparing is a large part of a point query's cost. */
export function prepareStatements(db: Db) {
  return {
    current: db.prepare<[string, string], CurrentRow>(
      `SELECT r.rid, r.type, r.id, r.version, r.last_updated, r.deleted, v.content
         FROM resources r JOIN resource_versions v ON v.seq = r.seq
        WHERE r.type = ? AND r.id = ?`,
    ),
    version: db.prepare<[string, string, number], VersionRow>(
      `SELECT r.type, r.id, v.version, v.last_updated, v.deleted, v.method, v.content
         FROM resources r JOIN resource_versions v ON v.rid = r.rid
        WHERE r.type = ? AND r.id = ? AND v.version = ?`,
    ),
    insertResource: db.prepare<[string, string, number, number, string, number]>(
      `INSERT INTO resources (type, id, version, seq, last_updated, deleted) VALUES (?, ?, ?, ?, ?, ?)`,
    ),
    updateResource: db.prepare<[number, number, string, number, number]>(
      `UPDATE resources SET version = ?, seq = ?, last_updated = ?, deleted = ? WHERE rid = ?`,
    ),
    insertVersion: db.prepare<[number, number, string, number, string, string, number, string | Buffer | null]>(
      `INSERT INTO resource_versions (seq, rid, type, version, last_updated, method, deleted, content)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    /** The newest version: its seq and time. Read inside the write transaction, so another process's writes count. */
    latest: db.prepare<[], { seq: number; last_updated: string }>(
      `SELECT seq, last_updated FROM resource_versions ORDER BY seq DESC LIMIT 1`,
    ),
  };
}

export type Statements = ReturnType<typeof prepareStatements>;
export type Statement = Database.Statement;
