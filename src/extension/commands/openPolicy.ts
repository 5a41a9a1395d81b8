import * as vscode from 'vscode';
import type { CommandDef } from './types';

export const openPolicyCommand: CommandDef = {
  id: 'cagedAgent.openPolicy',
  run: async (cx, line?: number, preserveFocus = false) => {
    const uri = cx.ctl.policyUri();
    if (!uri) {
      void vscode.window.showErrorMessage('Caged Agent: open a folder first — the policy lives in the workspace.');
      return undefined;
    }
    if ((await cx.ctl.policy.readText()) === undefined) {
      const pick = await vscode.window.showInformationMessage(`No policy file at ${vscode.workspace.asRelativePath(uri)} yet. Create a starter policy (default deny)?`, 'Create');
      if (pick !== 'Create') return undefined;
      await cx.ctl.policy.ensure();
    }
    const doc = await vscode.workspace.openTextDocument(uri);
    const editor = await vscode.window.showTextDocument(doc, { preserveFocus });
    if (typeof line === 'number' && line > 0) {
      const pos = new vscode.Position(line - 1, 0);
      editor.selection = new vscode.Selection(pos, pos);
      editor.revealRange(new vscode.Range(pos, pos), vscode.TextEditorRevealType.InCenter);
    }
    return uri.fsPath;
  },
};
