// Ask instead of fail (onUnknown: ask): requests no rule matches wait here for the user's answer instead of
// failing at once. A held request is a paused client connection in this queue, nothing more: no timer of its
// own (one deadline timer per host:port group, for its oldest request), no polling. Requests to the same
// host:port share one group, one `pending` event (then at most one update a second) and one answer.
//
// Whatever changes what the policy says (a reload, a temporary allow or deny, an expiry) re-runs every held
// request through the gate as if it had just arrived: it goes upstream (intercepted, injected, logged), is
// refused, or is held again (keeping its place and its deadline). An answer "once" re-runs the requests of one
// group with a one-time rule on top of the policy. Every held request gets its one decision event when it is
// released or refused (conn.ts, record.ts); past askTimeout it gets a 403 "no-decision".
import type { Policy } from '../policy/types';
import { askTimeoutOf, asks, type PendingGroup } from '../policy';
import type { EventLog } from './events';
import type { Block } from './gate';
import { display } from './target';

/** The most requests held at once, and for one host:port. Past them a request is refused at once (no-decision). */
export const HOLD_LIMITS = { total: 1000, perHost: 250 };

/** Pending-event updates for one group come at most this often (ms). */
const UPDATE_MS = 1000;

export type RetryOutcome = 'held' | 'allowed' | 'denied';

/** One held request, as conn.ts hands it to the queue. */
export interface HeldRequest {
  host: string;
  port: number;
  method: string;
  /** Normalised, without the query. */
  path: string;
  /** Epoch ms when it gives up. */
  due: number;
  /** Decide it again (it was taken out of the queue first), under the policy in force or `once` on top of it. */
  retry(once?: Policy): RetryOutcome;
  /** Answer it with this block. */
  refuse(b: Block): void;
}

interface Group {
  key: string;
  host: string;
  port: number;
  method: string;
  path: string;
  since: number;
  /** In arrival order, so the oldest deadline is first. */
  items: HeldRequest[];
  deadline?: NodeJS.Timeout;
  deadlineAt: number;
  lastReport: number;
  reported: number;
  update?: NodeJS.Timeout;
}

export function groupKey(host: string, port: number): string {
  return `${host}:${port}`;
}

/** The block of a request nobody answered in time. */
export function noDecisionBlock(host: string, seconds: number): Block {
  return {
    reason: 'no-decision',
    message: `Nobody answered within ${seconds} s whether the agent may reach ${display(host)}; the user can allow it from the editor's notification or with "caged-agent allow ${display(host)}", then retry.`,
    detail: 'timeout',
  };
}

/** The block of a request that could not be held: too many are waiting already. */
export function holdFullBlock(host: string, perHost: boolean, limit: number): Block {
  return {
    reason: 'no-decision',
    message: `${limit} requests ${perHost ? `to ${display(host)} ` : ''}are already waiting for an answer (the most the cage holds${perHost ? ' for one host' : ''}), so this one was refused at once; answer the waiting ones, then retry.`,
    detail: 'hold-full',
  };
}

export class HoldQueue {
  private readonly groups = new Map<string, Group>();
  private total = 0;

  constructor(
    private readonly log: EventLog,
    private readonly policy: () => Policy | undefined,
    private readonly limits = HOLD_LIMITS,
  ) {}

  /** The policy in force asks (onUnknown: ask). */
  get asking(): boolean {
    return asks(this.policy());
  }

  /** Seconds a request held now waits. */
  get timeoutSeconds(): number {
    return askTimeoutOf(this.policy());
  }

  get size(): number {
    return this.total;
  }

  /** Holds `r`; returns the block to answer instead when the queue is full. */
  hold(r: HeldRequest): Block | undefined {
    const key = groupKey(r.host, r.port);
    let g = this.groups.get(key);
    if (this.total >= this.limits.total) return holdFullBlock(r.host, false, this.limits.total);
    if (g && g.items.length >= this.limits.perHost) return holdFullBlock(r.host, true, this.limits.perHost);
    const now = Date.now();
    if (!g) {
      g = { key, host: r.host, port: r.port, method: r.method, path: r.path, since: now, items: [], deadlineAt: 0, lastReport: 0, reported: 0 };
      this.groups.set(key, g);
    }
    g.items.push(r);
    this.total++;
    this.arm(g);
    this.report(g);
    return undefined;
  }

  /** The client of `r` left while it was held. */
  drop(r: HeldRequest): void {
    const g = this.groups.get(groupKey(r.host, r.port));
    if (!g) return;
    const i = g.items.indexOf(r);
    if (i < 0) return;
    g.items.splice(i, 1);
    this.total--;
    if (g.items.length === 0) return this.resolve(g, 'gone', 1);
    this.arm(g);
    this.report(g);
  }

