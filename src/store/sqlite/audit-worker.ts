/**
 * Appends audit records in a worker thread, to the audit file. Appending (an insert, page
 * encryption, a synced commit) for every request cost the request thread more than serving a read;
 * here it runs beside it. A batch is acknowledged once it is committed and synced.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { openEncrypted } from './open.ts';

interface AuditWorkerData {
  path: string;
  key: Uint8Array;
}

export interface AppendMessage {
  id: number;
  /** [recorded, serialized AuditEvent] */
  records: [string, string][];
}

const { path, key } = workerData as AuditWorkerData;
const db = openEncrypted(path, Buffer.from(key));
const insert = db.prepare<[string, string]>('INSERT INTO audit_log (recorded, event) VALUES (?, ?)');
const appendAll = db.transaction((records: [string, string][]) => {
  for (const [recorded, event] of records) insert.run(recorded, event);
});

parentPort!.on('message', (message: AppendMessage | 'stop') => {
  if (message === 'stop') {
    db.close();
    parentPort!.postMessage('stopped');
    return;
  }
  try {
    appendAll(message.records);
    parentPort!.postMessage({ id: message.id });
  } catch (err) {
    parentPort!.postMessage({ id: message.id, error: (err as { code?: string }).code ?? (err as Error).message });
  }
});
