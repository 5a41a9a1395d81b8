// Quick fixes on "blocked host" diagnostics: allow exactly this host, allow *.parent (when sensible),
// allow only this method/path prefix; for a private-address block, let the rule reach private addresses.
// Each runs cagedAgent.applyFix, which edits the YAML (comments kept) and reloads the proxy.
import * as vscode from 'vscode';
import type { Controller } from './controller';
import type { PolicyDiagnostics } from './diagnostics';

export class AllowQuickFixes implements vscode.CodeActionProvider {
  static readonly kinds = [vscode.CodeActionKind.QuickFix];

  constructor(
    private readonly ctl: Controller,
    private readonly diagnostics: PolicyDiagnostics,
  ) {}

  provideCodeActions(_doc: vscode.TextDocument, _range: vscode.Range | vscode.Selection, context: vscode.CodeActionContext): vscode.CodeAction[] {
    const actions: vscode.CodeAction[] = [];
    for (const d of context.diagnostics) {
      const g = this.diagnostics.groupFor(d);
      if (!g) continue;
      this.ctl.fixesFor(g).forEach((c, i) => {
        const a = new vscode.CodeAction(c.title, vscode.CodeActionKind.QuickFix);
        a.diagnostics = [d];
        a.isPreferred = i === 0;
        a.command = { title: c.title, command: 'cagedAgent.applyFix', arguments: [c] };
        actions.push(a);
      });
    }
    return actions;
  }
}
