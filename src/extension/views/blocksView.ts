// Sidebar "Blocked Requests": grouped by host (count, last seen, methods/paths seen); clicking offers the allow choices.
import * as vscode from 'vscode';
import type { Controller } from '../controller';
import { reasonWords, type BlockGroup } from '../logic/blocks';
import { RefreshingTree } from './common';

export class BlockItem extends vscode.TreeItem {
  constructor(readonly group: BlockGroup) {
    super(group.port === 443 || group.port === 80 ? group.host : `${group.host}:${group.port}`, vscode.TreeItemCollapsibleState.Collapsed);
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

class DetailItem extends vscode.TreeItem {
  constructor(label: string, description: string) {
    super(label, vscode.TreeItemCollapsibleState.None);
    this.description = description;
    this.contextValue = 'blocked.detail';
  }
}

export class BlocksView extends RefreshingTree {
  constructor(private readonly ctl: Controller) {
    super(ctl.changes, 'blocks', ['blocks']);
  }

  getChildren(el?: vscode.TreeItem): vscode.TreeItem[] {
    if (!el) return this.ctl.session.blocks.list().map((g) => new BlockItem(g));
    if (el instanceof BlockItem) {
      const g = el.group;
      const methods = [...g.methods.entries()].map(([m, n]) => `${m} ×${n}`).join(', ');
      return [new DetailItem('methods', methods), ...g.paths.slice(0, 10).map((p) => new DetailItem(p, 'path'))];
    }
    return [];
  }
}
