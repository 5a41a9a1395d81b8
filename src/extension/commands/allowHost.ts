// Caged Agent: Allow Host... — adds an allow entry (comment-preserving), saves, reloads the proxy.
// Accepts a host string ("api.example.com", "*.example.com", "host:8443") or an AllowSpec instead of prompting.
import * as vscode from 'vscode';
import { addAllow, parsePolicy, splitHostPort } from '../../policy';
import { confirmStandingAllow } from '../confirmRisk';
import { looksInternal } from '../logic/fixes';
import type { AllowSpec } from '../../policy/types';
import type { FixChoice, FixPayload } from '../logic/fixes';
import { editNote } from '../logic/pushReport';
import type { CommandContext, CommandDef } from './types';

export function specFromText(input: string): AllowSpec {
  const s = input.trim().replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '');
  const hp = splitHostPort(s);
  if ('error' in hp || hp.host === '' || (hp.port !== undefined && !/^\d+$/.test(hp.port))) return { host: s };
  return hp.port !== undefined ? { host: hp.host, port: Number(hp.port) } : { host: hp.host };
}

/** Plain-words problem with a spec, or undefined when the policy engine accepts it. */
export function validateSpec(spec: AllowSpec): string | undefined {
  if (!spec.host) return 'Enter a host name, e.g. api.example.com or *.example.com';
  try {
    const text = addAllow('version: 1\nallow: []\n', spec).text;
    const r = parsePolicy(text);
    return r.errors[0]?.message;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

/**
 * For a name under no public top-level domain: does it live on an internal network (may resolve to a private
 * address: private: true)? undefined when the user dismissed the question. Asked by Add Host and by a
 * notification's Allow, so the retry does not fail a second time with private-address.
 */
export async function askInternal(host: string): Promise<boolean | undefined> {
  const pick = await vscode.window.showQuickPick(
    [
      { label: 'Internal host', description: 'may resolve to a private address (private: true)', private: true },
      { label: 'Public host', description: 'private addresses stay refused', private: false },
    ],
    { title: `${host} is not under a public top-level domain. Where does it live?`, ignoreFocusOut: true },
  );
  return pick?.private;
}

export const allowHostCommand: CommandDef = {
  id: 'cagedAgent.allowHost',
  run: async (cx, arg?: string | AllowSpec) => {
    let spec: AllowSpec | undefined = typeof arg === 'string' ? specFromText(arg) : arg && typeof arg === 'object' && 'host' in arg ? arg : undefined;
    if (!spec) {
      const input = await vscode.window.showInputBox({
        title: 'Caged Agent: Allow Host',
        prompt: 'Host the agent may reach (ports 80/443 unless you add :port). Use *.example.com for every subdomain.',
        placeHolder: 'api.example.com',
        ignoreFocusOut: true,
        validateInput: (v) => (v.trim() ? validateSpec(specFromText(v)) : undefined),
      });
      if (!input) return false;
      spec = specFromText(input);
      if (looksInternal(spec.host)) {
        const internal = await askInternal(spec.host);
        if (internal === undefined) return false;
        if (internal) spec = { ...spec, private: true };
      }
    }
    const problem = validateSpec(spec);
    if (problem) {
      void vscode.window.showErrorMessage(`Caged Agent: cannot allow "${spec.host}": ${problem}`);
      return false;
    }
    if (!(await confirmStandingAllow(spec.host))) return false;
    const ok = await cx.ctl.allow(spec);
    if (ok) sayEdited(cx, `allowed ${spec.host}`);
    return ok;
  },
};

/** Hidden: applies one quick-fix choice (from a code action, notification or the blocked view). */
export const applyFixCommand: CommandDef = {
  id: 'cagedAgent.applyFix',
  run: async (cx, arg?: FixPayload | FixChoice) => {
    if (!arg || typeof arg !== 'object') return false;
    const payload: FixPayload | undefined = 'fix' in arg && 'block' in arg ? arg : undefined;
    const fix = payload ? payload.fix : (arg as FixChoice);
    if (!fix || !('action' in fix)) return false;
    if (fix.action === 'add' && !(await confirmStandingAllow(fix.spec.host))) return false;
    if (!payload) {
      const ok = await cx.ctl.applyFix(fix);
      if (ok) sayEdited(cx, fix.title.replace(/^Allow/, 'allowed'));
      return ok;
    }
    // Picked from a menu, a notification or the Blocked view, maybe long after it was offered: decide again now.
    const outcome = await cx.ctl.applyFixFor(payload);
    if (outcome === 'already') {
      void vscode.window.showInformationMessage(`Caged Agent: ${payload.block.host} is already allowed by the current policy; nothing to change.`);
      return true;
    }
    if (outcome === 'gone') {
      void vscode.window.showWarningMessage(`Caged Agent: "${fix.title}" no longer fits the current policy; see the Blocked view for the fixes that do.`);
      return false;
    }
    if (outcome === 'applied') sayEdited(cx, fix.title.replace(/^Allow/, 'allowed'));
    return outcome === 'applied';
  },
};

/** The status message after an edit: "proxy reloaded" only when the proxy confirmed it (else its warning stands). */
function sayEdited(cx: CommandContext, what: string): void {
  const note = editNote(!!cx.ctl.activeCageId, cx.ctl.policy.lastEditPush);
  if (note !== undefined) void vscode.window.setStatusBarMessage(`Caged Agent: ${what}${note}`, 5000);
}
