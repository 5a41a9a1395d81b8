// Diagnostics: the policy engine's validation errors at their lines, and one entry per blocked host:port
// ("Caged agent blocked api.example.com:443 — GET /v1/x, 3 times, last at 12:01"), each on a line of its own
// (logic/anchors.ts): a block a rule decided on that rule's entry; a block no rule matched on its line of the
// read-only Blocked requests document, with one summary on the policy file's `allow:` key. A block's diagnostic
// carries its group key as its code, so a quick fix finds the group from the diagnostic itself, as the
// code-actions sample links a diagnostic to its fix. Redrawn once per coalesced change of the blocks or the policy.
import * as vscode from 'vscode';
import { BLOCKED_URI, BlockedDocument } from './blockedDocument';
import type { Controller } from './controller';
import { BLOCKED_DOC_HEADER, layoutBlocks, unmatchedSummary } from './logic/anchors';
import { blockMessage, type BlockGroup } from './logic/blocks';
import type { ParseResult, PolicyIssue, SourcePos } from '../policy/types';

export const DIAGNOSTIC_SOURCE = 'Caged Agent';
/** The code of the policy file's summary of the blocks no rule matches. */
export const UNMATCHED_SUMMARY_CODE = 'blocked-unmatched';

export class PolicyDiagnostics implements vscode.Disposable {
  private readonly collection = vscode.languages.createDiagnosticCollection('caged-agent');
  private readonly sub: vscode.Disposable;
  readonly blockedDocument = new BlockedDocument();

  constructor(private readonly ctl: Controller) {
    this.sub = ctl.changes.on(['blocks', 'policy'], () => this.refresh());
  }

  refresh(): void {
    this.ctl.changes.count('diagnostics');
    const uri = this.ctl.policyUri();
    this.collection.clear();
    const parse = this.ctl.policyParse;
    const layout = layoutBlocks(this.ctl.session.blocks.list(), parse?.policy);
    this.blockedDocument.update(layout);
    const blocked = layout.unmatched.map((g, i) => blockDiagnostic(g, new vscode.Range(BLOCKED_DOC_HEADER.length + i, 0, BLOCKED_DOC_HEADER.length + i, blockMessage(g).length)));
    if (blocked.length) this.collection.set(BLOCKED_URI, blocked);
    if (!uri) return;
    const diags: vscode.Diagnostic[] = [];
    for (const issue of [...(parse?.errors ?? []), ...(parse?.warnings ?? [])]) diags.push(issueDiagnostic(issue));
    for (const { group, pos } of layout.onRule) diags.push(blockDiagnostic(group, rangeOf(pos)));
    if (layout.unmatched.length) {
      const d = new vscode.Diagnostic(anchorRange(parse), unmatchedSummary(layout.unmatched), vscode.DiagnosticSeverity.Warning);
      d.source = DIAGNOSTIC_SOURCE;
      d.code = UNMATCHED_SUMMARY_CODE;
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
    this.blockedDocument.dispose();
  }
}

function blockDiagnostic(g: BlockGroup, range: vscode.Range): vscode.Diagnostic {
  const d = new vscode.Diagnostic(range, blockMessage(g), vscode.DiagnosticSeverity.Warning);
  d.source = DIAGNOSTIC_SOURCE;
  d.code = g.key;
  return d;
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

/** The summary sits on the `allow:` key (where a fix goes), else at the start of the file. */
function anchorRange(parse: ParseResult | undefined): vscode.Range {
  const key = parse?.keys?.allow;
  return key ? rangeOf(key) : new vscode.Range(0, 0, 0, 1);
}
