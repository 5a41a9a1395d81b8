// Shared by the extension-host tests.
import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import type { Controller } from '../../src/extension/controller';

export const EXT_ID = 'caged-agent.caged-agent';

/** The extension's controller, as its activate() returned it. */
export function controller(): Controller {
  return (vscode.extensions.getExtension(EXT_ID)!.exports as { controller: Controller }).controller;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls until `fn` gives a truthy value, or fails naming what it waited for. */
export async function waitFor<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 20000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** Quick fixes offered at a range (the document must be open for providers to run). */
export async function quickFixes(uri: vscode.Uri, range: vscode.Range): Promise<vscode.CodeAction[]> {
  await vscode.workspace.openTextDocument(uri);
  return (await vscode.commands.executeCommand('vscode.executeCodeActionProvider', uri, range, vscode.CodeActionKind.QuickFix.value)) as vscode.CodeAction[];
}

/** The workspace settings a real-cage test runs with: the local test images, the test upstream's CA, no terminal, no toasts. */
export async function useTestCageSettings(images: { agent: string; proxyBase: string }, upstreamCaFile: string): Promise<void> {
  const cfg = vscode.workspace.getConfiguration('cagedAgent');
  const T = vscode.ConfigurationTarget.Workspace;
  await cfg.update('agentImage', images.agent, T);
  await cfg.update('proxyBaseImage', images.proxyBase, T);
  await cfg.update('upstreamCaFile', upstreamCaFile, T);
  await cfg.update('agentPreset', 'custom', T);
  await cfg.update('openTerminalOnStart', false, T);
  await cfg.update('notifications', 'off', T);
}

/** The Blocked requests document (blocks no rule matches); a block a rule decided sits on that rule in the policy file. */
export const BLOCKED_DOC = vscode.Uri.from({ scheme: 'caged-agent-blocked', path: '/Blocked requests' });

/** Whether the editor shows a diagnostic for a block of `host`, in the policy file (`uri`) or in Blocked requests. */
export function hasBlockDiagnostic(uri: vscode.Uri, host: string): boolean {
  return [uri, BLOCKED_DOC].some((u) => vscode.languages.getDiagnostics(u).some((x) => x.source === 'Caged Agent' && x.message.startsWith(`Caged agent blocked ${host}:`)));
}

/** A block's diagnostic; in the Blocked requests document, once the document shows its line too (it is re-read after). */
export async function blockDiagnostic(uri: vscode.Uri, host: string): Promise<{ uri: vscode.Uri; d: vscode.Diagnostic } | undefined> {
  for (const u of [uri, BLOCKED_DOC]) {
    const d = vscode.languages.getDiagnostics(u).find((x) => x.source === 'Caged Agent' && x.message.startsWith(`Caged agent blocked ${host}:`));
    if (!d) continue;
    if (u !== BLOCKED_DOC) return { uri: u, d };
    const doc = await vscode.workspace.openTextDocument(u);
    return d.range.start.line < doc.lineCount && doc.lineAt(d.range.start.line).text.includes(`${host}:`) ? { uri: u, d } : undefined;
  }
  return undefined;
}

/** Runs the quick fix at the diagnostic whose title matches; returns its title. */
export async function applyFirstQuickFix({ uri, d }: { uri: vscode.Uri; d: vscode.Diagnostic }, title: RegExp): Promise<string> {
  const actions = await quickFixes(uri, d.range);
  const a = actions.find((x) => title.test(x.title));
  assert.ok(a?.command, `a quick fix matching ${title} among: ${actions.map((x) => x.title).join(' | ')}`);
  const ok = await vscode.commands.executeCommand(a.command.command, ...(a.command.arguments ?? []));
  assert.equal(ok, true, `${a.title} applied`);
  return a.title;
}
