// The real flow in a real extension host against a real Docker engine: Start Caged Agent, a blocked request
// from inside the agent becomes a diagnostic, applying the quick fix lets the retry through; the same for a client
// that ignores the proxy variables and for a raw TCP client.
// The "outside" is an upstream container of this test's own on the egress network (ALLOWED, BLOCKED below).
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Docker from 'dockerode';
import * as vscode from 'vscode';
import { doctorMark } from '../../src/extension/logic/errors';
import { editNote, proxyPolicyWarning } from '../../src/extension/logic/pushReport';
import { applyFirstQuickFix, blockDiagnostic, controller, hasBlockDiagnostic, useTestCageSettings, waitFor } from './helpers';
import { DEBIAN_IMAGE, esc, NODE_IMAGE, leftovers, makeEngine, startUpstream, type Upstream } from '../engine/setup';

// Host names only this file puts on the shared egress network (see test/shared/upstream.ts).
const ALLOWED = 'allowed.ext-cage.test';
const BLOCKED = 'blocked.ext-cage.test';
/** Reached by a client that ignores the proxy variables (the transparent path). */
const NOPROXY = 'noproxy.ext-cage.test';
/** A database-like raw TCP service (the upstream echoes on DB_PORT). */
const DB = 'db.ext-cage.test';
const DB_PORT = 5432;

