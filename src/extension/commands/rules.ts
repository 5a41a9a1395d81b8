// Sidebar allowlist actions: add, edit, remove, toggle, reveal. Every edit goes through the policy engine's
// comment-preserving edits and reloads the proxy.
import * as vscode from 'vscode';
import { addDeny, moveEntry, removeEntry, setDisabled, updateEntry } from '../../policy';
import type { AllowSpec, Rule, RuleList } from '../../policy/types';
import { specFromText, validateSpec } from './allowHost';
import { specOfRule } from '../logic/fixes';
import type { CommandContext, CommandDef } from './types';

/** The focused entry of the Allowlist view (a keybinding passes no item); set by main.ts. */
let selectedRule: () => Rule | undefined = () => undefined;
export function setRuleSelection(fn: () => Rule | undefined): void {
  selectedRule = fn;
}

function ruleFrom(arg: unknown): Rule | undefined {
  if (arg && typeof arg === 'object' && 'rule' in arg) return (arg as { rule: Rule }).rule;
  return undefined;
}

/**
 * The entry a command acts on: the item it was given (inline button, context menu), else the view's focused
 * entry (F2, Delete), else one the user picks (the command palette).
 */
async function ruleFor(cx: CommandContext, arg: unknown, verb: string): Promise<Rule | undefined> {
  const given = ruleFrom(arg) ?? (arg === undefined ? selectedRule() : undefined);
  if (given) return given;
  const policy = cx.ctl.policyParse?.policy;
  if (!policy) {
    void vscode.window.showInformationMessage('Caged Agent: the policy has no entries to choose from (or has errors).');
    return undefined;
  }
  const rules = [...policy.allow, ...policy.deny];
  const pick = await vscode.window.showQuickPick(
    rules.map((r) => ({ label: r.hostText + (r.port ? `:${r.port}` : ''), description: `${r.list}${r.disabled ? ' · disabled' : ''}`, detail: `line ${r.pos.line}`, rule: r })),
    { title: `Caged Agent: ${verb} which entry?`, ignoreFocusOut: true },
  );
  return pick?.rule;
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

/** The parts of an entry Edit Entry changes, one at a time. */
async function askField(rule: Rule): Promise<'host' | 'methods' | 'paths' | 'private' | undefined> {
  const host = rule.hostText + (rule.port ? `:${rule.port}` : '');
  const items: Array<vscode.QuickPickItem & { field: 'host' | 'methods' | 'paths' | 'private' }> = [
    { label: 'Host…', description: host, field: 'host' },
    { label: 'Methods…', description: rule.methods?.join(', ') ?? 'any method', field: 'methods' },
    { label: 'Paths…', description: rule.paths?.join(' ') ?? 'any path', field: 'paths' },
    ...(rule.list === 'allow' ? [{ label: rule.private ? 'Stop reaching private addresses' : 'Let it reach private addresses (an internal host)', description: rule.private ? 'private: true' : 'private: false', field: 'private' as const }] : []),
  ];
  const pick = await vscode.window.showQuickPick(items, { title: `Edit ${host} (${rule.list})`, placeHolder: 'What to change', ignoreFocusOut: true });
  return pick?.field;
}

function listText(v: string): string[] | undefined {
  const parts = v.split(/[\s,]+/).map((x) => x.trim()).filter(Boolean);
  return parts.length ? parts : undefined;
}

export const editRuleCommand: CommandDef = {
  id: 'cagedAgent.editRule',
  run: async (cx, item?: unknown, hostArg?: string) => {
    const rule = await ruleFor(cx, item, 'Edit');
    if (!rule) return false;
    const current = rule.hostText + (rule.port ? `:${rule.port}` : '');
    const field = hostArg !== undefined ? 'host' : await askField(rule);
    if (!field) return false;
    const next: AllowSpec = { ...specOfRule(rule) };
    let what: string;
    if (field === 'host') {
      const host = hostArg ?? (await askHost(`Edit ${rule.list}[${rule.index}]`, current));
      if (!host || host === current) return false;
      Object.assign(next, specFromText(host));
      if (!/:\d+$/.test(host)) next.port = undefined;
      what = `→ ${host}`;
    } else if (field === 'private') {
      next.private = !rule.private || undefined;
      what = `private: ${!rule.private}`;
    } else {
      const methods = field === 'methods';
      const v = await vscode.window.showInputBox({
        title: `${methods ? 'Methods' : 'Paths'} of ${current}`,
        value: (methods ? rule.methods : rule.paths)?.join(methods ? ', ' : ' ') ?? '',
        prompt: methods ? 'e.g. GET, POST (empty: any method)' : 'path prefixes, e.g. /v1/ /api/ (empty: any path)',
        ignoreFocusOut: true,
      });
      if (v === undefined) return false;
      if (methods) next.methods = listText(v.toUpperCase());
      else next.paths = listText(v);
      what = `${field}: ${v || 'any'}`;
    }
    const problem = validateSpec(next);
    if (problem) {
      void vscode.window.showErrorMessage(`Caged Agent: cannot edit ${current}: ${problem}`);
      return false;
    }
    return cx.ctl.policy.edit((t) => updateEntry(t, rule.list, rule.index, next).text, `edit ${rule.list}[${rule.index}] ${what}`);
  },
};

export const removeRuleCommand: CommandDef = {
  id: 'cagedAgent.removeRule',
  run: async (cx, item?: unknown, confirm = true) => {
    const rule = await ruleFor(cx, item, 'Remove');
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
    const rule = await ruleFor(cx, item, 'Enable or disable');
    if (!rule) return false;
    return cx.ctl.policy.edit((t) => setDisabled(t, rule.list, rule.index, !rule.disabled).text, `${rule.disabled ? 'enable' : 'disable'} ${rule.hostText}`);
  },
};

export const moveRuleCommand: CommandDef = {
  id: 'cagedAgent.moveRule',
  run: async (cx, item?: unknown) => {
    const rule = await ruleFor(cx, item, 'Move');
    if (!rule) return false;
    return cx.ctl.policy.edit((t) => moveEntry(t, rule.list, rule.index).text, `move ${rule.hostText} to ${rule.list === 'allow' ? 'deny' : 'allow'}`);
  },
};

export const revealRuleCommand: CommandDef = {
  id: 'cagedAgent.revealRule',
  run: async (cx, item?: unknown) => {
    const rule = await ruleFor(cx, item, 'Show');
    if (!rule) return;
    // From the view (a click, Enter): the keyboard focus stays in the view, so F2 / Delete act on the entry next.
    await vscode.commands.executeCommand('cagedAgent.openPolicy', rule.pos.line, ruleFrom(item) !== undefined);
  },
};
