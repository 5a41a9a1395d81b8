// What the three sidebar views share: a provider that redraws once per coalesced change of its own kinds of
// data (changes.ts), counted for the tests, and a message row.
import * as vscode from 'vscode';
import type { ChangeKind, Changes } from '../changes';

export abstract class RefreshingTree implements vscode.TreeDataProvider<vscode.TreeItem> {
  private readonly emitter = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.emitter.event;

  constructor(changes: Changes, name: string, kinds: ChangeKind[]) {
    changes.on(kinds, () => {
      changes.count(`tree.${name}`);
      this.emitter.fire();
    });
  }

  getTreeItem(e: vscode.TreeItem): vscode.TreeItem {
    return e;
  }

  abstract getChildren(el?: vscode.TreeItem): vscode.TreeItem[];
}

/** A row that only says something (an error, "starting…", "no policy yet"), optionally with a command. */
export class MessageItem extends vscode.TreeItem {
  constructor(label: string, tooltip: string | undefined, icon: string, command?: vscode.Command) {
    super(label, vscode.TreeItemCollapsibleState.None);
    this.tooltip = tooltip;
    this.iconPath = new vscode.ThemeIcon(icon);
    this.command = command;
    this.contextValue = 'message';
  }
}
