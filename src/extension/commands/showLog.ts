import * as vscode from 'vscode';
import { errorText } from '../logic/errors';
import { cageIdFrom, type CommandDef } from './types';

let proxyChannel: vscode.OutputChannel | undefined;

/** Show Proxy Log: the proxy container's own log (its decision events), not the extension's; no cage: the extension's. */
export const showLogCommand: CommandDef = {
  id: 'cagedAgent.showLog',
  run: async (cx, arg?: unknown) => {
    const id = cageIdFrom(cx, arg);
    if (!id) {
      cx.log.show(true);
      return undefined;
    }
    let text: string;
    try {
      text = await cx.ctl.engine.proxyLog(id);
    } catch (e) {
      void vscode.window.showErrorMessage(`Caged Agent: cannot read the proxy log of ${id}: ${errorText(e)}`);
      return undefined;
    }
    proxyChannel ??= vscode.window.createOutputChannel('Caged Agent: Proxy', 'log');
    proxyChannel.replace(`# The proxy log of cage ${id} (one JSON line per decision), read ${new Date().toLocaleTimeString()}; run Show Proxy Log again to refresh.\n${text}\n`);
    proxyChannel.show(true);
    return text;
  },
};
