// Diagnostics on the policy file: the policy engine's validation errors at their lines, and one entry per
// blocked host ("Caged agent blocked api.example.com:443 — GET /v1/x, 3 times, last at 12:01"), on the `allow:`
// key where the fix goes (its position comes from the parse). A block's diagnostic carries its group key as its
// code, so a quick fix finds the group from the diagnostic itself, as the code-actions sample links a diagnostic
// to its fix. Redrawn once per coalesced change of the blocks or the policy.
import * as vscode from 'vscode';
import type { Controller } from './controller';
import { blockMessage, type BlockGroup } from './logic/blocks';
import type { ParseResult, PolicyIssue, SourcePos } from '../policy/types';

export const DIAGNOSTIC_SOURCE = 'Caged Agent';

export class PolicyDiagnostics implements vscode.Disposable {
  private readonly collection = vscode.languages.createDiagnosticCollection('caged-agent');
  private readonly sub: vscode.Disposable;

  constructor(private readonly ctl: Controller) {
    this.sub = ctl.changes.on(['blocks', 'policy'], () => this.refresh());
  }

  refresh(): void {
    this.ctl.changes.count('diagnostics');
    const uri = this.ctl.policyUri();
    this.collection.clear();
    if (!uri) return;
    const parse = this.ctl.policyParse;
    const diags: vscode.Diagnostic[] = [];
    for (const issue of [...(parse?.errors ?? []), ...(parse?.warnings ?? [])]) diags.push(issueDiagnostic(issue));
    const anchor = anchorRange(parse);
    for (const g of this.ctl.session.blocks.list()) {
      const d = new vscode.Diagnostic(anchor, blockMessage(g), vscode.DiagnosticSeverity.Warning);
      d.source = DIAGNOSTIC_SOURCE;
      d.code = g.key;
      diags.push(d);
    }
    this.collection.set(uri, diags);
  }

  /** The block group a diagnostic stands for. */
  groupFor(d: vscode.Diagnostic): BlockGroup | undefined {
    if (d.source !== DIAGNOSTIC_SOURCE || typeof d.code !== 'string') return undefined;
    return this.ctl.session.blocks.get(d.code);
  }

  dispose(): void {
    this.sub.dispose();
    this.collection.dispose();
  }
}

function rangeOf(p: SourcePos): vscode.Range {
  return new vscode.Range(Math.max(0, p.line - 1), Math.max(0, p.col - 1), Math.max(0, p.endLine - 1), Math.max(0, p.endCol - 1));
}

function issueDiagnostic(issue: PolicyIssue): vscode.Diagnostic {
  const d = new vscode.Diagnostic(rangeOf(issue.pos), issue.message, issue.severity === 'error' ? vscode.DiagnosticSeverity.Error : vscode.DiagnosticSeverity.Warning);
  d.source = DIAGNOSTIC_SOURCE;
  d.code = issue.severity === 'error' ? 'policy-error' : 'policy-warning';
  return d;
}

/** Block diagnostics sit on the `allow:` key (where the fix goes), else at the start of the file. */
function anchorRange(parse: ParseResult | undefined): vscode.Range {
  const key = parse?.keys?.allow;
  return key ? rangeOf(key) : new vscode.Range(0, 0, 0, 1);
}
