/**
 * The events a sink holds while its target is slow or away. Bounded, because an unreachable SIEM
 * must not grow the server's memory without end; when full the oldest go, since the trail in the
 * data dir keeps them and the newest are what someone watching the SIEM needs first.
 */
export class Backlog<T extends { length: number }> {
  private items: (T | undefined)[] = [];
  private head = 0;
  private droppedSince = 0;
  private size = 0;
  private readonly limit: number;
  private readonly maxSize: number;

  /** At most `limit` items and `maxSize` in total length (events naming a thousand resources are large). */
  constructor(limit: number, maxSize = 64 * 1024 * 1024) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError('a backlog holds at least one item');
    this.limit = limit;
    this.maxSize = maxSize;
  }

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    while (this.length > 0 && (this.length >= this.limit || this.size + item.length > this.maxSize)) {
      this.size -= this.items[this.head]!.length;
      this.items[this.head++] = undefined;
      this.droppedSince++;
    }
    this.items.push(item);
    this.size += item.length;
    this.compact();
  }

  /** The oldest items, at least one, as many as fit in `maxSize` (by their length) together. */
  take(maxSize: number): T[] {
    const out: T[] = [];
    let size = 0;
    while (this.length > 0) {
      const item = this.items[this.head]!;
      if (out.length > 0 && size + item.length > maxSize) break;
      out.push(item);
      size += item.length;
      this.size -= item.length;
      this.items[this.head++] = undefined;
    }
    this.compact();
    return out;
  }

  /** How many were dropped since the last call. */
  takeDropped(): number {
    const n = this.droppedSince;
    this.droppedSince = 0;
    return n;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
    this.size = 0;
  }

  // Shifting a 10,000-item array per event would be quadratic; drop the consumed front in bulk instead.
  private compact(): void {
    if (this.head === this.items.length) this.clear();
    else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}
