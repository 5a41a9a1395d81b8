// The extension's own defences behind the read-only mounts, in a real extension host against a real engine:
// - with the mount protection switched off (an engine option, for this test), the agent rewrites
//   .vscode/settings.json from inside the container to point cagedAgent.policyPath at a file of its own: the
//   extension asks first, and until the user applies it the proxy's policy (health endpoint) stays the same;
// - with the protection on, a program on the host that replaces .git/config (git config) makes Docker drop the
//   agent's read-only mount: the extension notices, pauses the agent and offers a restart that protects it again;
//   a protected path changed on the host is reported once; a git repository the agent creates is reported.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ProtectionWatch } from '../../src/extension/protectWatch';
import type { SettingChange } from '../../src/extension/logic/settingsGuard';
import { CageItem, CagesView, ProtectionItem } from '../../src/extension/views/cagesView';
import { controller, EXT_ID, sleep, waitFor } from './helpers';
import { DEBIAN_IMAGE, NODE_IMAGE } from '../engine/setup';

const POLICY = 'version: 1\nallow:\n  - host: allowed.test\n    private: true\n';

function protection(): ProtectionWatch {
  return (vscode.extensions.getExtension(EXT_ID)!.exports as { protection: ProtectionWatch }).protection;
}

function sha256(s: string): string {
  return crypto.createHash('sha256').update(s).digest('hex');
}

