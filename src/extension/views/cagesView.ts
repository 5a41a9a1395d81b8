// Sidebar "Cages": each running cage with state, workspace and request counts.
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Controller } from '../controller';
import type { CageInfo } from '../../engine/api';

export class CageItem extends vscode.TreeItem {
  constructor(readonly cage: CageInfo, ctl: Controller) {
    super(cage.id, vscode.TreeItemCollapsibleState.None);
    const s = ctl.stats.get(cage.id);
    const counts = s ? ` · ${s.allowed} allowed, ${s.blocked} blocked` : '';
    this.description = `${cage.state} · ${path.basename(cage.workspace)}${counts}`;
    this.tooltip = new vscode.MarkdownString(
      `**${cage.id}** — ${cage.state}\n\nWorkspace: \`${cage.workspace}\`\n\nImage: \`${cage.agentImage}\`\n\nNetwork: \`${cage.networkName}\`${s ? `\n\n${s.allowed} allowed, ${s.blocked} blocked` : ''}`,
    );
    this.iconPath = new vscode.ThemeIcon(
      cage.state === 'healthy' ? 'pass-filled' : cage.state === 'starting' ? 'loading~spin' : 'warning',
      cage.state === 'healthy' ? new vscode.ThemeColor('testing.iconPassed') : undefined,
    );
    this.contextValue = 'cage';
    this.id = `cage:${cage.id}`;
  }
}

class InfoItem extends vscode.TreeItem {
  constructor(label: string, tooltip?: string, icon = 'info') {
    super(label, vscode.TreeItemCollapsibleState.None);
    this.tooltip = tooltip;
    this.iconPath = new vscode.ThemeIcon(icon);
    this.contextValue = 'info';
  }
}

export class CagesView implements vscode.TreeDataProvider<vscode.TreeItem> {
  private readonly emitter = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.emitter.event;

  constructor(private readonly ctl: Controller) {
    ctl.onDidChange(() => this.emitter.fire());
  }

  getTreeItem(e: vscode.TreeItem): vscode.TreeItem {
    return e;
  }

  getChildren(): vscode.TreeItem[] {
    const ctl = this.ctl;
    if (ctl.dockerError) return [new InfoItem('Docker engine not reachable', ctl.dockerError, 'error')];
    // Running cages only; this workspace's cage first.
    const cages = ctl.cages.filter((c) => c.state !== 'stopped').sort((a, b) => Number(b.id === ctl.activeCageId) - Number(a.id === ctl.activeCageId));
    const items: vscode.TreeItem[] = cages.map((c) => new CageItem(c, ctl));
    if (ctl.starting && !ctl.cages.some((c) => c.id === ctl.activeCageId)) items.unshift(new InfoItem('Starting…', 'The cage is being started', 'loading~spin'));
    return items;
  }
}
