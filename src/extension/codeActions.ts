// Quick fixes on "blocked host" diagnostics: allow exactly this host, allow *.parent (when sensible),
// allow only this method/path prefix. Each runs cagedAgent.allowHost, which edits the YAML and reloads the proxy.
import * as vscode from 'vscode';
import { allowChoices } from '../policy';
import type { PolicyDiagnostics } from './diagnostics';

export class AllowQuickFixes implements vscode.CodeActionProvider {
  static readonly kinds = [vscode.CodeActionKind.QuickFix];

  constructor(private readonly diagnostics: PolicyDiagnostics) {}

  provideCodeActions(_doc: vscode.TextDocument, _range: vscode.Range | vscode.Selection, context: vscode.CodeActionContext): vscode.CodeAction[] {
    const actions: vscode.CodeAction[] = [];
    for (const d of context.diagnostics) {
      const g = this.diagnostics.groupFor(d);
      if (!g) continue;
      const e = g.last;
      const choices = allowChoices({ host: g.host, port: g.port, method: e.method === 'CONNECT' ? undefined : e.method, path: e.path || undefined });
      choices.forEach((c, i) => {
        const a = new vscode.CodeAction(c.title, vscode.CodeActionKind.QuickFix);
        a.diagnostics = [d];
        a.isPreferred = i === 0;
        a.command = { title: c.title, command: 'cagedAgent.allowHost', arguments: [c.spec] };
        actions.push(a);
      });
    }
    return actions;
  }
}
