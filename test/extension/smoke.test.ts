// Smoke test in the real extension host: the extension is there, activates, and registers its commands.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as vscode from 'vscode';

const EXT_ID = 'caged-agent.caged-agent';

describe('smoke: Caged Agent in a real extension host', function () {
  it('is installed', () => {
    const ext = vscode.extensions.getExtension(EXT_ID);
    assert.ok(ext, `extension ${EXT_ID} not found; installed: ${vscode.extensions.all.map((e) => e.id).filter((id) => !id.startsWith('vscode.')).join(', ')}`);
  });

  it('activates', async function () {
    this.timeout(30_000);
    const ext = vscode.extensions.getExtension(EXT_ID);
    assert.ok(ext);
    await ext.activate();
    assert.equal(ext.isActive, true);
    console.log(`[smoke] ${EXT_ID} ${ext.packageJSON?.version} from ${ext.extensionPath}`);
  });

  it('registers cagedAgent.start', async () => {
    const commands = await vscode.commands.getCommands(true);
    assert.ok(commands.includes('cagedAgent.start'), `cagedAgent.* commands present: ${commands.filter((c) => c.startsWith('cagedAgent.')).join(', ') || 'none'}`);
  });

  it('runs with a workspace folder open, in a Node extension host that reaches the Docker engine', async () => {
    const folder = vscode.workspace.workspaceFolders?.[0];
    assert.ok(folder, 'no workspace folder open');
    assert.ok(fs.statSync(folder.uri.fsPath).isDirectory(), `${folder.uri.fsPath} is not a folder on this host`);
    // What the extension needs from its host: the engine, through the controller activate() returned.
    const exports = vscode.extensions.getExtension(EXT_ID)!.exports as { controller: { engine: { ping(): Promise<void> } } };
    await exports.controller.engine.ping();
    console.log(`[smoke] uiKind=${vscode.env.uiKind === vscode.UIKind.Web ? 'Web' : 'Desktop'} remoteName=${vscode.env.remoteName ?? '-'} vscode=${vscode.version} node=${process.version}`);
  });
});
