/**
 * Appends audit records in a worker thread, to the audit file. Appending (an insert, page
 * encryption, a synced commit) for every request cost the request thread more than serving a read;
 * here it runs beside it. A batch is acknowledged once it is committed and synced.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { openEncrypted } from './open.ts';
import { chainHash } from '../../crypto/hash-chain.ts';
import { auditHead, auditIndexMaxLag, auditIndexStretch, indexExisting, indexedUpto } from './audit-schema.ts';

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
const link = db.prepare<[number, Buffer]>('INSERT INTO audit_chain (seq, hash) VALUES (?, ?)');
// The chain goes on from the last link in the file (the store chained any older records on open).
let head: Buffer = auditHead(db).head;
let indexed = indexedUpto(db);
let first = 0;
const appendAll = db.transaction((records: [string, string][]): Buffer => {
  let previous = head;
  first = 0;
  for (const [recorded, event] of records) {
    const seq = Number(insert.run(recorded, event).lastInsertRowid);
    first ||= seq;
    previous = chainHash(previous, recorded, event);
    link.run(seq, previous);
  }
  return previous;
});

parentPort!.on('message', (message: AppendMessage | 'stop') => {
  if (message === 'stop') {
    if (idle) clearTimeout(idle);
    db.close();
    parentPort!.postMessage('stopped');
    return;
  }
  try {
    // The head moves on only once the batch is committed.
    head = appendAll(message.records);
    parentPort!.postMessage({ id: message.id, first });
  } catch (err) {
    parentPort!.postMessage({ id: message.id, error: (err as { code?: string }).code ?? (err as Error).message });
    return;
  }
  indexIfDue(first + message.records.length - 1);
});

/**
 * Writes search keys when appends pause (a quarter second without one), a stretch per turn so an
 * append arriving meanwhile waits for one stretch at most; at once when too many records wait.
 */
let idle: NodeJS.Timeout | undefined;
function indexIfDue(last: number): void {
  if (idle) clearTimeout(idle);
  if (last - indexed >= auditIndexMaxLag) indexStretch();
  else idle = setTimeout(indexStretch, 250);
}

function indexStretch(): void {
  idle = undefined;
  try {
    const n = indexExisting(db, auditIndexStretch);
    indexed = indexedUpto(db);
    if (n === auditIndexStretch) idle = setTimeout(indexStretch, 0);
  } catch {
    // The records are committed and chained; only finding them by key waits for the next turn.
  }
}
