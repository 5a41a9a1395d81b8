// Caged Agent: Verify Cage — runs the engine's checks from inside the agent and shows each result.
import * as vscode from 'vscode';
import { errorText } from '../logic/errors';
import type { VerifyCheck } from '../../engine/api';
import { verifySummary } from '../../engine/verify';
import { cageIdFrom, type CommandDef } from './types';

export const verifyCommand: CommandDef = {
  id: 'cagedAgent.verify',
  run: async (cx, arg?: unknown, opts?: { allowedUrl?: string; blockedUrl?: string; quiet?: boolean }) => {
    const id = cageIdFrom(cx, arg);
    if (!id) {
      void vscode.window.showInformationMessage('Caged Agent: no cage runs for this workspace.');
      return undefined;
    }
    let checks: VerifyCheck[];
    try {
      checks = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Caged Agent: verifying ${id}` }, () =>
        cx.ctl.engine.verify(id, { allowedUrl: opts?.allowedUrl, blockedUrl: opts?.blockedUrl }),
      );
    } catch (e) {
      void vscode.window.showErrorMessage(`Caged Agent: verification could not run: ${errorText(e)}`);
      return undefined;
    }
    cx.log.info(`verify ${id}:`);
    for (const c of checks) cx.log.info(`  ${c.skipped ? 'SKIP' : c.ok ? 'PASS' : 'FAIL'} ${c.name} — ${c.detail}`);
    if (!opts?.quiet) {
      void vscode.window.showQuickPick(
        checks.map((c) => ({ label: `${c.skipped ? '$(circle-slash)' : c.ok ? '$(pass)' : '$(error)'} ${c.name}`, detail: c.detail })),
        { title: `Cage ${id}: ${verifySummary(checks)}`, canPickMany: false },
      );
    }
    return checks;
  },
};
