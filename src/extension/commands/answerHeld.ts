// Answering held requests (issue 17): the notification's buttons, the Blocked Requests rows and "More…";
// revoking a temporary allow or deny from the sidebar.
import * as vscode from 'vscode';
import { pickAnswer } from '../askNotifier';
import { confirmStandingAllow } from '../confirmRisk';
import type { HeldAction } from '../logic/pending';
import type { AllowSpec } from '../../policy/types';
import type { CommandDef } from './types';

/** Args: the group key ("host:port") or a tree item carrying `held`, the action (default: ask with "More…"), a rule. */
export const answerHeldCommand: CommandDef = {
  id: 'cagedAgent.answerHeld',
  run: async (cx, arg: unknown, action?: HeldAction | 'more', spec?: AllowSpec) => {
    const key = typeof arg === 'string' ? arg : (arg as { held?: { key: string } } | undefined)?.held?.key;
    const g = key ? cx.ctl.session.pending.get(key) : undefined;
    if (!g) {
      void vscode.window.showInformationMessage('Nothing is waiting for that host any more (answered elsewhere, or it timed out).');
      return { ok: false, message: 'nothing is waiting' };
    }
    let act = action;
    if (!act || act === 'more') {
      const p = await pickAnswer(g);
      if (!p) return undefined;
      act = p.action;
      spec = p.spec;
    }
    if (act === 'always' && !(await confirmStandingAllow(spec?.host ?? g.host))) return { ok: false, message: 'cancelled' };
    try {
      const r = await cx.ctl.answerHeld(g, act, spec);
      cx.log.info(`answer ${act} for ${g.key}: ${r.ok ? '' : 'not taken: '}${r.message}`);
      if (!r.ok) void vscode.window.showErrorMessage(`Caged Agent: the answer for ${g.host} was not taken: ${r.message}`);
      return r;
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      void vscode.window.showErrorMessage(`Caged Agent: could not answer for ${g.host}: ${message}`);
      return { ok: false, message };
    }
  },
};

export const revokeTemporaryCommand: CommandDef = {
  id: 'cagedAgent.revokeTemporary',
  run: async (cx, arg: unknown) => {
    const id = typeof arg === 'string' ? arg : (arg as { entry?: { id: string } } | undefined)?.entry?.id;
    if (!id) return { ok: false, message: 'no entry' };
    const r = await cx.ctl.revokeTemporary(id);
    if (!r.ok) void vscode.window.showErrorMessage(`Caged Agent: ${r.message}`);
    return r;
  },
};
