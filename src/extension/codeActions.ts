// Quick fixes on "blocked host" diagnostics: allow exactly this host, allow *.parent (when sensible),
// allow only this method/path prefix; for a private-address block, let the rule reach private addresses.
// A code action's command is one of its own (cagedAgent.applyFix.<id of the fix>), registered with the fix: VS Code
// keeps the arguments of an extension's code-action commands in a cache that it clears when the actions are
// recomputed, so a menu left open across a refresh would run a command that no longer exists ("Actual command
// not found"). Such an id stays registered, its command holding the fix; when picked it re-decides against the
// policy of that moment (Controller.applyFixFor).
import * as vscode from 'vscode';
import { BLOCKED_SCHEME } from './blockedDocument';
import type { Controller } from './controller';
import { DIAGNOSTIC_SOURCE, UNMATCHED_SUMMARY_CODE, type PolicyDiagnostics } from './diagnostics';
import type { FixPayload } from './logic/fixes';

const PREFIX = 'cagedAgent.applyFix.';
/** How many fix commands stay registered (oldest dropped first): far more than a menu ever shows. */
const MAX_REGISTERED = 1000;

/** The command id of a fix: the same fix always gets the same id (the payload itself is handed over as data). */
export function encodeFix(p: FixPayload): string {
  return PREFIX + Buffer.from(JSON.stringify(p), 'utf8').toString('base64url');
}

export class AllowQuickFixes implements vscode.CodeActionProvider, vscode.Disposable {
  static readonly kinds = [vscode.CodeActionKind.QuickFix];
  private readonly registered = new Map<string, vscode.Disposable>();

  constructor(
    private readonly ctl: Controller,
    private readonly diagnostics: PolicyDiagnostics,
  ) {}

  provideCodeActions(doc: vscode.TextDocument, _range: vscode.Range | vscode.Selection, context: vscode.CodeActionContext): vscode.CodeAction[] {
    const actions: vscode.CodeAction[] = [];
    for (const d of context.diagnostics) {
      if (d.source === DIAGNOSTIC_SOURCE && d.code === UNMATCHED_SUMMARY_CODE) {
        const a = new vscode.CodeAction('Show the blocked requests and their fixes', vscode.CodeActionKind.QuickFix);
        a.diagnostics = [d];
        a.command = { title: a.title, command: 'cagedAgent.showBlockedDocument' };
        actions.push(a);
        continue;
      }
      const g = this.diagnostics.groupFor(d);
      if (!g) continue;
      // The Blocked requests document is re-read after each change: while its text is older than the diagnostics,
      // a line may show another host; offer nothing rather than another host's fixes.
      if (doc.uri.scheme === BLOCKED_SCHEME && (d.range.start.line >= doc.lineCount || !doc.lineAt(d.range.start.line).text.includes(`${g.host}:${g.port}`))) continue;
      const block = this.ctl.blockedOf(g);
      this.ctl.fixesFor(g).forEach((fix, i) => {
        const a = new vscode.CodeAction(fix.title, vscode.CodeActionKind.QuickFix);
        a.diagnostics = [d];
        a.isPreferred = i === 0;
        a.command = { title: fix.title, command: this.register({ fix, block }) };
        actions.push(a);
      });
    }
    return actions;
  }

  /** A command id that carries the fix and stays valid whenever the menu item is picked. */
  private register(p: FixPayload): string {
    const id = encodeFix(p);
    if (this.registered.has(id)) return id;
    if (this.registered.size >= MAX_REGISTERED) {
      const [oldest, sub] = this.registered.entries().next().value as [string, vscode.Disposable];
      sub.dispose();
      this.registered.delete(oldest);
    }
    this.registered.set(id, vscode.commands.registerCommand(id, () => vscode.commands.executeCommand('cagedAgent.applyFix', p)));
    return id;
  }

  dispose(): void {
    for (const d of this.registered.values()) d.dispose();
    this.registered.clear();
  }
}