  list(): PendingGroup[] {
    return [...this.groups.values()].map((g) => ({ host: g.host, port: g.port, method: g.method, path: g.path, count: g.items.length, since: g.since, until: g.items[0]?.due ?? g.since }));
  }

  /** Decides every held request again (the policy or the temporary rules changed). */
  reevaluate(): void {
    for (const g of [...this.groups.values()]) this.retryGroup(g, undefined);
  }

  /**
   * Answers the requests waiting for host (and port, when given) with the policy `once(port)` gives for
   * their port (the one-time rule on top of the policy in force): each is decided again under it. Returns how many were waiting.
   */
  once(host: string, port: number | undefined, once: (port: number) => Policy): number {
    let n = 0;
    for (const g of this.matching(host, port)) n += this.retryGroup(g, once(g.port));
    return n;
  }

  /** Answers the requests waiting for host (and port) with `b`. Returns how many were waiting. */
  refuse(host: string, port: number | undefined, b: Block): number {
    let n = 0;
    for (const g of this.matching(host, port)) {
      const items = this.take(g);
      n += items.length;
      for (const r of items) r.refuse(b);
      this.resolve(g, 'denied', items.length);
    }
    return n;
  }

  /** Refuses everything still held (the proxy shuts down). */
  close(): void {
    for (const g of [...this.groups.values()]) {
      const items = this.take(g);
      for (const r of items) r.refuse(noDecisionBlock(r.host, this.timeoutSeconds));
      this.resolve(g, 'timeout', items.length);
    }
  }

  private matching(host: string, port: number | undefined): Group[] {
    return [...this.groups.values()].filter((g) => g.host === host && (port === undefined || g.port === port));
  }

  /** Takes every request out of a group (the group itself stays until resolve, so re-held ones rejoin it). */
  private take(g: Group): HeldRequest[] {
    const items = g.items;
    g.items = [];
    this.total -= items.length;
    return items;
  }

  private retryGroup(g: Group, once: Policy | undefined): number {
    const items = this.take(g);
    let allowed = 0;
    let denied = 0;
    for (const r of items) {
      const o = r.retry(once);
      if (o === 'allowed') allowed++;
      else if (o === 'denied') denied++;
    }
    if (g.items.length === 0) this.resolve(g, allowed >= denied ? 'allowed' : 'denied', allowed + denied);
    else if (allowed + denied > 0) {
      this.arm(g);
      this.report(g);
    }
    return items.length;
  }

  /** The group's one deadline timer, for its oldest request. */
  private arm(g: Group): void {
    const first = g.items[0];
    if (!first) return;
    if (g.deadline && g.deadlineAt === first.due) return;
    if (g.deadline) clearTimeout(g.deadline);
    g.deadlineAt = first.due;
    g.deadline = setTimeout(() => this.expire(g), Math.max(0, first.due - Date.now()));
    g.deadline.unref?.();
  }

  private expire(g: Group): void {
    g.deadline = undefined;
    const now = Date.now();
    let n = 0;
    while (g.items.length && g.items[0].due <= now + 5) {
      const r = g.items.shift()!;
      this.total--;
      n++;
      r.refuse(noDecisionBlock(r.host, this.timeoutSeconds));
    }
    if (g.items.length === 0) return this.resolve(g, 'timeout', n);
    this.arm(g);
    this.report(g);
  }

  /** The group's pending event: at once for a new group, then at most once a second. */
  private report(g: Group): void {
    if (g.reported === g.items.length) return;
    const now = Date.now();
    if (g.lastReport && now - g.lastReport < UPDATE_MS) {
      g.update ??= setTimeout(() => {
        g.update = undefined;
        if (this.groups.get(g.key) === g && g.items.length) this.report(g);
      }, UPDATE_MS - (now - g.lastReport));
      g.update.unref?.();
      return;
    }
    g.lastReport = now;
    g.reported = g.items.length;
    const log = this.log;
    log.emit({ time: log.now(), type: 'pending', host: display(g.host), port: g.port, method: g.method, path: g.path, count: g.items.length, since: new Date(g.since).toISOString(), until: new Date(g.items[0].due).toISOString() });
  }

  private resolve(g: Group, outcome: 'allowed' | 'denied' | 'timeout' | 'gone', count: number): void {
    if (g.deadline) clearTimeout(g.deadline);
    if (g.update) clearTimeout(g.update);
    this.groups.delete(g.key);
    const log = this.log;
    log.emit({ time: log.now(), type: 'resolved', host: display(g.host), port: g.port, outcome, count });
  }
}
