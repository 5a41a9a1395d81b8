// Every command, registered in one place.
import * as vscode from 'vscode';
import { allowHostCommand, applyFixCommand } from './allowHost';
import { answerHeldCommand, revokeTemporaryCommand } from './answerHeld';
import { cleanUpCommand } from './cleanUp';
import { debugStateCommand, doctorCommand, injectEventCommand, refreshCommand, setSecretCommand } from './misc';
import { openPolicyCommand } from './openPolicy';
import { openTerminalCommand } from './openTerminal';
import { addRuleCommand, editRuleCommand, moveRuleCommand, removeRuleCommand, revealRuleCommand, toggleRuleCommand } from './rules';
import { showBlockedCommand } from './showBlocked';
import { showLogCommand } from './showLog';
import { startCommand } from './start';
import { stopCommand } from './stop';
import type { CommandContext, CommandDef } from './types';
import { verifyCommand } from './verify';

export const COMMANDS: CommandDef[] = [
  startCommand,
  stopCommand,
  openTerminalCommand,
  allowHostCommand,
  applyFixCommand,
  answerHeldCommand,
  revokeTemporaryCommand,
  openPolicyCommand,
  verifyCommand,
  showLogCommand,
  cleanUpCommand,
  showBlockedCommand,
  addRuleCommand,
  editRuleCommand,
  removeRuleCommand,
  toggleRuleCommand,
  moveRuleCommand,
  revealRuleCommand,
  setSecretCommand,
  refreshCommand,
  doctorCommand,
  debugStateCommand,
  injectEventCommand,
];

export function registerCommands(cx: CommandContext): vscode.Disposable[] {
  return COMMANDS.map((c) => vscode.commands.registerCommand(c.id, (...args: unknown[]) => c.run(cx, ...args)));
}
