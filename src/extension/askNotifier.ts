// "Ask instead of fail" in the editor (issue 17): a host's first held request raises a notification at once
// (one per host:port, however many requests wait), naming the host, method, path and the count, with
// Allow once · Allow for 1 hour · Allow always · Deny · More…. The answer goes through
// cagedAgent.answerHeld. Without an answer the proxy gives up by itself after askTimeout: nothing hangs.
import { domainToUnicode } from 'node:url';
import * as vscode from 'vscode';
import type { AllowSpec } from '../policy/types';
import type { Controller } from './controller';
import { answerChoices, HELD_BUTTONS, heldMessage, type HeldAction, type HeldGroup } from './logic/pending';
import { readSettings } from './settings';

export class HoldNotifier implements vscode.Disposable {
  private readonly sub: vscode.Disposable;

  constructor(private readonly ctl: Controller) {
    this.sub = ctl.session.onDidHold((g) => {
      if (readSettings(ctl.workspaceFolder()?.uri).notifications === 'off') return;
      void this.show(g);
    });
  }

  private async show(g: HeldGroup): Promise<void> {
    const picked = await vscode.window.showWarningMessage(heldMessage(g, domainToUnicode(g.host)), ...HELD_BUTTONS.map((b) => b.title));
    const b = HELD_BUTTONS.find((x) => x.title === picked);
    if (!b) return;
    // Answered elsewhere (another window, the CLI) or timed out meanwhile: say so rather than act.
    if (!this.ctl.session.pending.get(g.key) && b.action !== 'always') {
      void vscode.window.showInformationMessage(`Nothing is waiting for ${g.host} any more (answered elsewhere, or it timed out).`);
      return;
    }
    await vscode.commands.executeCommand('cagedAgent.answerHeld', g.key, b.action);
  }

  dispose(): void {
    this.sub.dispose();
  }
}

/** The "More…" quick pick: rules narrowest first, each with its scope and risk note, and deny. */
export async function pickAnswer(g: HeldGroup): Promise<{ action: HeldAction; spec?: AllowSpec } | undefined> {
  const items = answerChoices(g).map((c) => ({ label: c.label, detail: c.detail ? `$(warning) ${c.detail}` : undefined, choice: c }));
  const picked = await vscode.window.showQuickPick(items, { title: `Answer the requests waiting for ${g.host}`, placeHolder: 'Narrowest first', matchOnDetail: true });
  return picked ? { action: picked.choice.action, spec: picked.choice.spec } : undefined;
}
