// A terminal inside the agent container, through the engine (docker exec with a TTY; no docker CLI needed).
// The terminal is transient: VS Code never persists or restores it, so a window reload cannot put a host shell
// in its place. Its processes carry a token (TERMINAL_ENV) of this window: when the terminal closes they are
// ended, and after a reload the ones the previous window left behind are ended (reattachStrayTerminals).
import * as crypto from 'node:crypto';
import * as vscode from 'vscode';
import type { Controller } from './controller';
import { errorText } from './logic/errors';
import { TERMINAL_ENV } from '../engine';
import type { ShellSession } from '../engine/api';

/** This window's token: every terminal it opens is `${WINDOW_TOKEN}.${n}`. */
const WINDOW_TOKEN = crypto.randomUUID();
let terminalCount = 0;

export function openAgentTerminal(ctl: Controller, cageId: string, command: string): vscode.Terminal {
  const write = new vscode.EventEmitter<string>();
  const close = new vscode.EventEmitter<number | void>();
  const token = `${WINDOW_TOKEN}.${++terminalCount}`;
  let session: ShellSession | undefined;
  let size: vscode.TerminalDimensions | undefined;
  let closed = false;
  const pending: string[] = [];

  const pty: vscode.Pseudoterminal = {
    onDidWrite: write.event,
    onDidClose: close.event,
    open: (dims) => {
      size = dims;
      // After the agent command ends, stay in an interactive login shell (bash when the image has it).
      const cmd = command ? ['/bin/sh', '-c', `${command}; if command -v bash >/dev/null 2>&1; then exec bash -l; else exec sh -l; fi`] : undefined;
      ctl.engine
        .openShell(cageId, { cols: dims?.columns ?? 80, rows: dims?.rows ?? 24, cmd, env: { [TERMINAL_ENV]: token } })
        .then((s) => {
          session = s;
          s.stream.on('data', (b: Buffer) => write.fire(b.toString('utf8')));
          s.exit.then(
            async (code) => {
              // Killed with its container (a Stop elsewhere, `caged-agent down`): say so, without an exit-code toast.
              if (code === 137 || code === 143 || code === -1) {
                const cage = await ctl.engine.get(cageId).catch(() => undefined);
                if (!cage || cage.state === 'stopped') {
                  write.fire('\r\nCaged Agent: the cage stopped.\r\n');
                  return close.fire();
                }
              }
              close.fire(code);
            },
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
      if (closed) return;
      closed = true;
      session?.stream.end();
      // Closing the terminal ends what it started (an agent that ignores the hang-up included), unless the
      // window is going away (a reload): then the next window ends them and tells the user, with a way back in.
      // VS Code calls close() first and reports the reason right after (onDidCloseTerminal).
      if (session) endAfterReason(term, () => void ctl.engine.endTerminals(cageId, { only: token }).catch(() => {}));
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
  const term = vscode.window.createTerminal({ name: `Caged Agent (${cageId})`, pty, iconPath: new vscode.ThemeIcon('shield'), isTransient: true });
  term.show();
  return term;
}

/** How long close() waits for VS Code to say why the terminal closed before it ends the terminal's processes. */
const CLOSE_REASON_WAIT_MS = 1500;

/** Runs `end` unless the terminal closed because the window shuts down (reload or close). */
function endAfterReason(term: vscode.Terminal, end: () => void): void {
  let done = false;
  const finish = (run: boolean) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    sub.dispose();
    if (run) end();
  };
  const sub = vscode.window.onDidCloseTerminal((t) => {
    if (t === term) finish(t.exitStatus?.reason !== vscode.TerminalExitReason.Shutdown);
  });
  const timer = setTimeout(() => finish(true), CLOSE_REASON_WAIT_MS);
  if (term.exitStatus) finish(term.exitStatus.reason !== vscode.TerminalExitReason.Shutdown);
}

/**
 * A cage found again after a window reload: the previous window's terminals are gone (transient, never restored),
 * but their processes still run in the agent where nobody can reach them. End them and say so, with a way to open
 * a new terminal.
 */
export async function endStrayTerminals(ctl: Controller, cageId: string): Promise<number> {
  let n = 0;
  try {
    n = await ctl.engine.endTerminals(cageId, { keep: WINDOW_TOKEN });
  } catch (e) {
    ctl.log.warn(`could not end the previous window's terminal processes in cage ${cageId}: ${errorText(e)}`);
    return 0;
  }
  if (n === 0) return 0;
  ctl.log.info(`ended ${n} process(es) of the previous window's agent terminal in cage ${cageId}`);
  void vscode.window
    .showInformationMessage(`Caged Agent: the agent terminal did not survive the window reload; its ${n === 1 ? 'process was' : `${n} processes were`} ended in the cage.`, 'Open Agent Terminal')
    .then((p) => {
      if (p) void vscode.commands.executeCommand('cagedAgent.openTerminal');
    });
  return n;
}
