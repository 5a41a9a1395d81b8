// Sidebar "Blocked Requests": requests waiting for an answer first (with a countdown; clicking answers), the
// temporary allows and denies (time left, revoke), then past blocks grouped by host (count, last seen,
// methods/paths seen); clicking a block offers the allow choices.
import * as vscode from 'vscode';
import type { Controller } from '../controller';
import type { TemporaryEntry } from '../../policy';
import { reasonWords, type BlockGroup } from '../logic/blocks';
import { heldDescription, shownHost, temporaryDescription, type HeldGroup } from '../logic/pending';
import { RefreshingTree } from './common';

export class BlockItem extends vscode.TreeItem {
  constructor(readonly group: BlockGroup) {
    super(shownHost(group), vscode.TreeItemCollapsibleState.Collapsed);
    const last = new Date(group.lastSeen).toLocaleTimeString();
    this.description = `${group.count}× · ${group.reason} · ${last}`;
    this.tooltip = `Blocked ${group.count === 1 ? 'once' : `${group.count} times`}, last at ${last}: ${reasonWords(group.reason)} (${group.reason})\nClick to choose what to allow.`;
    this.accessibilityInformation = { label: `Blocked ${this.label}, ${group.count === 1 ? 'once' : `${group.count} times`}, last at ${last}: ${reasonWords(group.reason)}` };
    this.iconPath = new vscode.ThemeIcon('circle-slash', new vscode.ThemeColor('problemsWarningIcon.foreground'));
    this.contextValue = 'blocked';
    this.id = `blocked:${group.key}`;
    this.command = { title: 'Allow…', command: 'cagedAgent.showBlocked', arguments: [group.key] };
  }
}

export class HeldItem extends vscode.TreeItem {
  constructor(readonly held: HeldGroup, now: number) {
    super(shownHost(held), vscode.TreeItemCollapsibleState.None);
    this.description = heldDescription(held, now);
    this.tooltip = `${held.count} request(s) to ${held.host}:${held.port} wait for your answer (first ${held.method} ${held.path}).\nClick to answer.`;
    this.iconPath = new vscode.ThemeIcon('watch', new vscode.ThemeColor('problemsWarningIcon.foreground'));
    this.contextValue = 'held';
    this.id = `held:${held.key}`;
    this.command = { title: 'Answer…', command: 'cagedAgent.answerHeld', arguments: [held.key, 'more'] };
  }
}

export class TemporaryItem extends vscode.TreeItem {
  constructor(readonly entry: TemporaryEntry, now: number) {
    super(entry.host, vscode.TreeItemCollapsibleState.None);
    this.description = temporaryDescription(entry, now);
    this.tooltip = `Temporary ${entry.kind} ${entry.id} (not in the policy file). Revoke it with the button.`;
    this.iconPath = new vscode.ThemeIcon(entry.kind === 'allow' ? 'pass' : 'circle-slash');
    this.contextValue = 'temporary';
    this.id = `temporary:${entry.id}`;
  }
}

class DetailItem extends vscode.TreeItem {
  constructor(label: string, description: string) {
    super(label, vscode.TreeItemCollapsibleState.None);
    this.description = description;
    this.contextValue = 'blocked.detail';
  }
}

export class BlocksView extends RefreshingTree implements vscode.Disposable {
  /** Ticks once a second while something waits or a temporary entry runs out: the countdowns move. */
  private readonly ticker: NodeJS.Timeout;

  constructor(private readonly ctl: Controller) {
    super(ctl.changes, 'blocks', ['blocks']);
    this.ticker = setInterval(() => {
      const now = Date.now();
      if (ctl.session.pending.list(now).length || ctl.session.temporaries.some((e) => e.expires)) ctl.changes.mark('blocks', 'stats');
    }, 1000);
  }

  dispose(): void {
    clearInterval(this.ticker);
  }

  getChildren(el?: vscode.TreeItem): vscode.TreeItem[] {
    if (!el) {
      const now = Date.now();
      const s = this.ctl.session;
      s.temporaries = s.temporaries.filter((e) => !e.expires || e.expires > now);
      return [...s.pending.list(now).map((g) => new HeldItem(g, now)), ...s.temporaries.map((e) => new TemporaryItem(e, now)), ...s.blocks.list().map((g) => new BlockItem(g))];
    }
    if (el instanceof BlockItem) {
      const g = el.group;
      const methods = [...g.methods.entries()].map(([m, n]) => `${m} ×${n}`).join(', ');
      return [new DetailItem('methods', methods), ...g.paths.slice(0, 10).map((p) => new DetailItem(p, 'path'))];
    }
    return [];
  }
}
