import { createHash } from 'node:crypto';

/**
 * A SHA-256 hash chain over records: each link covers the link before it and the record's bytes,
 * so changing, removing, inserting or reordering any record breaks every link from there on. The
 * first record follows 32 zero bytes.
 */
export const genesis: Buffer = Buffer.alloc(32);

/** The link of one audit record: its predecessor's link, when it was recorded, and its JSON exactly as stored. */
export function chainHash(previous: Buffer, recorded: string, event: string): Buffer {
  return createHash('sha256').update(previous).update(recorded).update('\n').update(event).digest();
}
