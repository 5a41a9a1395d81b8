// Extension entry: builds the controller over the engine and wires commands, views, diagnostics,
// quick fixes, notifications and the status bar. No Docker logic here.
import * as vscode from 'vscode';
import * as path from 'node:path';
import { CageEngine } from '../engine';
import { BLOCKED_SCHEME, BLOCKED_URI } from './blockedDocument';
import { AllowQuickFixes } from './codeActions';
import { registerCommands } from './commands';
import { setRuleSelection } from './commands/rules';
import { Controller } from './controller';
import { PolicyDiagnostics } from './diagnostics';
import { BlockNotifier } from './notifications';
import { HoldNotifier } from './askNotifier';
import { ProtectionWatch } from './protectWatch';
import { SettingsGuard } from './settingsGuard';
import { CageStatusBar } from './statusBar';
import { endStrayTerminals } from './terminal';
import { AllowlistView, RuleItem } from './views/allowlistView';
import { BlocksView } from './views/blocksView';
import { CagesView } from './views/cagesView';

export async function activate(context: vscode.ExtensionContext): Promise<{ controller: Controller; protection: ProtectionWatch }> {
  const log = vscode.window.createOutputChannel('Caged Agent', { log: true });
  const stateDir = context.globalStorageUri.fsPath;
  // The Docker context is read once: a change of the setting applies after a window reload (as its description says).
  const dockerContext = vscode.workspace.getConfiguration('cagedAgent').get<string>('dockerContext') || undefined;
  const engine = new CageEngine({ stateDir, proxyBundlePath: path.join(context.extensionPath, 'dist', 'proxy.js'), dockerContext });
  const ctl = new Controller(context, engine, log);
  const diagnostics = new PolicyDiagnostics(ctl);
  const guard = new SettingsGuard(ctl);
  const protection = new ProtectionWatch(ctl);
  const cx = { ctl, diagnostics, log, protection };
  const blocksView = new BlocksView(ctl);
  const quickFixes = new AllowQuickFixes(ctl, diagnostics);
  // A tree view (not only a data provider): F2 / Delete act on its focused entry.
  const allowlist = vscode.window.createTreeView('cagedAgent.allowlist', { treeDataProvider: new AllowlistView(ctl) });
  setRuleSelection(() => {
    const item = allowlist.selection[0];
    return item instanceof RuleItem ? item.rule : undefined;
  });

  context.subscriptions.push(
    log,
    ctl,
    diagnostics,
    guard,
    protection,
    ...registerCommands(cx),
    vscode.window.registerTreeDataProvider('cagedAgent.cages', new CagesView(ctl)),
    allowlist,
    vscode.window.registerTreeDataProvider('cagedAgent.blocks', blocksView),
    blocksView,
    quickFixes,
    vscode.languages.registerCodeActionsProvider([{ pattern: '**/*.{yaml,yml}' }, { scheme: BLOCKED_SCHEME }], quickFixes, { providedCodeActionKinds: AllowQuickFixes.kinds }),
    vscode.workspace.registerFileSystemProvider(BLOCKED_SCHEME, diagnostics.blockedDocument, { isCaseSensitive: true }),
    vscode.commands.registerCommand('cagedAgent.showBlockedDocument', async () => {
      await vscode.window.showTextDocument(await vscode.workspace.openTextDocument(BLOCKED_URI), { preview: false });
    }),
    new BlockNotifier(ctl),
    new HoldNotifier(ctl),
    new CageStatusBar(ctl),
    vscode.workspace.onDidSaveTextDocument((doc) => {
      if (ctl.policy.isDocument(doc)) void ctl.policy.refresh();
    }),
    vscode.workspace.onDidChangeTextDocument((e) => {
      // Validate as the user types; the proxy gets the file when it is saved.
      if (ctl.policy.isDocument(e.document)) void ctl.policy.refresh({ push: false });
    }),
    vscode.workspace.onDidChangeConfiguration(async (e) => {
      // While a cage runs, a workspace change to a security-relevant setting waits for the user's word.
      if (await guard.onDidChangeConfiguration(e)) return;
      if (e.affectsConfiguration('cagedAgent.policyPath')) {
        watchPolicy();
        void ctl.policy.refresh();
      }
    }),
    ctl.policy.onDidChangeTarget(() => watchPolicy()),
    vscode.workspace.onDidGrantWorkspaceTrust(() => void ctl.refreshCages()),
    // A cage found again (a window reload): the previous window's terminal processes are ended, not left running.
    ctl.session.onDidAttach(({ cageId, started }) => {
      if (!started) void endStrayTerminals(ctl, cageId);
    }),
  );

  // External changes to the policy file (git checkout, `caged-agent allow`, another editor) reload too.
  let watcher: vscode.FileSystemWatcher | undefined;
  function watchPolicy(): void {
    watcher?.dispose();
    const uri = ctl.policyUri();
    const folder = ctl.workspaceFolder();
    if (!uri || !folder) return;
    watcher = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(folder, path.relative(folder.uri.fsPath, uri.fsPath).split(path.sep).join('/')));
    const onFs = () => void ctl.policy.refresh();
    watcher.onDidChange(onFs);
    watcher.onDidCreate(onFs);
    watcher.onDidDelete(onFs);
  }
  watchPolicy();
  context.subscriptions.push({ dispose: () => watcher?.dispose() });

  await ctl.policy.refresh({ push: false });
  diagnostics.refresh();
  // Reattach to a cage that survived a window reload; keep cage states fresh while the window is open.
  if (vscode.workspace.isTrusted) void ctl.refreshCages();
  const poll = setInterval(() => {
    if (vscode.workspace.isTrusted && !ctl.session.starting) void ctl.refreshCages();
  }, 15000);
  context.subscriptions.push({ dispose: () => clearInterval(poll) });
  return { controller: ctl, protection };
}

export function deactivate(): void {}
