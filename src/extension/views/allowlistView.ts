// Sidebar "Allowlist": the policy's allow and deny entries, with inline add / edit / remove / toggle.
import * as vscode from 'vscode';
import type { Controller } from '../controller';
import type { Rule, RuleList } from '../../policy/types';
import { MessageItem, RefreshingTree } from './common';

export class RuleItem extends vscode.TreeItem {
  constructor(readonly rule: Rule) {
    super(rule.hostText + (rule.port ? `:${rule.port}` : ''), vscode.TreeItemCollapsibleState.None);
    const bits: string[] = [];
    if (rule.methods) bits.push(rule.methods.join(','));
    if (rule.paths) bits.push(rule.paths.join(' '));
    if (rule.auth) bits.push(`auth: ${rule.auth.scheme} ${rule.auth.secret}`);
    if (!rule.intercept) bits.push('no interception');
    if (rule.private) bits.push('private');
    if (rule.disabled) bits.push('disabled');
    this.description = bits.join(' · ');
    this.tooltip = `${rule.list}[${rule.index}] at line ${rule.pos.line}`;
    // What a screen reader says: the host and what the entry does, not only "allow[0] at line 20".
    this.accessibilityInformation = { label: `${rule.list === 'allow' ? 'Allowed' : 'Denied'} ${this.label}${this.description ? `, ${bits.join(', ')}` : ''}, line ${rule.pos.line}` };
    this.iconPath = new vscode.ThemeIcon(rule.disabled ? 'circle-outline' : rule.list === 'allow' ? 'check' : 'circle-slash');
    this.contextValue = `rule.${rule.list}${rule.disabled ? '.disabled' : ''}`;
    this.id = `${rule.list}:${rule.index}:${rule.hostText}`;
    this.command = { title: 'Show in policy', command: 'cagedAgent.revealRule', arguments: [this] };
  }
}

class GroupItem extends vscode.TreeItem {
  constructor(readonly list: RuleList, count: number) {
    super(list === 'allow' ? 'Allowed' : 'Denied', vscode.TreeItemCollapsibleState.Expanded);
    this.description = String(count);
    this.contextValue = `group.${list}`;
    this.id = `group:${list}`;
  }
}

export class AllowlistView extends RefreshingTree {
  constructor(private readonly ctl: Controller) {
    super(ctl.changes, 'allowlist', ['policy']);
  }

  getChildren(el?: vscode.TreeItem): vscode.TreeItem[] {
    const parse = this.ctl.policyParse;
    if (!el) {
      if (!parse) return [new MessageItem('No policy file yet — click to create one', undefined, 'new-file', { title: 'Open Policy', command: 'cagedAgent.openPolicy' })];
      if (!parse.policy) {
        return parse.errors.map(
          (e) => new MessageItem(`Line ${e.pos.line}: ${e.message}`, e.message, 'error', { title: 'Open Policy', command: 'cagedAgent.openPolicy', arguments: [e.pos.line] }),
        );
      }
      return [new GroupItem('allow', parse.policy.allow.length), new GroupItem('deny', parse.policy.deny.length)];
    }
    if (el instanceof GroupItem && parse?.policy) return parse.policy[el.list].map((r) => new RuleItem(r));
    return [];
  }
}