describe('the workspace boundary in the extension', function () {
  this.timeout(240000);
  let folder: string;
  let cageId: string | undefined;
  const seen: SettingChange[][] = [];
  let answer: (c: SettingChange[]) => 'apply' | 'revert' | undefined = () => undefined;
  let settingsBefore: string | undefined;

  /** The proxy's policy hash, asked from inside the agent as any client would. */
  async function policyHash(): Promise<string> {
    const r = await controller().engine.exec(cageId!, ['curl', '-sS', '--noproxy', '*', '--max-time', '5', 'http://caged-proxy:3128/__caged/health']);
    return (JSON.parse(r.stdout) as { policy: string }).policy;
  }

  /** Writes a file from inside the agent (base64 keeps the content exact). */
  async function agentWrite(rel: string, text: string): Promise<number> {
    const b64 = Buffer.from(text).toString('base64');
    const r = await controller().engine.exec(cageId!, ['sh', '-c', `mkdir -p "$(dirname '${rel}')" && echo ${b64} | base64 -d > '${rel}'`], { workdir: folder });
    return r.exitCode;
  }

  async function start(): Promise<string> {
    const id = (await vscode.commands.executeCommand('cagedAgent.start', { quiet: true, noTerminal: true })) as string | undefined;
    assert.ok(id, 'the cage started');
    await waitFor('the cage to be healthy', () => controller().cages.find((c) => c.id === id && c.state === 'healthy'));
    return id;
  }

  before(async () => {
    folder = vscode.workspace.workspaceFolders![0].uri.fsPath;
    const cfg = vscode.workspace.getConfiguration('cagedAgent');
    const T = vscode.ConfigurationTarget.Workspace;
    await cfg.update('agentImage', DEBIAN_IMAGE, T);
    await cfg.update('proxyBaseImage', NODE_IMAGE, T);
    await cfg.update('agentPreset', 'custom', T);
    await cfg.update('openTerminalOnStart', false, T);
    await cfg.update('notifications', 'off', T);
    fs.mkdirSync(path.join(folder, '.caged'), { recursive: true });
    fs.writeFileSync(path.join(folder, '.caged', 'policy.yaml'), POLICY);
    controller().prompts.settingChange = async (c) => {
      seen.push(c);
      return answer(c);
    };
  });

  after(async () => {
    if (controller().activeCageId) await vscode.commands.executeCommand('cagedAgent.stop');
    controller().engine.options.protectWorkspace = true;
    if (settingsBefore !== undefined) fs.writeFileSync(path.join(folder, '.vscode', 'settings.json'), settingsBefore);
    for (const p of ['notes', '.git', 'sub']) fs.rmSync(path.join(folder, p), { recursive: true, force: true });
  });

  it('protection off: the agent points policyPath at its own file; nothing changes until the user applies it', async () => {
    controller().engine.options.protectWorkspace = false;
    cageId = await start();
    assert.equal(controller().activeCage()?.protection?.enabled, false);
    const hash0 = await policyHash();
    assert.equal(hash0, sha256(POLICY));

    const settingsFile = path.join(folder, '.vscode', 'settings.json');
    settingsBefore = fs.readFileSync(settingsFile, 'utf8');
    const settings = JSON.parse(settingsBefore) as Record<string, unknown>;
    const widened = 'version: 1\nallow:\n  - host: allowed.test\n    private: true\n  - host: evil.test\n';
    assert.equal(await agentWrite('notes/p.yaml', widened), 0);
    assert.equal(await agentWrite('.vscode/settings.json', JSON.stringify({ ...settings, 'cagedAgent.policyPath': 'notes/p.yaml' }, null, 2)), 0, 'with the protection off the agent can write it');

    const asked = await waitFor('the confirmation', () => seen.find((c) => c.some((x) => x.key === 'policyPath')), 30000);
    const change = asked.find((x) => x.key === 'policyPath')!;
    assert.equal(change.from, '.caged/policy.yaml');
    assert.equal(change.to, 'notes/p.yaml');
    assert.ok(change.source === 'workspace' || change.source === 'workspaceFolder', change.source);
    // Not applied: the extension still follows the cage's own policy, and the proxy still has it.
    await sleep(3000);
    assert.equal(await policyHash(), hash0, "the proxy's policy hash is unchanged after the agent's settings edit");
    assert.equal(controller().policyUri()?.fsPath, path.join(folder, '.caged', 'policy.yaml'));

    // The same kind of change, applied by the user this time, does reach the proxy.
    answer = (c) => (c.some((x) => x.to === 'notes/q.yaml') ? 'apply' : undefined);
    const q = 'version: 1\nallow:\n  - host: allowed.test\n    private: true\n  - host: q.test\n';
    assert.equal(await agentWrite('notes/q.yaml', q), 0);
    assert.equal(await agentWrite('.vscode/settings.json', JSON.stringify({ ...settings, 'cagedAgent.policyPath': 'notes/q.yaml' }, null, 2)), 0);
    await waitFor('the applied policy in the proxy', async () => (await policyHash()) === sha256(q), 30000);
    assert.equal(controller().policyUri()?.fsPath, path.join(folder, 'notes', 'q.yaml'));

    await vscode.commands.executeCommand('cagedAgent.stop');
    cageId = undefined;
    controller().engine.options.protectWorkspace = true;
    answer = () => undefined;
    fs.writeFileSync(settingsFile, settingsBefore);
    await waitFor('the settings restored', () => vscode.workspace.getConfiguration('cagedAgent').get('policyPath') === '.caged/policy.yaml');
  });

  it('protection on: the agent cannot write the settings at all', async () => {
    cageId = await start();
    assert.equal(controller().activeCage()?.protection?.enabled, true);
    assert.notEqual(await agentWrite('.vscode/settings.json', '{"cagedAgent.policyPath": "notes/p.yaml"}'), 0);
    assert.equal(await policyHash(), sha256(POLICY));
    await vscode.commands.executeCommand('cagedAgent.stop');
    cageId = undefined;
  });

  it('detection: a replaced .git/config pauses the agent and a restart protects it again; changes and new repositories are reported', async () => {
    const git = (...args: string[]) => {
      const r = spawnSync('git', ['-c', 'safe.directory=*', ...args], { cwd: folder, encoding: 'utf8', env: { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null' } });
      assert.equal(r.status, 0, r.stderr);
    };
    git('init', '-q');
    cageId = await start();
    const first = controller().activeCage()!;
    let pausedWhenAsked: boolean | undefined;
    let askedPaths: string[] = [];
    controller().prompts.boundaryBroken = async (b) => {
      askedPaths = b.paths;
      pausedWhenAsked = (await controller().engine.docker.getContainer(first.agentContainerId!).inspect()).State.Paused;
      return 'restart';
    };
    // git on this machine rewrites .git/config by renaming a new file over it.
    git('config', 'caged.test', 'host');
    await waitFor('the broken protection to be noticed', () => protection().alerts.find((a) => a.kind === 'broken' && a.path === '.git/config'), 30000);
    await waitFor('the question to the user', () => askedPaths.length > 0);
    assert.deepEqual(askedPaths, ['.git/config']);
    assert.equal(pausedWhenAsked, true, 'the agent was paused while the user decided');
    const restarted = await waitFor('the restarted cage', () => controller().cages.find((c) => c.id === cageId && c.state === 'healthy' && c.agentContainerId !== first.agentContainerId), 60000);
    const st = await controller().engine.checkProtection(restarted.id);
    assert.deepEqual(st.mounts, { missing: [], writable: [] }, 'after the restart .git/config is a read-only mount again');
    assert.notEqual(await agentWrite('.git/config', '[core]\n\tfsmonitor = x\n'), 0);

    // A protected folder changed on the host, not by the editor: reported once.
    fs.writeFileSync(path.join(folder, '.vscode', 'extra.json'), '{}\n');
    await waitFor('the change report', () => protection().alerts.find((a) => a.kind === 'changed' && a.path === '.vscode'), 30000);

    // A git repository the agent creates elsewhere in the workspace: git here would obey it.
    assert.equal(await agentWrite('sub/.git/config', '[core]\n\tfsmonitor = "touch /tmp/pwned"\n'), 0);
    await waitFor('the new-repository report', () => protection().alerts.find((a) => a.kind === 'repository' && a.path === 'sub/.git'), 30000);
    fs.rmSync(path.join(folder, '.vscode', 'extra.json'));
  });

  it('the sidebar shows what the cage protects', async () => {
    const view = new CagesView(controller());
    const cage = view.getChildren().find((i) => i instanceof CageItem)!;
    const [prot] = view.getChildren(cage);
    assert.ok(prot instanceof ProtectionItem);
    assert.match(String(prot.label), /^Read-only for the agent \(\d+\)$/);
    const labels = view.getChildren(prot).map((i) => String(i.label));
    for (const want of ['.git/config', '.git/hooks/', '.vscode/', '.mcp.json', '.caged/']) assert.ok(labels.includes(want), `${want} in ${labels.join(', ')}`);
  });
});
