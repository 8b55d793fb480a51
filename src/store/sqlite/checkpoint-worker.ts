/**
 * Runs in a worker thread beside the store: copies committed WAL pages back into the database file
 * (a passive checkpoint, which never blocks the writer or readers). A checkpoint decrypts and
 * re-encrypts every page it copies and syncs both files; on the writer's thread that stalled every
 * request behind the commit that crossed the threshold, here it uses another core.
 *
 * Under steady writes a passive checkpoint never catches up with the last commit, and the WAL only
 * restarts from its beginning once everything in it has been copied. So when the WAL passes
 * `restartAtPages`, a RESTART checkpoint holds off writers just long enough to copy the remainder
 * (the passive rounds did the rest), and the next commit starts the WAL afresh.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { openEncrypted } from './open.ts';

interface CheckpointWorkerData {
  path: string;
  key: Uint8Array;
  intervalMs: number;
  restartAtPages: number;
}

const { path, key, intervalMs, restartAtPages } = workerData as CheckpointWorkerData;
const db = openEncrypted(path, Buffer.from(key), { callerSyncsCommits: true });
db.pragma('wal_autocheckpoint = 0');
const passive = db.prepare<[], CheckpointResult>('PRAGMA wal_checkpoint(PASSIVE)');
const restart = db.prepare<[], CheckpointResult>('PRAGMA wal_checkpoint(RESTART)');

/** What wal_checkpoint reports: busy, frames in the WAL, frames copied into the database. */
interface CheckpointResult {
  busy: number;
  log: number;
  checkpointed: number;
}

function run(): void {
  try {
    const r = passive.get();
    if (r && r.log >= restartAtPages) {
      // RESTART waits for readers to finish while it blocks writers: with a long reader (an online
      // backup) that stalled every write for the busy timeout. Tried without waiting instead; the next round retries.
      db.pragma('busy_timeout = 0');
      try {
        restart.get();
      } finally {
        db.pragma('busy_timeout = 5000');
      }
    }
  } catch (err) {
    // Busy or locked: the next round retries. Anything else is reported; the WAL keeps the data.
    const code = (err as { code?: string }).code;
    if (code !== 'SQLITE_BUSY' && code !== 'SQLITE_LOCKED') parentPort?.postMessage({ error: code ?? String(err) });
  }
}

const timer = setInterval(run, intervalMs);
parentPort?.on('message', (message: unknown) => {
  if (message === 'checkpoint') run();
  if (message === 'stop') {
    clearInterval(timer);
    run();
    db.close();
    parentPort?.postMessage('stopped');
  }
});
