/**
 * One time source per store, strictly increasing at millisecond precision: two versions never
 * share a lastUpdated, so `_since`, `_at` and history paging order are exact.
 */
export class MonotonicClock {
  private last = 0;

  now(): string {
    const t = Math.max(Date.now(), this.last + 1);
    this.last = t;
    return new Date(t).toISOString();
  }

  /** Never issue a time at or before one already stored (e.g. after the system clock stepped back). */
  advancePast(instant: string | undefined): void {
    if (instant) this.last = Math.max(this.last, Date.parse(instant));
  }
}
