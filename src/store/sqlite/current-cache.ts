import type { Statement } from './statements.ts';
import type { StoredResource } from '../store.ts';

/**
 * Current versions recently read, so a resource read again is served without a query. It is only
 * ever right because it is emptied whenever the file changed: `PRAGMA data_version` on the reading
 * connection moves with every commit by any other connection (this store's writer, another
 * process), and costs a fraction of the query it saves. Bounded by the bytes of JSON it holds.
 */
export class CurrentCache {
  private readonly dataVersion: Statement;
  private readonly maxBytes: number;
  private entries = new Map<string, StoredResource>();
  private bytes = 0;
  private version: unknown;

  constructor(dataVersion: Statement, maxBytes: number) {
    this.dataVersion = dataVersion;
    this.maxBytes = maxBytes;
  }

  get(resourceType: string, id: string): StoredResource | undefined {
    const v = this.dataVersion.get();
    if (v !== this.version) {
      this.version = v;
      this.entries = new Map();
      this.bytes = 0;
      return undefined;
    }
    return this.entries.get(key(resourceType, id));
  }

  set(stored: StoredResource): void {
    const size = stored.json?.length ?? 0;
    if (size * 4 > this.maxBytes) return;
    const k = key(stored.resourceType, stored.id);
    if (this.entries.has(k)) return;
    // Oldest first out: a Map iterates in insertion order.
    while (this.bytes + size > this.maxBytes) {
      const oldest = this.entries.keys().next().value!;
      this.bytes -= this.entries.get(oldest)!.json?.length ?? 0;
      this.entries.delete(oldest);
    }
    this.entries.set(k, Object.freeze(stored));
    this.bytes += size;
  }
}

function key(resourceType: string, id: string): string {
  return `${resourceType}/${id}`;
}
