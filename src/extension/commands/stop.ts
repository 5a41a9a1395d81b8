import * as vscode from 'vscode';
import { errorText } from '../logic/errors';
import { cageIdFrom, type CommandDef } from './types';

export const stopCommand: CommandDef = {
  id: 'cagedAgent.stop',
  run: async (cx, arg?: unknown, opts: { confirm?: boolean } = {}) => {
    const id = cageIdFrom(cx, arg);
    if (!id) {
      void vscode.window.showInformationMessage('Caged Agent: no cage runs for this workspace.');
      return false;
    }
    // While something runs in the agent's terminals (the agent itself, an install), ask first.
    const running = opts.confirm === false ? 0 : await cx.ctl.engine.endTerminals(id, { countOnly: true }).catch(() => 0);
    const otherWorkspace = cx.ctl.cages.find((c) => c.id === id && c.id !== cx.ctl.activeCageId);
    if (otherWorkspace && opts.confirm !== false && running === 0) {
      const ok = await vscode.window.showWarningMessage(`Stop the cage of ${otherWorkspace.workspace} (${id})? It belongs to another workspace.`, { modal: true }, 'Stop');
      if (ok !== 'Stop') return false;
    }
    if (running > 0) {
      const other = id !== cx.ctl.activeCageId ? ' (another workspace’s cage)' : '';
      const ok = await vscode.window.showWarningMessage(
        `Stop cage ${id}${other}? ${running === 1 ? '1 process still runs' : `${running} processes still run`} in its agent terminal; stopping ends them.`,
        { modal: true },
        'Stop',
      );
      if (ok !== 'Stop') return false;
    }
    try {
      // The terminals close first, quietly: a terminal killed with its container would report "exit code 137".
      for (const t of vscode.window.terminals) if (t.name === `Caged Agent (${id})`) t.dispose();
      await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Caged Agent: stopping ${id}` }, () => cx.ctl.stop(id));
      void vscode.window.setStatusBarMessage(`Caged Agent: cage ${id} stopped`, 5000);
      return true;
    } catch (e) {
      void vscode.window.showErrorMessage(`Caged Agent: could not stop ${id}: ${errorText(e)}`);
      return false;
    }
  },
};
