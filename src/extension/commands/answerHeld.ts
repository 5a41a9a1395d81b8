// Answering held requests (issue 17): the notification's buttons, the Blocked Requests rows and "More…";
// revoking a temporary allow or deny from the sidebar.
import * as vscode from 'vscode';
import { pickAnswer } from '../askNotifier';
import { confirmStandingAllow } from '../confirmRisk';
import { heldDescription, shownHost, type HeldAction, type HeldGroup } from '../logic/pending';
import type { AllowSpec } from '../../policy/types';
import type { CommandDef } from './types';

/**
 * Args: the group key ("host:port") or a tree item carrying `held`, the action (default: ask with "More…"), a rule.
 * With none (the palette), the group waiting, or a pick when several do.
 */
export const answerHeldCommand: CommandDef = {
  id: 'cagedAgent.answerHeld',
  run: async (cx, arg: unknown, action?: HeldAction | 'more', spec?: AllowSpec) => {
    const key = typeof arg === 'string' ? arg : (arg as { held?: { key: string } } | undefined)?.held?.key;
    // From the palette (no argument): the one group waiting, or a pick among them.
    const g = key ? cx.ctl.session.pending.get(key) : await pickWaiting(cx.ctl.session.pending.list(Date.now()));
    if (!key && g === null) return undefined;
    if (!g) {
      void vscode.window.showInformationMessage(key ? 'Nothing is waiting for that host any more (answered elsewhere, or it timed out).' : 'No request is waiting for an answer.');
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

/** The group to answer when none was named: undefined when nothing waits, null when the user dismissed the pick. */
async function pickWaiting(groups: HeldGroup[]): Promise<HeldGroup | undefined | null> {
  if (groups.length <= 1) return groups[0];
  const now = Date.now();
  const picked = await vscode.window.showQuickPick(
    groups.map((g) => ({ label: shownHost(g), description: heldDescription(g, now), group: g })),
    { title: 'Requests waiting for your answer', placeHolder: 'Which host to answer' },
  );
  return picked ? picked.group : null;
}

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
