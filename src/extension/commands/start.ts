// Caged Agent: Start Caged Agent — asks what it must know the first time (agent preset), remembers it per
// workspace, shows progress while images build, opens a terminal in the agent.
import * as vscode from 'vscode';
import type { StartArgs } from '../cageSession';
import { errorText, startErrorActions } from '../logic/errors';
import { PRESETS, presetById } from '../logic/presets';
import { openAgentTerminal } from '../terminal';
import { readSettings } from '../settings';
import type { CommandContext, CommandDef } from './types';

const STEP_TITLES: Record<string, string> = {
  engine: 'Connecting to Docker',
  'proxy-image': 'Building the proxy image',
  ca: 'Minting the cage certificate authority',
  'agent-image': 'Preparing the agent image',
  workspace: 'Protecting the workspace',
  networks: 'Creating the caged network',
  'proxy-container': 'Starting the proxy',
  'proxy-healthy': 'Waiting for the proxy',
  policy: 'Loading the policy',
  'agent-container': 'Starting the agent',
};

/**
 * Which agent runs in the cage. A quick pick of its own (not showQuickPick) so it can take the keyboard focus
 * with its first item active even while a walkthrough page is open, and keep it (ignoreFocusOut).
 */
function pickPreset(): Promise<{ id: string } | undefined> {
  return new Promise((resolve) => {
    const qp = vscode.window.createQuickPick<vscode.QuickPickItem & { id: string }>();
    qp.title = 'Caged Agent: which agent runs in the cage?';
    qp.placeholder = 'Remembered for this workspace; change it with the cagedAgent.agentPreset setting';
    qp.ignoreFocusOut = true;
    qp.items = PRESETS.map((p) => ({ label: p.label, description: p.description, detail: p.hosts.length ? `Allows: ${p.hosts.map((h) => h.host).join(', ')}` : undefined, id: p.id }));
    qp.activeItems = [qp.items[0]];
    let picked: { id: string } | undefined;
    qp.onDidAccept(() => {
      picked = qp.selectedItems[0] ?? qp.activeItems[0];
      qp.hide();
    });
    qp.onDidHide(() => {
      qp.dispose();
      resolve(picked);
    });
    qp.show();
  });
}

async function start(cx: CommandContext, args: StartArgs = {}): Promise<string | undefined> {
  const { ctl } = cx;
  if (!vscode.workspace.isTrusted) {
    void vscode.window.showErrorMessage('Caged Agent: starting containers needs a trusted workspace. Trust this folder first (Workspaces: Manage Workspace Trust).');
    return undefined;
  }
  const folder = ctl.workspaceFolder();
  if (!folder) {
    void vscode.window.showErrorMessage('Caged Agent: open a folder first — the cage mounts it into the agent.');
    return undefined;
  }
  const running = ctl.activeCage();
  if (running && running.state !== 'stopped') {
    const cage = running;
    if (!args.noTerminal) openAgentTerminal(ctl, cage.id, ctl.agentCommand(args));
    return cage.id;
  }
  const settings = readSettings(folder.uri);
  let presetId = args.preset ?? (settings.agentPreset || ctl.context.workspaceState.get<string>('cagedAgent.preset'));
  let command = args.command;
  if (!presetId && !args.quiet) {
    const pick = await pickPreset();
    if (!pick) return undefined;
    presetId = pick.id;
    if (pick.id === 'custom' && command === undefined && !settings.agentCommand) {
      // "You give the image and the command": the image first (kept in the workspace settings).
      if (!args.image && !settings.agentImage) {
        const image = await vscode.window.showInputBox({
          title: 'Image for the agent container',
          prompt: 'A Docker image with the tools your agent needs (empty: the devcontainer image, else node:20-bookworm)',
          placeHolder: 'e.g. python:3.12-bookworm',
          ignoreFocusOut: true,
        });
        if (image === undefined) return undefined;
        if (image.trim()) {
          await vscode.workspace.getConfiguration('cagedAgent', folder.uri).update('agentImage', image.trim(), vscode.ConfigurationTarget.Workspace);
          args = { ...args, image: image.trim() };
        }
      }
      command = await vscode.window.showInputBox({ title: 'Command to run in the agent terminal', placeHolder: 'e.g. npx -y my-agent (empty: a plain shell)', ignoreFocusOut: true });
      if (command === undefined) return undefined;
      await ctl.context.workspaceState.update('cagedAgent.command', command);
    }
    await ctl.context.workspaceState.update('cagedAgent.preset', presetId);
  }
  if (command === undefined) command = ctl.context.workspaceState.get<string>('cagedAgent.command');
  const startArgs: StartArgs = { ...args, preset: presetId, command };
  const preset = presetById(presetId);
  try {
    const cage = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Caged Agent: starting ${preset?.label ?? 'the agent'}`, cancellable: true },
      async (progress, token) => {
        const abort = new AbortController();
        token.onCancellationRequested(() => abort.abort());
        return ctl.start(startArgs, (step, message) => progress.report({ message: `${STEP_TITLES[step] ?? step}${message ? ` — ${message}` : ''}` }), abort.signal);
      },
    );
    cx.log.info(`cage ${cage.id} is ${cage.state}`);
    const open = args.noTerminal ? false : readSettings(folder.uri).openTerminalOnStart;
    if (open) openAgentTerminal(ctl, cage.id, ctl.agentCommand(startArgs));
    void vscode.window.setStatusBarMessage(`Caged Agent: cage ${cage.id} is running`, 5000);
    return cage.id;
  } catch (e) {
    const msg = errorText(e);
    cx.log.error(`start failed: ${msg}`);
    const step = (e as { step?: string }).step;
    const actions = startErrorActions(step);
    const picked = args.quiet ? undefined : await vscode.window.showErrorMessage(`Caged Agent could not start: ${msg}`, ...actions);
    if (picked === 'Show Log') cx.log.show();
    else if (picked === 'Run Doctor') void vscode.commands.executeCommand('cagedAgent.doctor');
    else if (picked === 'Open Settings') void vscode.commands.executeCommand('workbench.action.openSettings', step === 'proxy-image' ? 'cagedAgent.proxyBaseImage' : 'cagedAgent.agent');
    else if (picked === 'Retry') void vscode.commands.executeCommand('cagedAgent.start', args);
    if (args.quiet) throw e;
    return undefined;
  }
}

export const startCommand: CommandDef = { id: 'cagedAgent.start', run: start };
