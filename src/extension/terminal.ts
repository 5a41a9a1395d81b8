// A terminal inside the agent container, through the engine (docker exec with a TTY; no docker CLI needed).
import * as vscode from 'vscode';
import type { Controller } from './controller';
import { errorText } from './logic/errors';
import type { ShellSession } from '../engine/api';

export function openAgentTerminal(ctl: Controller, cageId: string, command: string): vscode.Terminal {
  const write = new vscode.EventEmitter<string>();
  const close = new vscode.EventEmitter<number | void>();
  let session: ShellSession | undefined;
  let size: vscode.TerminalDimensions | undefined;
  const pending: string[] = [];

  const pty: vscode.Pseudoterminal = {
    onDidWrite: write.event,
    onDidClose: close.event,
    open: (dims) => {
      size = dims;
      // After the agent command ends, stay in an interactive login shell (bash when the image has it).
      const cmd = command ? ['/bin/sh', '-c', `${command}; if command -v bash >/dev/null 2>&1; then exec bash -l; else exec sh -l; fi`] : undefined;
      ctl.engine
        .openShell(cageId, { cols: dims?.columns ?? 80, rows: dims?.rows ?? 24, cmd })
        .then((s) => {
          session = s;
          s.stream.on('data', (b: Buffer) => write.fire(b.toString('utf8')));
          s.exit.then(
            (code) => close.fire(code),
            () => close.fire(1),
          );
          for (const p of pending.splice(0)) s.stream.write(p);
          if (size) void s.resize(size.columns, size.rows).catch(() => {});
        })
        .catch((e) => {
          write.fire(`\r\nCaged Agent: cannot open a shell in the agent: ${errorText(e)}\r\n`);
          close.fire(1);
        });
    },
    close: () => {
      session?.stream.end();
    },
    handleInput: (data) => {
      if (session) session.stream.write(data);
      else pending.push(data);
    },
    setDimensions: (dims) => {
      size = dims;
      void session?.resize(dims.columns, dims.rows).catch(() => {});
    },
  };
  const term = vscode.window.createTerminal({ name: `Caged Agent (${cageId})`, pty, iconPath: new vscode.ThemeIcon('shield') });
  term.show();
  return term;
}
