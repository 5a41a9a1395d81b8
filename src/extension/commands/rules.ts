// Sidebar allowlist actions: add, edit, remove, toggle, reveal. Every edit goes through the policy engine's
// comment-preserving edits and reloads the proxy.
import * as vscode from 'vscode';
import { addDeny, moveEntry, removeEntry, setDisabled, updateEntry } from '../../policy';
import type { AllowSpec, Rule, RuleList } from '../../policy/types';
import { specFromText, validateSpec } from './allowHost';
import { specOfRule } from '../logic/fixes';
import type { CommandContext, CommandDef } from './types';

function ruleFrom(arg: unknown): Rule | undefined {
  if (arg && typeof arg === 'object' && 'rule' in arg) return (arg as { rule: Rule }).rule;
  return undefined;
}

function ruleListFrom(arg: unknown): RuleList {
  if (arg === 'deny') return 'deny';
  if (arg && typeof arg === 'object' && 'list' in arg && (arg as { list: string }).list === 'deny') return 'deny';
  return 'allow';
}

async function askHost(title: string, value?: string): Promise<string | undefined> {
  return vscode.window.showInputBox({
    title,
    value,
    prompt: 'host, *.parent or host:port',
    ignoreFocusOut: true,
    validateInput: (v) => (v.trim() ? validateSpec(specFromText(v)) : 'Enter a host'),
  });
}

export const addRuleCommand: CommandDef = {
  id: 'cagedAgent.addRule',
  run: async (cx: CommandContext, listArg?: unknown, hostArg?: string) => {
    const list = ruleListFrom(listArg);
    // Interactive adds to the allow list ask what Allow Host... asks (including the private-address opt-in).
    if (list === 'allow' && hostArg === undefined) return vscode.commands.executeCommand('cagedAgent.allowHost');
    const host = hostArg ?? (await askHost('Add denied host'));
    if (!host) return false;
    const spec = specFromText(host);
    if (list === 'allow') return cx.ctl.allow(spec);
    return cx.ctl.policy.edit((t) => addDeny(t, spec).text, `deny ${spec.host}`);
  },
};

export const editRuleCommand: CommandDef = {
  id: 'cagedAgent.editRule',
  run: async (cx, item?: unknown, hostArg?: string) => {
    const rule = ruleFrom(item);
    if (!rule) return false;
    const current = rule.hostText + (rule.port ? `:${rule.port}` : '');
    const host = hostArg ?? (await askHost(`Edit ${rule.list}[${rule.index}]`, current));
    if (!host || host === current) return false;
    const next: AllowSpec = { ...specOfRule(rule), ...specFromText(host) };
    if (!/:\d+$/.test(host)) next.port = undefined;
    return cx.ctl.policy.edit((t) => updateEntry(t, rule.list, rule.index, next).text, `edit ${rule.list}[${rule.index}] → ${host}`);
  },
};

export const removeRuleCommand: CommandDef = {
  id: 'cagedAgent.removeRule',
  run: async (cx, item?: unknown, confirm = true) => {
    const rule = ruleFrom(item);
    if (!rule) return false;
    if (confirm !== false) {
      const ok = await vscode.window.showWarningMessage(`Remove ${rule.hostText} from the ${rule.list} list?`, { modal: true }, 'Remove');
      if (ok !== 'Remove') return false;
    }
    return cx.ctl.policy.edit((t) => removeEntry(t, rule.list, rule.index).text, `remove ${rule.list}[${rule.index}] ${rule.hostText}`);
  },
};

export const toggleRuleCommand: CommandDef = {
  id: 'cagedAgent.toggleRule',
  run: async (cx, item?: unknown) => {
    const rule = ruleFrom(item);
    if (!rule) return false;
    return cx.ctl.policy.edit((t) => setDisabled(t, rule.list, rule.index, !rule.disabled).text, `${rule.disabled ? 'enable' : 'disable'} ${rule.hostText}`);
  },
};

export const moveRuleCommand: CommandDef = {
  id: 'cagedAgent.moveRule',
  run: async (cx, item?: unknown) => {
    const rule = ruleFrom(item);
    if (!rule) return false;
    return cx.ctl.policy.edit((t) => moveEntry(t, rule.list, rule.index).text, `move ${rule.hostText} to ${rule.list === 'allow' ? 'deny' : 'allow'}`);
  },
};

export const revealRuleCommand: CommandDef = {
  id: 'cagedAgent.revealRule',
  run: async (_cx, item?: unknown) => {
    const rule = ruleFrom(item);
    if (!rule) return;
    await vscode.commands.executeCommand('cagedAgent.openPolicy', rule.pos.line);
  },
};
