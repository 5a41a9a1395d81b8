// While a cage runs, a security-relevant cagedAgent.* setting that changes in the workspace or folder settings is
// not applied until the user says so (defence in depth behind the read-only mounts: the agent could only write
// .vscode/settings.json if those failed). The snapshot of each setting's layers is taken when the extension
// attaches to a cage and kept in the extension's own storage (outside the workspace), so a window reload
// compares against the values the cage started with.
import * as vscode from 'vscode';
import type { Controller } from './controller';
import {
  describeSettingChange,
  effectiveValue,
  GUARDED_SETTINGS,
  workspaceSettingChanges,
  type SettingChange,
  type SettingsSnapshot,
} from './logic/settingsGuard';

export type SettingChangeAnswer = 'apply' | 'revert' | undefined;

const APPLY = 'Apply to the running cage';
const REVERT = 'Revert the setting';

/** The modal: names each setting, its old and new value and where the change came from. */
export async function askSettingChange(changes: SettingChange[]): Promise<SettingChangeAnswer> {
  const policy = changes.some((c) => c.key === 'policyPath');
  const detail = [
    ...changes.map(describeSettingChange),
    '',
    'A program in the workspace — possibly the agent — may have made this change. The running cage keeps the values it was started with unless you apply it.',
    ...(policy ? ['A new policy file is not read-only for the running agent; restart the cage to protect it.'] : []),
    'Image and proxy settings take effect at the next start either way; revert them if you did not make the change.',
  ].join('\n');
  const pick = await vscode.window.showWarningMessage('Caged Agent: a workspace setting changed while the cage is running', { modal: true, detail }, APPLY, REVERT);
  return pick === APPLY ? 'apply' : pick === REVERT ? 'revert' : undefined;
}

export class SettingsGuard implements vscode.Disposable {
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly ctl: Controller) {
    this.disposables.push(ctl.session.onDidAttach((a) => void this.attached(a.cageId, a.started)));
  }

  private key(cageId: string): string {
    return `cagedAgent.settingsSnapshot.${cageId}`;
  }

  /** Each guarded setting's layers now, for the workspace folder. */
  snapshotNow(): SettingsSnapshot {
    const c = vscode.workspace.getConfiguration('cagedAgent', this.ctl.workspaceFolder()?.uri);
    const out = {} as SettingsSnapshot;
    for (const k of GUARDED_SETTINGS) {
      const i = c.inspect(k);
      out[k] = { defaultValue: i?.defaultValue, globalValue: i?.globalValue, workspaceValue: i?.workspaceValue, workspaceFolderValue: i?.workspaceFolderValue };
    }
    return out;
  }

  private stored(cageId: string): SettingsSnapshot | undefined {
    return this.ctl.context.workspaceState.get<SettingsSnapshot>(this.key(cageId));
  }

  private async store(cageId: string, s: SettingsSnapshot): Promise<void> {
    await this.ctl.context.workspaceState.update(this.key(cageId), s);
  }

  /** The cage the extension just started or found again: keep its settings, or compare with the kept ones. */
  private async attached(cageId: string, started: boolean): Promise<void> {
    const kept = started ? undefined : this.stored(cageId);
    const now = this.snapshotNow();
    if (!kept) {
      await this.store(cageId, now);
      this.pin(now, false);
      return;
    }
    this.pin(kept, false);
    await this.review(cageId, kept, now);
  }

  /** true when it handled the event (a cage runs): the caller then does not apply the change itself. */
  async onDidChangeConfiguration(e: vscode.ConfigurationChangeEvent): Promise<boolean> {
    const id = this.ctl.activeCageId;
    if (!id) return false;
    const kept = this.stored(id) ?? this.snapshotNow();
    const affected = GUARDED_SETTINGS.filter((k) => e.affectsConfiguration(`cagedAgent.${k}`));
    if (!affected.length) return false;
    const now = this.snapshotNow();
    // Only the settings this event is about: an unrelated change does not ask again about one already declined.
    const scoped = { ...kept };
    for (const k of affected) scoped[k] = now[k];
    await this.review(id, kept, scoped);
    return true;
  }

  private async review(cageId: string, kept: SettingsSnapshot, now: SettingsSnapshot): Promise<void> {
    const changes = workspaceSettingChanges(kept, now);
    // User settings the agent cannot reach: take them as they come.
    const userOnly = { ...kept };
    let userChanged = false;
    for (const k of GUARDED_SETTINGS) {
      if (JSON.stringify(kept[k]) !== JSON.stringify(now[k]) && !changes.some((c) => c.key === k)) {
        userOnly[k] = now[k];
        userChanged = true;
      }
    }
    if (userChanged) await this.store(cageId, userOnly);
    if (!changes.length) return;
    for (const c of changes) this.ctl.log.warn(`while cage ${cageId} runs: ${describeSettingChange(c)} — asking before applying`);
    const answer = await this.ctl.prompts.settingChange(changes);
    if (answer === 'apply') {
      const next = { ...userOnly };
      for (const c of changes) next[c.key] = now[c.key];
      await this.store(cageId, next);
      this.pin(next, true);
      this.ctl.log.info(`applied to cage ${cageId}: ${changes.map((c) => c.key).join(', ')}`);
      this.ctl.policy.targetChanged();
      await this.ctl.policy.refresh();
    } else if (answer === 'revert') {
      const c = vscode.workspace.getConfiguration('cagedAgent', this.ctl.workspaceFolder()?.uri);
      for (const ch of changes) {
        const layer = ch.source === 'workspace' ? kept[ch.key].workspaceValue : kept[ch.key].workspaceFolderValue;
        const target = ch.source === 'workspace' ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.WorkspaceFolder;
        await c.update(ch.key, layer, target);
      }
      this.ctl.log.info(`reverted: ${changes.map((x) => x.key).join(', ')}`);
    } else {
      this.ctl.log.info(`not applied to cage ${cageId}: ${changes.map((x) => x.key).join(', ')}`);
    }
  }

  /**
   * The values the running cage uses: its terminal command, and the policy file only once the user applied a
   * change (until then the policy is the one the cage was started with, from its label).
   */
  private pin(s: SettingsSnapshot, policy: boolean): void {
    this.ctl.pinSettings({ agentCommand: String(effectiveValue(s.agentCommand) ?? ''), ...(policy ? { policyPath: String(effectiveValue(s.policyPath) ?? '') } : {}) });
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}
