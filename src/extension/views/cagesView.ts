// Sidebar "Cages": each running cage with state, workspace and request counts.
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Controller } from '../controller';
import type { CageInfo } from '../../engine/api';
import { MessageItem, RefreshingTree } from './common';

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

export class CagesView extends RefreshingTree {
  constructor(private readonly ctl: Controller) {
    super(ctl.onDidChange);
  }

  getChildren(): vscode.TreeItem[] {
    const ctl = this.ctl;
    if (ctl.dockerError) return [new MessageItem('Docker engine not reachable', ctl.dockerError, 'error')];
    // Running cages only; this workspace's cage first.
    const cages = ctl.cages.filter((c) => c.state !== 'stopped').sort((a, b) => Number(b.id === ctl.activeCageId) - Number(a.id === ctl.activeCageId));
    const items: vscode.TreeItem[] = cages.map((c) => new CageItem(c, ctl));
    if (ctl.starting && !ctl.cages.some((c) => c.id === ctl.activeCageId)) items.unshift(new MessageItem('Starting…', 'The cage is being started', 'loading~spin'));
    return items;
  }
}
