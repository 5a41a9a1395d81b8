// Ask instead of fail in the real extension host against a real cage (issue 17): with onUnknown: ask, the
// agent's curl to an unknown host waits and the editor knows it (the Blocked Requests view's held row, the
// status bar's "N waiting"); the notification's "Allow once" (cagedAgent.answerHeld, what its button runs)
// releases it without touching the policy file; "Allow always" writes the narrowest rule (method + path
// prefix) with the comments kept, and the push releases the waiting request.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Docker from 'dockerode';
import * as vscode from 'vscode';
import { controller, useTestCageSettings, waitFor } from './helpers';
import { DEBIAN_IMAGE, NODE_IMAGE, makeEngine, startUpstream, type Upstream } from '../engine/setup';

// Host names only this file puts on the shared egress network.
const ONCE = 'once.i17-ext.test';
const ALWAYS = 'always.i17-ext.test';

describe('held requests in the editor (onUnknown: ask)', function () {
  this.timeout(240000);
  const docker = new Docker();
  let upstream: Upstream;
  let cageId: string | undefined;
  let policyUri: vscode.Uri;
  const policyText = async () => new TextDecoder().decode(await vscode.workspace.fs.readFile(policyUri));

  before(async () => {
    const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'caged-ext-i17-'));
    upstream = await startUpstream(docker, makeEngine(stateDir), { name: `caged-agent-test-i17-ext-${process.pid}`, hosts: [ONCE, ALWAYS] });
    const caFile = path.join(stateDir, 'upstream-ca.pem');
    fs.writeFileSync(caFile, upstream.caPem);
    await useTestCageSettings({ agent: DEBIAN_IMAGE, proxyBase: NODE_IMAGE }, caFile);
    policyUri = vscode.Uri.joinPath(vscode.workspace.workspaceFolders![0].uri, '.caged', 'policy.yaml');
    await vscode.workspace.fs.writeFile(policyUri, new TextEncoder().encode('version: 1\n# ask about hosts no rule names\nonUnknown: ask\naskTimeout: 60\nallow: []\n'));
  });

  after(async () => {
    if (cageId) await vscode.commands.executeCommand('cagedAgent.stop', cageId);
    await upstream?.stop();
  });

  const curl = (url: string) =>
    controller().engine.exec(cageId!, ['sh', '-c', `curl -sS -o /dev/null -w '%{http_code}' --max-time 90 ${url}`], { timeoutMs: 100_000 }).then((r) => r.stdout.trim());

  const held = (host: string) => waitFor(`a held request to ${host}`, () => controller().session.pending.get(`${host}:443`), 30_000);

  it('starts a cage whose policy asks', async () => {
    cageId = (await vscode.commands.executeCommand('cagedAgent.start', { quiet: true, noTerminal: true })) as string | undefined;
    assert.ok(cageId);
    await waitFor('the cage to be healthy', () => controller().cages.find((c) => c.id === cageId && c.state === 'healthy'));
  });

  it('"Allow once" releases the held request; the policy file is unchanged', async () => {
    const before = await policyText();
    const t0 = Date.now();
    const pending = curl(`https://${ONCE}/v1/items`);
    const g = await held(ONCE);
    console.log(`      held request visible in the editor ${Date.now() - t0} ms after the agent's curl started`);
    assert.deepEqual([g.method, g.path, g.count], ['GET', '/v1/items', 1]);
    const bar = (await vscode.commands.executeCommand('cagedAgent._state')) as { waiting: number };
    assert.equal(bar.waiting, 1, 'the status bar counts it');
    // The test upstream lives on a Docker bridge address: "once" with private: true, as "More…" offers it.
    const t1 = Date.now();
    const r = (await vscode.commands.executeCommand('cagedAgent.answerHeld', g.key, 'once', { host: ONCE, private: true })) as { ok: boolean; message: string };
    assert.equal(r.ok, true, r.message);
    assert.equal(await pending, '200');
    console.log(`      answer → held request completed: ${Date.now() - t1} ms (extension path)`);
    assert.equal(await policyText(), before);
    await waitFor('the held row to go', () => !controller().session.pending.get(g.key));
  });

  it('"Allow always" writes the narrowest rule (method + path prefix) and the push releases the request', async () => {
    const pending = curl(`https://${ALWAYS}/v1/items`);
    const g = await held(ALWAYS);
    const r = (await vscode.commands.executeCommand('cagedAgent.answerHeld', g.key, 'always')) as { ok: boolean; message: string };
    assert.equal(r.ok, true, r.message);
    const text = await policyText();
    assert.match(text, /# ask about hosts no rule names/, 'comments kept');
    assert.match(text, new RegExp(`- host: ${ALWAYS.replace(/\./g, '\\.')}\\n\\s+methods: \\[ ?GET ?\\]\\n\\s+paths: \\[ ?"?/v1/\\*\\*"? ?\\]`), text);
    // Released by the reload and decided again: the host is a bridge address, so the cage's private-address
    // guard answers now (the quick fix offers "private: true"), at once rather than after askTimeout.
    const t0 = Date.now();
    assert.equal(await pending, '403');
    assert.ok(Date.now() - t0 < 30_000);
    await waitFor('the private-address block', () => controller().session.blocks.list().find((b) => b.host === ALWAYS && b.reason === 'private-address'));
  });
});
