// Held requests as the editor shows them (issue 17): one group per host:port from the proxy's `pending` events,
// gone at its `resolved` event (or when its time is up, should that event be lost), and the words of the
// notification, the Blocked Requests rows and the answer choices. Pure: no vscode, time passed in.
import { allowChoices, formatRemaining, idnNote, uploadRisk, type PendingGroup, type TemporaryEntry } from '../../policy';
import type { PendingEvent, ResolvedEvent } from '../../policy/events';
import type { AllowSpec } from '../../policy/types';

/** A group of held requests as the proxy reports it, with the key the editor files it under. */
export interface HeldGroup extends PendingGroup {
  key: string;
}

export function heldKey(host: string, port: number): string {
  return `${host}:${port}`;
}

export class PendingStore {
  private readonly groups = new Map<string, HeldGroup>();

  /** Applies a pending or resolved event; `isNew` for the first event of a group (the one to notify about). */
  apply(e: PendingEvent | ResolvedEvent): { group?: HeldGroup; isNew: boolean } {
    const key = heldKey(e.host, e.port);
    if (e.type === 'resolved') {
      this.groups.delete(key);
      return { isNew: false };
    }
    const isNew = !this.groups.has(key);
    const g: HeldGroup = { key, host: e.host, port: e.port, method: e.method, path: e.path, count: e.count, since: Date.parse(e.since), until: Date.parse(e.until) };
    this.groups.set(key, g);
    return { group: g, isNew };
  }

  get(key: string): HeldGroup | undefined {
    return this.groups.get(key);
  }

  delete(key: string): boolean {
    return this.groups.delete(key);
  }

  /** The groups still waiting at `now`, oldest first (a group past its time is dropped: nothing hangs in the view). */
  list(now: number): HeldGroup[] {
    for (const [k, g] of this.groups) if (g.until < now - 2000) this.groups.delete(k);
    return [...this.groups.values()].sort((a, b) => a.since - b.since);
  }

  /** Requests waiting at `now`. */
  waiting(now: number): number {
    return this.list(now).reduce((n, g) => n + g.count, 0);
  }

  clear(): void {
    this.groups.clear();
  }
}

/** A host as the views show it: without the port when it is the usual one (443, 80). */
export function shownHost(g: { host: string; port: number }): string {
  return g.port === 443 || g.port === 80 ? g.host : `${g.host}:${g.port}`;
}

/**
 * The notification: host, method, path and the count waiting, and the notes that apply: an upload host, an
 * internationalised name (its Unicode form, decoded by the caller, next to the punycode; mixed scripts flagged).
 */
export function heldMessage(g: HeldGroup, unicodeHost?: string): string {
  const n = g.count === 1 ? 'A request is' : `${g.count} requests are`;
  const notes = [uploadRisk(g.host), unicodeHost ? idnNote(g.host, unicodeHost) : undefined].filter(Boolean);
  return `Caged agent: ${n} waiting for your answer — ${g.method} ${shownHost(g)}${g.path}.${notes.map((x) => ` Careful: ${x}.`).join('')}`;
}

/** The Blocked Requests row: "2 waiting · GET /v1/x · 42 s left". */
export function heldDescription(g: HeldGroup, now: number): string {
  return `${g.count} waiting · ${g.method} ${g.path} · ${formatRemaining(g.until - now)} left`;
}

export type HeldAction = 'once' | 'hour' | 'session' | 'always' | 'deny';

/** One answer the "More…" quick pick offers: a rule (narrowest first) with a scope, or deny. */
export interface AnswerChoice {
  label: string;
  detail?: string;
  action: HeldAction;
  spec?: AllowSpec;
}

/** The notification's buttons, in order. */
export const HELD_BUTTONS: ReadonlyArray<{ title: string; action: HeldAction | 'more' }> = [
  { title: 'Allow once', action: 'once' },
  { title: 'Allow for 1 hour', action: 'hour' },
  { title: 'Allow always', action: 'always' },
  { title: 'Deny', action: 'deny' },
  { title: 'More…', action: 'more' },
];

/** The narrowest rule for a held group (what "Allow always" writes). */
export function narrowestSpec(g: Pick<HeldGroup, 'host' | 'port' | 'method' | 'path'>): AllowSpec | undefined {
  const connect = !g.method || g.method === 'CONNECT';
  return allowChoices({ host: g.host, port: g.port, method: connect ? undefined : g.method, path: connect ? undefined : g.path })[0]?.spec;
}

/** "More…": every rule (narrowest first) for once, 1 hour, the session and always, then deny for the session. */
export function answerChoices(g: HeldGroup): AnswerChoice[] {
  const out: AnswerChoice[] = [];
  const connect = !g.method || g.method === 'CONNECT';
  const choices = allowChoices({ host: g.host, port: g.port, method: connect ? undefined : g.method, path: connect ? undefined : g.path });
  const scopes: Array<[HeldAction, string]> = [['once', 'once'], ['hour', 'for 1 hour'], ['session', 'until the cage stops'], ['always', 'always (written to the policy file)']];
  for (const [action, words] of scopes) {
    for (const c of choices) {
      // A wildcard is a standing rule; "once" answers the waiting requests of this host only.
      if (action === 'once' && c.scope === 'parent') continue;
      out.push({ label: `${c.title} ${words}`, detail: c.risk, action, spec: c.spec });
    }
  }
  out.push({ label: `Deny ${shownHost(g)} until the cage stops`, action: 'deny' });
  return out;
}

/** A temporary entry as the sidebar shows it. */
export function temporaryDescription(e: TemporaryEntry, now: number): string {
  const what = [e.methods?.join(','), e.paths?.join(' ')].filter(Boolean).join(' ');
  return `${e.kind}${what ? ` ${what}` : ''} · ${e.expires ? `${formatRemaining(e.expires - now)} left` : 'until the cage stops'}`;
}
