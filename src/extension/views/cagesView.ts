// Sidebar "Cages": each running cage with state, workspace and request counts.
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Controller } from '../controller';
import type { CageInfo, ProtectedPath } from '../../engine/api';
import { MessageItem, RefreshingTree } from './common';

export class CageItem extends vscode.TreeItem {
  constructor(readonly cage: CageInfo, ctl: Controller) {
    // Named by its workspace folder (the id is in the description and tooltip).
    super(path.basename(cage.workspace) || cage.id, cage.protection ? vscode.TreeItemCollapsibleState.Collapsed : vscode.TreeItemCollapsibleState.None);
    const s = ctl.session.stats.get(cage.id);
    const counts = s ? ` · ${s.allowed} allowed, ${s.blocked} blocked` : '';
    this.description = `${cage.state} · ${cage.id}${counts}`;
    this.accessibilityInformation = { label: `Cage of ${this.label}, ${cage.state}${counts.replace(' · ', ', ')}` };
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

/** "Read-only for the agent (22)": what the cage protects in the workspace, under its cage. */
export class ProtectionItem extends vscode.TreeItem {
  constructor(readonly cage: CageInfo) {
    const p = cage.protection!;
    super(p.enabled ? `Read-only for the agent (${p.protected.length})` : 'Workspace protection OFF', p.enabled ? vscode.TreeItemCollapsibleState.Collapsed : vscode.TreeItemCollapsibleState.None);
    this.description = p.writable.length ? `writable by the policy: ${p.writable.join(', ')}` : undefined;
    this.tooltip = p.enabled
      ? 'Inside the cage these workspace paths are read-only mounts: the agent cannot change, replace, rename or shadow them. workspace.protect / workspace.writable in the policy change the list at the next start.'
      : 'This cage was started with the protection switched off (an engine option for tests): only the policy is read-only.';
    this.iconPath = new vscode.ThemeIcon(p.enabled ? 'lock' : 'unlock');
    this.contextValue = 'protection';
    this.id = `protection:${cage.id}`;
  }
}

export class ProtectedPathItem extends vscode.TreeItem {
  constructor(cage: CageInfo, p: ProtectedPath) {
    super(p.path + (p.kind === 'dir' && !p.placeholder ? '/' : ''), vscode.TreeItemCollapsibleState.None);
    this.description = p.why + (p.placeholder ? ' · empty placeholder until the cage stops' : '');
    this.tooltip = `${p.path}: ${p.why}${p.placeholder ? '\n\nIt did not exist: the cage created an empty folder here so it can be mounted read-only; it goes again when the cage stops (if still empty).' : ''}`;
    this.iconPath = new vscode.ThemeIcon(p.kind === 'dir' ? 'folder' : 'file');
    this.contextValue = 'protectedPath';
    this.id = `protected:${cage.id}:${p.path}`;
  }
}

/** The cages of other windows' workspaces, under one collapsed node. */
class OtherWorkspacesItem extends vscode.TreeItem {
  constructor(readonly cages: CageInfo[]) {
    super('Other workspaces', vscode.TreeItemCollapsibleState.Collapsed);
    this.description = String(cages.length);
    this.tooltip = 'Cages of other workspaces on this Docker engine (other windows, the CLI)';
    this.contextValue = 'otherWorkspaces';
    this.id = 'cages:other';
  }
}

export class CagesView extends RefreshingTree {
  constructor(private readonly ctl: Controller) {
    super(ctl.changes, 'cages', ['cages', 'stats']);
  }

  getChildren(el?: vscode.TreeItem): vscode.TreeItem[] {
    if (el instanceof CageItem) return el.cage.protection ? [new ProtectionItem(el.cage)] : [];
    if (el instanceof ProtectionItem) return el.cage.protection!.enabled ? el.cage.protection!.protected.map((p) => new ProtectedPathItem(el.cage, p)) : [];
    if (el instanceof OtherWorkspacesItem) return el.cages.map((c) => new CageItem(c, this.ctl));
    if (el) return [];
    const ctl = this.ctl;
    const s = ctl.session;
    if (s.dockerError) return [new MessageItem('Docker engine not reachable', s.dockerError, 'error')];
    // Running cages only: this workspace's first, the others under "Other workspaces".
    const running = ctl.cages.filter((c) => c.state !== 'stopped');
    const mine = running.filter((c) => c.id === ctl.activeCageId);
    const others = running.filter((c) => c.id !== ctl.activeCageId).sort((a, b) => path.basename(a.workspace).localeCompare(path.basename(b.workspace)));
    const items: vscode.TreeItem[] = mine.map((c) => new CageItem(c, ctl));
    if (others.length) items.push(new OtherWorkspacesItem(others));
    if (s.starting && !ctl.cages.some((c) => c.id === ctl.activeCageId)) items.unshift(new MessageItem('Starting…', 'The cage is being started', 'loading~spin'));
    return items;
  }
}
