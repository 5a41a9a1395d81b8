// Diagnostics on the policy file: the policy engine's validation errors at their lines, and one entry per
// blocked host ("Caged agent blocked api.example.com:443 — GET /v1/x, 3 times, last at 12:01").
import * as vscode from 'vscode';
import type { Controller } from './controller';
import { blockMessage, type BlockGroup } from './logic/blocks';
import type { PolicyIssue } from '../policy/types';

export const DIAGNOSTIC_SOURCE = 'Caged Agent';
export const BLOCKED_CODE = 'blocked-host';

export class PolicyDiagnostics implements vscode.Disposable {
  private readonly collection = vscode.languages.createDiagnosticCollection('caged-agent');
  private timer: NodeJS.Timeout | undefined;
  /** diagnostic message -> block key, for code actions. */
  private readonly keyByMessage = new Map<string, string>();

  constructor(private readonly ctl: Controller) {}

  /** Coalesces bursts of events into one refresh. */
  schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.refresh();
    }, 150);
  }

  async refresh(): Promise<void> {
    const uri = this.ctl.policyUri();
    this.collection.clear();
    this.keyByMessage.clear();
    if (!uri) return;
    const parse = this.ctl.policyParse;
    const text = await this.ctl.readPolicyText();
    const diags: vscode.Diagnostic[] = [];
    for (const issue of [...(parse?.errors ?? []), ...(parse?.warnings ?? [])]) diags.push(issueDiagnostic(issue));
    const anchor = anchorRange(text);
    for (const g of this.ctl.blocks.list()) {
      const d = new vscode.Diagnostic(anchor, blockMessage(g), vscode.DiagnosticSeverity.Warning);
      d.source = DIAGNOSTIC_SOURCE;
      d.code = BLOCKED_CODE;
      this.keyByMessage.set(d.message, g.key);
      diags.push(d);
    }
    this.collection.set(uri, diags);
  }

  /** The block group a diagnostic stands for. */
  groupFor(d: vscode.Diagnostic): BlockGroup | undefined {
    if (d.source !== DIAGNOSTIC_SOURCE || d.code !== BLOCKED_CODE) return undefined;
    const key = this.keyByMessage.get(d.message) ?? /blocked (\S+:\d+) /.exec(d.message)?.[1];
    return key ? this.ctl.blocks.get(key) : undefined;
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.collection.dispose();
  }
}

function issueDiagnostic(issue: PolicyIssue): vscode.Diagnostic {
  const p = issue.pos;
  const range = new vscode.Range(Math.max(0, p.line - 1), Math.max(0, p.col - 1), Math.max(0, p.endLine - 1), Math.max(0, p.endCol - 1));
  const d = new vscode.Diagnostic(range, issue.message, issue.severity === 'error' ? vscode.DiagnosticSeverity.Error : vscode.DiagnosticSeverity.Warning);
  d.source = DIAGNOSTIC_SOURCE;
  d.code = issue.severity === 'error' ? 'policy-error' : 'policy-warning';
  return d;
}

/** Block diagnostics sit on the `allow:` key (where the fix goes), else on the first line. */
function anchorRange(text: string | undefined): vscode.Range {
  const lines = (text ?? '').split(/\r?\n/);
  const i = lines.findIndex((l) => /^allow\s*:/.test(l));
  const line = i >= 0 ? i : 0;
  return new vscode.Range(line, 0, line, Math.max(1, (lines[line] ?? '').length));
}
