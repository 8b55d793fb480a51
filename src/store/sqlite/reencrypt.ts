import type { Db } from './open.ts';
import { UnreadableContentError, type ResourceCodec } from '../resource-codec.ts';
import type { ReencryptProgress } from '../store.ts';

interface VersionContent {
  seq: number;
  type: string;
  id: string;
  version: number;
  content: string | Uint8Array;
}

const batchSize = 500;

/**
 * Rewrites the stored versions not under the current keys, oldest first, one batch of `batchSize`
 * per call of `runBatch` (the caller runs each inside its write lock and lets requests in between).
 * The content each holds is unchanged, so nothing served or cached changes; only its sealing does.
 */
export async function reencryptVersions(
  db: Db, codec: ResourceCodec, runBatch: <T>(work: () => T) => Promise<T>, onProgress?: (p: ReencryptProgress) => void,
): Promise<ReencryptProgress> {
  const total = (db.prepare('SELECT count(*) FROM resource_versions WHERE content IS NOT NULL').pluck().get() as number);
  const next = db.prepare<[number, number], VersionContent>(
    `SELECT v.seq, v.type, r.id, v.version, v.content FROM resource_versions v JOIN resources r ON r.rid = v.rid
      WHERE v.seq > ? AND v.content IS NOT NULL ORDER BY v.seq LIMIT ?`,
  );
  const rewrite = db.prepare<[string | Buffer, number]>('UPDATE resource_versions SET content = ? WHERE seq = ?');
  const progress: ReencryptProgress = { examined: 0, total, rewritten: 0, unreadable: 0 };
  for (let after = 0; ;) {
    const done = await runBatch(() => {
      const rows = next.all(after, batchSize);
      for (const row of rows) {
        progress.examined++;
        let fresh: string | Buffer | undefined;
        try {
          fresh = codec.refreshed(row.type, row.id, row.version, row.content);
        } catch (err) {
          if (!(err instanceof UnreadableContentError)) throw err;
          progress.unreadable++;
          continue;
        }
        if (fresh === undefined) continue;
        rewrite.run(fresh, row.seq);
        progress.rewritten++;
      }
      if (rows.length > 0) after = rows[rows.length - 1].seq;
      return rows.length < batchSize;
    });
    onProgress?.({ ...progress });
    if (done) return progress;
  }
}

/** How many stored versions are stale (a scan: for status reports, not the request path). */
export function countStale(db: Db, codec: ResourceCodec): number {
  let n = 0;
  const rows = db.prepare<[], VersionContent>(
    'SELECT v.seq, v.type, r.id, v.version, v.content FROM resource_versions v JOIN resources r ON r.rid = v.rid WHERE v.content IS NOT NULL',
  ).iterate();
  for (const row of rows) if (codec.isStale(row.type, row.id, row.version, row.content)) n++;
  return n;
}
