// Caged Agent: Clean Up — removes orphaned, labelled objects (never anything unlabelled).
import * as vscode from 'vscode';
import { errorText } from '../logic/errors';
import type { CommandDef } from './types';

export const cleanUpCommand: CommandDef = {
  id: 'cagedAgent.cleanUp',
  run: async (cx) => {
    try {
      const r = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'Caged Agent: cleaning up' }, () => cx.ctl.engine.gc());
      const removed = [...r.containers, ...r.networks, ...r.volumes, ...r.images];
      cx.log.info(`clean up removed: ${removed.join(', ') || 'nothing'}`);
      void vscode.window.showInformationMessage(removed.length ? `Caged Agent removed ${removed.length} orphaned object(s).` : 'Caged Agent: nothing to clean up.');
      await cx.ctl.refreshCages();
      return removed;
    } catch (e) {
      void vscode.window.showErrorMessage(`Caged Agent: clean up failed: ${errorText(e)}`);
      return undefined;
    }
  },
};
