/**
 * One time source per store that never goes backwards, even if the system clock steps back or
 * another process wrote later. Versions may share a millisecond (bulk loads write thousands a
 * second; strictly increasing times would run ahead of the real clock); history order comes from
 * the store's sequence, not from time.
 */
export class MonotonicClock {
  private last = 0;

  now(): string {
    const t = Math.max(Date.now(), this.last);
    this.last = t;
    return new Date(t).toISOString();
  }

  /** Never issue a time before one already stored (e.g. after the system clock stepped back). */
  notBefore(instant: string | undefined): void {
    if (instant) this.last = Math.max(this.last, Date.parse(instant));
  }
}
