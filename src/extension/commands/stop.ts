import * as vscode from 'vscode';
import { errorText } from '../logic/errors';
import { cageIdFrom, type CommandDef } from './types';

export const stopCommand: CommandDef = {
  id: 'cagedAgent.stop',
  run: async (cx, arg?: unknown) => {
    const id = cageIdFrom(cx, arg);
    if (!id) {
      void vscode.window.showInformationMessage('Caged Agent: no cage runs for this workspace.');
      return false;
    }
    try {
      await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Caged Agent: stopping ${id}` }, () => cx.ctl.stop(id));
      for (const t of vscode.window.terminals) if (t.name === `Caged Agent (${id})`) t.dispose();
      void vscode.window.setStatusBarMessage(`Caged Agent: cage ${id} stopped`, 5000);
      return true;
    } catch (e) {
      void vscode.window.showErrorMessage(`Caged Agent: could not stop ${id}: ${errorText(e)}`);
      return false;
    }
  },
};
