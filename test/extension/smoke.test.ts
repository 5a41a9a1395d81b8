// Smoke test in the real extension host: the extension is there, activates, and registers its commands.
import * as assert from 'node:assert/strict';
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

  it('runs with a workspace folder open, in a Node extension host', () => {
    assert.ok(vscode.workspace.workspaceFolders?.length, 'no workspace folder open');
    assert.equal(typeof process.versions.node, 'string');
    console.log(`[smoke] uiKind=${vscode.env.uiKind === vscode.UIKind.Web ? 'Web' : 'Desktop'} remoteName=${vscode.env.remoteName ?? '-'} vscode=${vscode.version} node=${process.version}`);
  });
});
