import type * as vscode from 'vscode';
import type { Controller } from '../controller';
import type { PolicyDiagnostics } from '../diagnostics';
import type { ProtectionWatch } from '../protectWatch';

/** What every command gets. */
export interface CommandContext {
  ctl: Controller;
  diagnostics: PolicyDiagnostics;
  log: vscode.LogOutputChannel;
  protection: ProtectionWatch;
}

export interface CommandDef {
  id: string;
  run: (cx: CommandContext, ...args: any[]) => unknown;
}

/** A cage id from a command argument: a string, a tree item carrying a cage, or the workspace's cage. */
export function cageIdFrom(cx: CommandContext, arg: unknown): string | undefined {
  if (typeof arg === 'string' && arg) return arg;
  if (arg && typeof arg === 'object' && 'cage' in arg) return (arg as { cage: { id: string } }).cage.id;
  return cx.ctl.activeCageId;
}