describe('Caged Agent on a real Docker engine', function () {
  this.timeout(240000);
  const docker = new Docker();
  let upstream: Upstream;
  let cageId: string | undefined;
  let policyUri: vscode.Uri;
  let caFile: string;

  before(async () => {
    const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'caged-ext-engine-'));
    upstream = await startUpstream(docker, makeEngine(stateDir), { name: `caged-ext-test-upstream-${process.pid}`, hosts: [ALLOWED, BLOCKED, NOPROXY, DB], tcpEcho: [DB_PORT] });
    caFile = path.join(stateDir, 'upstream-ca.pem');
    fs.writeFileSync(caFile, upstream.caPem);
    await useTestCageSettings({ agent: DEBIAN_IMAGE, proxyBase: NODE_IMAGE }, caFile);
    const folder = vscode.workspace.workspaceFolders![0].uri;
    policyUri = vscode.Uri.joinPath(folder, '.caged', 'policy.yaml');
    await vscode.workspace.fs.writeFile(
      policyUri,
      new TextEncoder().encode(`version: 1\n# the test upstream lives on a Docker bridge: private: true is the visible opt-in\nallow:\n  - host: ${ALLOWED}\n    private: true\n`),
    );
  });

  after(async () => {
    if (cageId) await vscode.commands.executeCommand('cagedAgent.stop', cageId);
    await upstream?.stop();
    if (cageId) assert.deepEqual(await leftovers(docker, [cageId]), [], 'Stop leaves no labelled object of the cage behind');
  });

  it('Start Caged Agent brings up a healthy cage for the workspace', async () => {
    const t0 = Date.now();
    cageId = (await vscode.commands.executeCommand('cagedAgent.start', { quiet: true, noTerminal: true })) as string | undefined;
    assert.ok(cageId, 'start returns the cage id');
    console.log(`      cage ${cageId} started in ${Date.now() - t0} ms`);
    const cage = await waitFor('the cage to be healthy', () => controller().cages.find((c) => c.id === cageId && c.state === 'healthy'));
    assert.equal(path.resolve(cage.workspace), path.resolve(vscode.workspace.workspaceFolders![0].uri.fsPath));
    assert.equal(controller().activeCageId, cageId);
  });

  it('a blocked request from the agent becomes a diagnostic; the quick fix lets the retry through', async () => {
    const engine = controller().engine;
    const curl = async (url: string) => {
      const r = await engine.exec(cageId!, ['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10', url]);
      return r.stdout.trim();
    };
    assert.equal(await curl(`https://${ALLOWED}/`), '200', 'the allowed host answers through the proxy, trusted via the system store');
    assert.equal(await curl(`https://${BLOCKED}/v1/items`), '403', 'the blocked host gets 403 from the proxy');

    const d = await waitFor('the block diagnostic', () => blockDiagnostic(policyUri, BLOCKED));
    assert.match(d.d.message, /GET \/v1\/items, once/);
    assert.equal(d.uri.scheme, 'caged-agent-blocked', 'a block no rule matched has its line in Blocked requests');
    assert.equal(await applyFirstQuickFix(d, new RegExp(`^Allow ${esc(BLOCKED)}$`)), `Allow ${BLOCKED}`);
    assert.match(new TextDecoder().decode(await vscode.workspace.fs.readFile(policyUri)), new RegExp(`host: ${esc(BLOCKED)}`));
    await waitFor('the diagnostic to go', () => !hasBlockDiagnostic(policyUri, BLOCKED));

    // BLOCKED lives on a Docker bridge address: the proxy refuses private addresses unless the rule opts
    // in, and the editor offers exactly that fix.
    assert.equal(await curl(`https://${BLOCKED}/v1/items`), '403');
    const d2 = await waitFor('the private-address diagnostic', async () => {
      const x = await blockDiagnostic(policyUri, BLOCKED);
      return x && /private-address/.test(x.d.message) ? x : undefined;
    });
    assert.equal(d2.uri.toString(), policyUri.toString(), 'a block its rule decided sits on that rule in the policy file');
    const rule = controller().policyParse!.policy!.allow.find((r) => r.hostText === BLOCKED)!;
    assert.equal(d2.d.range.start.line, rule.pos.line - 1, 'on the rule’s entry');
    await applyFirstQuickFix(d2, new RegExp(`^Allow ${esc(BLOCKED)} to reach a private address$`));
    assert.match(new TextDecoder().decode(await vscode.workspace.fs.readFile(policyUri)), new RegExp(`host: ${esc(BLOCKED)}\\n\\s+private: true`));
    await waitFor('the diagnostic to go', () => !hasBlockDiagnostic(policyUri, BLOCKED));
    assert.equal(await curl(`https://${BLOCKED}/v1/items`), '200', 'the retry succeeds after the quick fix, without restarting anything');
  });

  it('a client that ignores the proxy variables: the same 403, diagnostic and quick fix; the retry succeeds', async () => {
    const engine = controller().engine;
    const curl = async (url: string) => (await engine.exec(cageId!, ['curl', '-sS', '--noproxy', '*', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10', url])).stdout.trim();
    assert.equal(await curl(`https://${NOPROXY}/v1/items`), '403', 'refused by the proxy all the same');
    const d = await waitFor('the block diagnostic', () => blockDiagnostic(policyUri, NOPROXY));
    assert.match(d.d.message, /GET \/v1\/items, once/);
    await applyFirstQuickFix(d, new RegExp(`^Allow ${esc(NOPROXY)}$`));
    await waitFor('the diagnostic to go', () => !hasBlockDiagnostic(policyUri, NOPROXY));
    assert.equal(await curl(`https://${NOPROXY}/v1/items`), '403', 'then the private-address guard');
    const d2 = await waitFor('the private-address diagnostic', async () => {
      const x = await blockDiagnostic(policyUri, NOPROXY);
      return x && /private-address/.test(x.d.message) ? x : undefined;
    });
    await applyFirstQuickFix(d2, new RegExp(`^Allow ${esc(NOPROXY)} to reach a private address$`));
    await waitFor('the diagnostic to go', () => !hasBlockDiagnostic(policyUri, NOPROXY));
    assert.equal(await curl(`https://${NOPROXY}/v1/items`), '200');
  });

  it('a raw TCP client (a database port): refused, a diagnostic whose quick fix writes tcp: [port]; then it connects unchanged', async () => {
    const engine = controller().engine;
    // bash's /dev/tcp resolves the name and connects, as psql or ssh would.
    const echo = async () => (await engine.exec(cageId!, ['bash', '-c', `exec 3<>/dev/tcp/${DB}/${DB_PORT} && echo ping >&3 && read -t 5 line <&3 && echo "got: $line"`])).stdout.trim();
    assert.equal(await echo(), '', 'refused without a rule');
    const d = await waitFor('the TCP block diagnostic', () => blockDiagnostic(policyUri, DB));
    assert.match(d.d.message, new RegExp(`^Caged agent blocked ${esc(DB)}:${DB_PORT} — TCP`));
    await applyFirstQuickFix(d, new RegExp(`^Allow TCP ${DB_PORT} to ${esc(DB)}$`));
    assert.match(new TextDecoder().decode(await vscode.workspace.fs.readFile(policyUri)), new RegExp(`- host: ${esc(DB)}\\n\\s+tcp: \\[${DB_PORT}\\]`));
    await waitFor('the diagnostic to go', () => !hasBlockDiagnostic(policyUri, DB));
    // The upstream is on a Docker bridge: the same private-address guard and fix as HTTP.
    assert.equal(await echo(), '', 'then the private-address guard');
    const d2 = await waitFor('the private-address diagnostic', async () => {
      const x = await blockDiagnostic(policyUri, DB);
      return x && /private-address/.test(x.d.message) ? x : undefined;
    });
    await applyFirstQuickFix(d2, new RegExp(`^Allow ${esc(DB)} to reach a private address$`));
    await waitFor('the diagnostic to go', () => !hasBlockDiagnostic(policyUri, DB));
    assert.equal(await echo(), 'got: ping', 'the raw bytes go through both ways');
  });

  it('an allowlist edit reaches the proxy in one push, although the edit, the save and the file watcher each refresh', async () => {
    const counts = async () => ((await vscode.commands.executeCommand('cagedAgent._state')) as { counts: Record<string, number> }).counts;
    const before = await counts();
    assert.equal(await vscode.commands.executeCommand('cagedAgent.allowHost', 'counted.test'), true);
    await new Promise((r) => setTimeout(r, 1500));
    const after = await counts();
    assert.equal((after['policy.pushes'] ?? 0) - (before['policy.pushes'] ?? 0), 1, JSON.stringify({ before, after }));
    assert.equal((after['policy.parses'] ?? 0) - (before['policy.parses'] ?? 0), 1, JSON.stringify({ before, after }));
  });

  it('an edit the proxy does not confirm never says "proxy reloaded": the status bar says what the proxy runs', async () => {
    const ctl = controller();
    const proxy = docker.getContainer(ctl.activeCage()!.proxyContainerId!);
    await proxy.pause();
    try {
      assert.equal(await vscode.commands.executeCommand('cagedAgent.allowHost', 'unconfirmed-i18.test'), true, 'the file is edited');
      const push = ctl.policy.lastEditPush;
      assert.ok(push && !push.ok, `the push was not confirmed: ${JSON.stringify(push)}`);
      assert.equal(editNote(true, push), undefined, 'no "proxy reloaded" message');
      assert.equal(proxyPolicyWarning(ctl.policy.proxyVerdict)?.text, 'policy unconfirmed');
    } finally {
      await proxy.unpause();
    }
    // Saved again with the proxy back: it confirms, and the status bar is clear again.
    assert.equal(await vscode.commands.executeCommand('cagedAgent.allowHost', 'confirmed-i18.test'), true);
    assert.equal(ctl.policy.lastEditPush?.ok, true, JSON.stringify(ctl.policy.lastEditPush));
    assert.equal(editNote(true, ctl.policy.lastEditPush), ' — proxy reloaded');
    assert.equal(proxyPolicyWarning(ctl.policy.proxyVerdict), undefined);
  });

  it('Doctor on the test setup reports no error: it checks the workspace\'s images, and warnings are warnings', async () => {
    const checks = (await vscode.commands.executeCommand('cagedAgent.doctor', { quiet: true })) as Array<{ name: string; ok: boolean; warning?: boolean; detail: string }>;
    assert.ok(checks?.length, 'doctor ran');
    const errors = checks.filter((c) => !c.ok && !c.warning);
    assert.deepEqual(errors, [], 'no error');
    assert.match(checks.find((c) => c.name === 'agent base image')!.detail, new RegExp(esc(DEBIAN_IMAGE)), 'the agentImage setting');
    assert.match(checks.find((c) => c.name === 'proxy base image')!.detail, new RegExp(esc(NODE_IMAGE)), 'the proxyBaseImage setting');
    for (const c of checks.filter((x) => x.warning)) assert.equal(doctorMark(c).icon, '$(warning)', `${c.name} shows as a warning`);
  });

  it('Verify Cage reports every check passing', async () => {
    const checks = (await vscode.commands.executeCommand('cagedAgent.verify', cageId, { allowedUrl: `https://${ALLOWED}/`, quiet: true })) as { name: string; ok: boolean; detail: string }[];
    assert.ok(checks && checks.length >= 4, 'checks ran');
    for (const c of checks) assert.ok(c.ok, `${c.name}: ${c.detail}`);
    // Its probe of a blocked name is the cage's own traffic, marked so by the proxy: no Blocked entry, no
    // Problem, no count (and so no notification).
    assert.ok(checks.some((c) => /blocked/i.test(c.name)), 'the blocked-host probe ran');
    await new Promise((r) => setTimeout(r, 1500));
    const ctl = controller();
    assert.ok(!ctl.session.blocks.list().some((g) => g.host.endsWith('caged-agent.invalid')), 'no Blocked entry for the probe');
    const all = vscode.languages.getDiagnostics().flatMap(([, ds]) => ds);
    assert.ok(!all.some((d) => d.message.includes('caged-agent.invalid')), 'no Problem for the probe');
  });
});
