// Small commands: secrets, refresh, doctor, and two hidden hooks the extension-host tests use.
import * as vscode from 'vscode';
import { doctorMark, errorText } from '../logic/errors';
import type { ProxyEvent } from '../../policy/events';
import type { CommandDef } from './types';

export const setSecretCommand: CommandDef = {
  id: 'cagedAgent.setSecret',
  run: async (cx, nameArg?: string, valueArg?: string) => {
    const name = nameArg ?? (await vscode.window.showInputBox({ title: 'Secret name (as in auth: { secret: NAME })', ignoreFocusOut: true, validateInput: (v) => (/^[A-Za-z0-9_]+$/.test(v) ? undefined : 'letters, digits and _') }));
    if (!name) return false;
    const value = valueArg ?? (await vscode.window.showInputBox({ title: `Value of secret "${name}"`, password: true, ignoreFocusOut: true }));
    if (!value) return false;
    await cx.ctl.secrets.store(name, value);
    void vscode.window.showInformationMessage(`Caged Agent: secret "${name}" stored. It reaches the proxy on the next start.`);
    return true;
  },
};

export const refreshCommand: CommandDef = {
  id: 'cagedAgent.refresh',
  run: async (cx) => {
    await cx.ctl.refreshCages();
    await cx.ctl.policy.refresh({ push: false });
    cx.diagnostics.refresh();
  },
};

export const doctorCommand: CommandDef = {
  id: 'cagedAgent.doctor',
  run: async (cx, opts: { quiet?: boolean } = {}) => {
    try {
      // The images a start of this workspace would use (its settings, the preset, the devcontainer), not the defaults.
      const checks = await cx.ctl.engine.doctor({ ...cx.ctl.startImages(), workspace: cx.ctl.workspaceFolder()?.uri.fsPath });
      for (const c of checks) cx.log.info(`doctor: ${doctorMark(c).word} ${c.name} — ${c.detail}`);
      if (!opts.quiet) void vscode.window.showQuickPick(checks.map((c) => ({ label: `${doctorMark(c).icon} ${c.name}`, detail: c.detail })), { title: 'Caged Agent: Doctor' });
      return checks;
    } catch (e) {
      void vscode.window.showErrorMessage(`Caged Agent: ${errorText(e)}`);
      return undefined;
    }
  },
};

/** Hidden: a snapshot of what the UI shows, for extension-host tests. */
export const debugStateCommand: CommandDef = {
  id: 'cagedAgent._state',
  run: (cx) => ({
    activeCageId: cx.ctl.activeCageId,
    cages: cx.ctl.cages,
    dockerError: cx.ctl.session.dockerError,
    blocks: cx.ctl.session.blocks.list().map((g) => ({ key: g.key, count: g.count, reason: g.reason, paths: g.paths })),
    /** Requests held for an answer (what the status bar's "N waiting" counts), and the temporary entries. */
    waiting: cx.ctl.session.pending.waiting(Date.now()),
    pending: cx.ctl.session.pending.list(Date.now()),
    temporaries: cx.ctl.session.temporaries,
    policyErrors: cx.ctl.policyParse?.errors.map((e) => e.message) ?? null,
    policyPath: cx.ctl.policyUri()?.fsPath,
    protectionAlerts: cx.protection.alerts,
    /** How often the extension read, parsed and pushed the policy, redrew each view and the diagnostics. */
    counts: Object.fromEntries(cx.ctl.changes.counts),
  }),
};

/** Hidden: feed a proxy event as if the engine had delivered it (UI tests without a cage). */
export const injectEventCommand: CommandDef = {
  id: 'cagedAgent._injectEvent',
  run: (cx, e: ProxyEvent, cageId?: string) => {
    cx.ctl.session.onProxyEvent(cageId ?? cx.ctl.activeCageId ?? 'test', e);
  },
};
