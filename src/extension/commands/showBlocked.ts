// Offers the allow choices for a blocked host (from the sidebar, a notification's "Details", or the palette).
import * as vscode from 'vscode';
import { describeSeen } from '../logic/blocks';
import type { CommandDef } from './types';

export const showBlockedCommand: CommandDef = {
  id: 'cagedAgent.showBlocked',
  run: async (cx, key?: unknown) => {
    const { ctl } = cx;
    let k = typeof key === 'string' ? key : key && typeof key === 'object' && 'group' in key ? (key as { group: { key: string } }).group.key : undefined;
    if (!k) {
      const groups = ctl.session.blocks.list();
      if (groups.length === 0) {
        void vscode.window.showInformationMessage('Caged Agent: nothing has been blocked.');
        return undefined;
      }
      const pick = await vscode.window.showQuickPick(
        groups.map((g) => ({ label: g.host + (g.port === 443 || g.port === 80 ? '' : `:${g.port}`), description: `${g.count}× · ${g.reason}`, detail: describeSeen(g), key: g.key })),
        { title: 'Caged Agent: blocked hosts' },
      );
      if (!pick) return undefined;
      k = pick.key;
    }
    const g = ctl.session.blocks.get(k);
    if (!g) return undefined;
    const items: (vscode.QuickPickItem & { run: () => Thenable<unknown> })[] = [
      ...ctl.fixesFor(g).map((c) => ({ label: c.title, description: c.scope, run: () => vscode.commands.executeCommand('cagedAgent.applyFix', { fix: c, block: ctl.blockedOf(g) }) })),
      { label: 'Dismiss', description: 'forget this block', run: async () => ctl.session.dismissBlock(k!) },
      { label: 'Show in Problems', run: () => vscode.commands.executeCommand('workbench.actions.view.problems') },
    ];
    const pick = await vscode.window.showQuickPick(items, { title: `Blocked: ${g.host}:${g.port} — ${describeSeen(g)} (${g.reason}, ${g.count}×)` });
    return pick?.run();
  },
};
