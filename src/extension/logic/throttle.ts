// Batching + rate limiting for "newly blocked host" notifications. Pure: time is passed in.

export interface NotifyBatch<T> {
  items: T[];
}

export interface ThrottleOptions {
  /** Wait this long after the first new item to collect more into one notification. */
  batchMs: number;
  /** At most one notification per this many ms. */
  minIntervalMs: number;
}

/**
 * Collects items; `due(now)` says when the next flush may happen, `flush(now)` returns the batch to show.
 * Duplicate keys inside one pending batch are merged.
 */
export class NotifyThrottle<T> {
  private pending = new Map<string, T>();
  private firstPendingAt = 0;
  private lastShownAt = -Infinity;

  constructor(private readonly opts: ThrottleOptions) {}

  /** A new rate limit (e.g. the setting changed); applies to the next flush. */
  setMinInterval(ms: number): void {
    this.opts.minIntervalMs = ms;
  }

  push(key: string, item: T, now: number): void {
    if (this.pending.size === 0) this.firstPendingAt = now;
    this.pending.set(key, item);
  }

  /** The time at which a flush should run, or undefined when nothing is pending. */
  due(): number | undefined {
    if (this.pending.size === 0) return undefined;
    return Math.max(this.firstPendingAt + this.opts.batchMs, this.lastShownAt + this.opts.minIntervalMs);
  }

  flush(now: number): NotifyBatch<T> | undefined {
    const due = this.due();
    if (due === undefined || now < due) return undefined;
    const items = [...this.pending.values()];
    this.pending.clear();
    this.lastShownAt = now;
    return { items };
  }

  get pendingCount(): number {
    return this.pending.size;
  }
}
