// What changed in the extension's state, coalesced: everything marked within a short window reaches the views,
// the diagnostics and the status bar as ONE notification carrying the kinds of change, so each redraws once per
// burst and only when its own data changed (an allowed request changes the counts, not the blocks or the policy).
// Also the counters the extension-host tests read to check that (cagedAgent._state).
import * as vscode from 'vscode';

/** cages: the cage list or a cage's state; stats: request counts; blocks: the blocked requests; policy: the parse or the policy file followed. */
export type ChangeKind = 'cages' | 'stats' | 'blocks' | 'policy';

export class Changes implements vscode.Disposable {
  private readonly pending = new Set<ChangeKind>();
  private timer: NodeJS.Timeout | undefined;
  private readonly emitter = new vscode.EventEmitter<ReadonlySet<ChangeKind>>();
  readonly onDidChange = this.emitter.event;
  /** How often something was done, by name ("tree.blocks", "policy.parses", …): for tests. */
  readonly counts = new Map<string, number>();

  constructor(private readonly delayMs = 50) {}

  mark(...kinds: ChangeKind[]): void {
    for (const k of kinds) this.pending.add(k);
    if (!this.timer) this.timer = setTimeout(() => this.flush(), this.delayMs);
  }

  /** Sends what is pending now (also what a timer would send later). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.size === 0) return;
    const kinds = new Set(this.pending);
    this.pending.clear();
    this.emitter.fire(kinds);
  }

  /** Calls fn once per notification that has one of `kinds`. */
  on(kinds: ChangeKind[], fn: () => void): vscode.Disposable {
    return this.onDidChange((k) => {
      if (kinds.some((x) => k.has(x))) fn();
    });
  }

  count(name: string): void {
    this.counts.set(name, (this.counts.get(name) ?? 0) + 1);
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.emitter.dispose();
  }
}
