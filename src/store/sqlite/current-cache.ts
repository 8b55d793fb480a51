import type { Statement } from './statements.ts';
import type { StoredResource } from '../store.ts';

/**
 * Current versions recently read, so a resource read again is served without a query. It is only
 * ever right because it is emptied whenever the file changes: by this store's own commits
 * (`invalidate`, called as each commit lands) and by any other process's, which
 * `PRAGMA data_version` on the reading connection reveals. That pragma is checked once per turn of
 * the event loop, not per read: a read then reflects every commit that completed before the turn
 * began, and a client that saw another process's commit acknowledged can only ask in a later turn.
 * Bounded by the bytes of JSON it holds.
 */
export class CurrentCache {
  private readonly dataVersion: Statement;
  private readonly maxBytes: number;
  private entries = new Map<string, StoredResource>();
  private bytes = 0;
  private version: unknown;
  private outside = 0;
  private checkedThisTurn = false;
  private readonly nextTurn = () => {
    this.checkedThisTurn = false;
  };

  constructor(dataVersion: Statement, maxBytes: number) {
    this.dataVersion = dataVersion;
    this.maxBytes = maxBytes;
  }

  get(resourceType: string, id: string): StoredResource | undefined {
    if (!this.checkedThisTurn && this.checkFile()) return undefined;
    return this.entries.get(key(resourceType, id));
  }

  /**
   * Counts the commits of other connections to the file (another process's), found by the same
   * rules as for cached reads: with this store's own commits (which it counts by type), what is
   * derived from the store knows when to be derived again.
   */
  outsideCommits(): number {
    if (!this.checkedThisTurn) this.checkFile();
    return this.outside;
  }

  /** True when another commit is found (and everything cached was forgotten). */
  private checkFile(): boolean {
    this.checkedThisTurn = true;
    setImmediate(this.nextTurn);
    const v = this.dataVersion.get();
    if (v === this.version) return false;
    this.version = v;
    this.outside++;
    this.clear();
    return true;
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

  /**
   * This store committed: what was cached is forgotten, and the file's new version is taken as its
   * own doing, unless `others` says another process committed too since the last commit.
   */
  invalidate(others: boolean): void {
    this.clear();
    if (others) this.outside++;
    this.version = this.dataVersion.get();
    this.checkedThisTurn = false;
  }

  private clear(): void {
    if (this.entries.size > 0) this.entries = new Map();
    this.bytes = 0;
  }
}

function key(resourceType: string, id: string): string {
  return `${resourceType}/${id}`;
}
