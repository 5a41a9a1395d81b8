// The settings a running cage must not take from the workspace without the user's word: a program in the
// workspace (the agent, if the read-only mounts ever fail) could write them into .vscode/settings.json or a
// .code-workspace file. Pure: the layers of each setting (what `inspect()` returns) in, the changes out.

export const GUARDED_SETTINGS = ['policyPath', 'agentImage', 'agentCommand', 'proxyBaseImage', 'upstreamProxy', 'upstreamCaFile'] as const;
export type GuardedSetting = (typeof GUARDED_SETTINGS)[number];

/** One setting's values per layer, as WorkspaceConfiguration.inspect() gives them. */
export interface SettingLayers {
  defaultValue?: unknown;
  globalValue?: unknown;
  workspaceValue?: unknown;
  workspaceFolderValue?: unknown;
}

export type SettingsSnapshot = Record<GuardedSetting, SettingLayers>;

export type SettingSource = 'workspace' | 'workspaceFolder';

export interface SettingChange {
  key: GuardedSetting;
  /** The value in force before and after (folder over workspace over user over default). */
  from: unknown;
  to: unknown;
  /** The layer that changed: workspace settings (.vscode/settings.json, a .code-workspace file) or folder settings. */
  source: SettingSource;
}

export function effectiveValue(l: SettingLayers): unknown {
  return l.workspaceFolderValue ?? l.workspaceValue ?? l.globalValue ?? l.defaultValue;
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Changes to guarded settings made in the workspace or folder layer since `before`. A change in the user's own
 * settings is not listed (the agent cannot reach them); a workspace value that was removed is (the value then
 * falls back to something the user did not choose for this cage).
 */
export function workspaceSettingChanges(before: SettingsSnapshot, after: SettingsSnapshot): SettingChange[] {
  const out: SettingChange[] = [];
  for (const key of GUARDED_SETTINGS) {
    const a = before[key] ?? {};
    const b = after[key] ?? {};
    const source: SettingSource | undefined = !same(a.workspaceFolderValue, b.workspaceFolderValue)
      ? 'workspaceFolder'
      : !same(a.workspaceValue, b.workspaceValue)
        ? 'workspace'
        : undefined;
    if (!source) continue;
    const from = effectiveValue(a);
    const to = effectiveValue(b);
    if (same(from, to)) continue;
    out.push({ key, from, to, source });
  }
  return out;
}

/** The words of the confirmation: which setting, old and new value, where the change came from. */
export function describeSettingChange(c: SettingChange): string {
  const show = (v: unknown) => (v === undefined || v === '' ? '(not set)' : JSON.stringify(v));
  const where = c.source === 'workspace' ? 'workspace settings (.vscode/settings.json or the .code-workspace file)' : 'folder settings (.vscode/settings.json)';
  return `cagedAgent.${c.key}: ${show(c.from)} → ${show(c.to)}, changed in the ${where}`;
}
