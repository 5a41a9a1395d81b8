// Caged Agent: Clean Up — removes orphaned, labelled objects (never anything unlabelled).
import * as vscode from 'vscode';
import { errorText } from '../controller';
import type { CommandDef } from './types';

export const cleanUpCommand: CommandDef = {
  id: 'cagedAgent.cleanUp',
  run: async (cx) => {
    try {
      const r = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'Caged Agent: cleaning up' }, () => cx.ctl.engine.gc());
      cx.log.info(`clean up removed: ${r.removed.join(', ') || 'nothing'}`);
      void vscode.window.showInformationMessage(r.removed.length ? `Caged Agent removed ${r.removed.length} orphaned object(s).` : 'Caged Agent: nothing to clean up.');
      await cx.ctl.refreshCages();
      return r.removed;
    } catch (e) {
      void vscode.window.showErrorMessage(`Caged Agent: clean up failed: ${errorText(e)}`);
      return undefined;
    }
  },
};
