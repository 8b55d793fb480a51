/** Retry delays that double after each failure up to a ceiling, so a long outage costs a connection attempt a minute, not a storm. */
export class Backoff {
  private readonly min: number;
  private readonly max: number;
  private current: number;

  constructor(min = 1000, max = 60_000) {
    this.min = min;
    this.max = max;
    this.current = min;
  }

  /** The delay before the next attempt; the one after is twice as long. */
  next(): number {
    const delay = this.current;
    this.current = Math.min(this.current * 2, this.max);
    return delay;
  }

  reset(): void {
    this.current = this.min;
  }
}

/** Waits for `work` (its failure included) but no longer than `ms`: shutdown must not hang on a SIEM. */
export async function within(ms: number, work: Promise<unknown>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, Math.max(0, ms));
  });
  try {
    await Promise.race([work.then(() => {}, () => {}), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
