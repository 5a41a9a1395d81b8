// The warning before a standing allow of a risky host (issue 17): an upload, paste, webhook or tunnel host
// (policy/risk.ts), or a name that mixes scripts. Asked once, modally, before "always" is written; temporary
// answers (once, an hour) go without it.
import { domainToUnicode } from 'node:url';
import * as vscode from 'vscode';
import { idnNote, mixedScript, uploadRisk } from '../policy';

/** True when the user still wants `host` allowed for good (or there is nothing to warn about). */
export async function confirmStandingAllow(host: string): Promise<boolean> {
  const bare = host.replace(/^\*\./, '').replace(/:\d+$/, '');
  const unicode = domainToUnicode(bare);
  const notes = [uploadRisk(host), unicode && mixedScript(unicode) ? idnNote(bare, unicode) : undefined].filter(Boolean);
  if (!notes.length) return true;
  const yes = 'Allow always anyway';
  const picked = await vscode.window.showWarningMessage(`Caged Agent: ${notes.join('. ')}.`, { modal: true, detail: 'A standing allow stays in the policy file. "Allow once" or "Allow for 1 hour" on the notification answer without one.' }, yes);
  return picked === yes;
}
