import * as vscode from 'vscode';
import { openAgentTerminal } from '../terminal';
import { cageIdFrom, type CommandDef } from './types';

export const openTerminalCommand: CommandDef = {
  id: 'cagedAgent.openTerminal',
  run: (cx, arg?: unknown, command?: string) => {
    const id = cageIdFrom(cx, arg);
    if (!id) {
      void vscode.window.showInformationMessage('Caged Agent: no cage runs for this workspace. Start one first.', 'Start Caged Agent').then((p) => {
        if (p) void vscode.commands.executeCommand('cagedAgent.start');
      });
      return undefined;
    }
    const term = openAgentTerminal(cx.ctl, id, command ?? '');
    return term.name;
  },
};
