// The temporary allows and denies the engine gives the proxy over the control channel (control.ts): in memory
// only, never in the policy file. Allows become rules after the file's own (policyState.setTemporary; the
// file's deny entries still win); denies refuse at once what would otherwise be held. One timer, for the next
// expiry. Every change makes the held requests be decided again (policyState.onChange → hold.reevaluate).
import { decide, liveEntries, nextExpiry, temporaryRule, type TemporaryEntry } from '../policy';
import type { Policy, Rule } from '../policy/types';
import type { Block } from './gate';
import type { PolicyState } from './policyState';
import { display } from './target';

/** At most this many temporary entries (an engine bug must not grow the proxy without bound). */
export const MAX_TEMPORARY = 500;

export class Temporaries {
  private entries: TemporaryEntry[] = [];
  /** The deny entries as allow rules of a table of their own: "matches" means "denied for now". */
  private denyTable: Policy | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly policy: PolicyState) {}

  list(): TemporaryEntry[] {
    return this.entries.slice();
  }

  /** Adds (or replaces, by id) entries; all are checked before any is taken. */
  add(add: TemporaryEntry[]): { ok: true } | { ok: false; error: string } {
    const byId = new Map(this.entries.map((e) => [e.id, e]));
    for (const e of add) {
      const r = temporaryRule(e, 0);
      if ('error' in r) return { ok: false, error: r.error };
      byId.set(e.id, { ...e });
    }
    if (byId.size > MAX_TEMPORARY) return { ok: false, error: `at most ${MAX_TEMPORARY} temporary entries can be in force at once` };
    this.apply([...byId.values()]);
    return { ok: true };
  }

  /** Removes the entries with these ids; returns how many there were. */
  remove(ids: string[]): number {
    const before = this.entries.length;
    this.apply(this.entries.filter((e) => !ids.includes(e.id)));
    return before - this.entries.length;
  }

  /** The temporary deny that refuses host:port now, as the block to answer. */
  deniedFor(host: string, port: number): Block | undefined {
    if (!this.denyTable) return undefined;
    const d = decide({ host, port }, this.denyTable);
    if (d.action !== 'allow' || !d.rule?.temporary) return undefined;
    return {
      reason: 'no-matching-rule',
      message: `The user denied ${display(host)} for now (temporary deny ${d.rule.temporary.id}); it can be revoked from the editor's sidebar or with "caged-agent revoke ${display(host)}".`,
      detail: 'denied-temporarily',
    };
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private apply(entries: TemporaryEntry[]): void {
    const now = Date.now();
    this.entries = liveEntries(entries, now);
    const allows: Rule[] = [];
    const denies: Rule[] = [];
    for (const e of this.entries) {
      const r = temporaryRule(e, (e.kind === 'allow' ? allows : denies).length);
      if ('error' in r) continue; // checked in add()
      (e.kind === 'allow' ? allows : denies).push(r);
    }
    this.denyTable = denies.length ? { version: 1, allow: denies, deny: [] } : undefined;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const next = nextExpiry(this.entries, now);
    if (next !== undefined) {
      this.timer = setTimeout(() => this.apply(this.entries), Math.min(next - now + 1, 2 ** 31 - 1));
      this.timer.unref?.();
    }
    this.policy.setTemporary(allows);
  }
}
