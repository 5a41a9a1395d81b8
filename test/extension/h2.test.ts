// An HTTP/2 block in the real extension host against a real cage: the agent's `curl --http2` gets 403 on one
// stream of its connection (an allowed path on the same connection answers 200), the block shows as a
// diagnostic on the rule that decided it with the request's method and path, and the quick fixes it offers
// (the narrowest rule, then the private-address opt-in the test upstream needs) let the retry through over
// HTTP/2. The same block → diagnostic → fix machinery as for HTTP/1.1 (cage.test.ts): it is protocol-agnostic.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Docker from 'dockerode';
import * as vscode from 'vscode';
import { applyFirstQuickFix, blockDiagnostic, controller, hasBlockDiagnostic, useTestCageSettings, waitFor } from './helpers';
import { DEBIAN_IMAGE, esc, NODE_IMAGE, leftovers, makeEngine, startUpstream, type Upstream } from '../engine/setup';

// The host name only this file puts on the shared egress network (see test/shared/upstream.ts).
const API = 'api.h2-ext.test';

describe('an HTTP/2 block in the editor', function () {
  this.timeout(240000);
  const docker = new Docker();
  let upstream: Upstream;
  let cageId: string | undefined;
  let policyUri: vscode.Uri;

  before(async () => {
    const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'caged-ext-h2-'));
    upstream = await startUpstream(docker, makeEngine(stateDir), { name: `caged-agent-test-h2-ext-${process.pid}`, hosts: [API], h2: true });
    const caFile = path.join(stateDir, 'upstream-ca.pem');
    fs.writeFileSync(caFile, upstream.caPem);
    await useTestCageSettings({ agent: DEBIAN_IMAGE, proxyBase: NODE_IMAGE }, caFile);
    policyUri = vscode.Uri.joinPath(vscode.workspace.workspaceFolders![0].uri, '.caged', 'policy.yaml');
    await vscode.workspace.fs.writeFile(
      policyUri,
      new TextEncoder().encode(`version: 1\nallow:\n  - host: ${API}\n    private: true   # the test upstream lives on a Docker bridge\n    paths: ["/ok/**"]\n`),
    );
  });

  after(async () => {
    if (cageId) await vscode.commands.executeCommand('cagedAgent.stop', cageId);
    await upstream?.stop();
    if (cageId) assert.deepEqual(await leftovers(docker, [cageId]), []);
  });

  /** `curl --http2` to each URL on one connection: "<HTTP version> <status>" per URL. */
  const curl = async (...urls: string[]) => {
    const r = await controller().engine.exec(cageId!, ['curl', '--http2', '-sS', '--max-time', '15', '-w', '%{http_version} %{http_code}\\n', ...urls.flatMap((u) => ['-o', '/dev/null', u])]);
    return r.stdout.trim().split('\n');
  };

  it('starts a cage', async () => {
    cageId = (await vscode.commands.executeCommand('cagedAgent.start', { quiet: true, noTerminal: true })) as string | undefined;
    assert.ok(cageId);
    await waitFor('the cage to be healthy', () => controller().cages.find((c) => c.id === cageId && c.state === 'healthy'));
  });

  it('a stream blocked by its path becomes a diagnostic on the rule; its quick fixes let the retry through over HTTP/2', async () => {
    assert.deepEqual(await curl(`https://${API}/ok/1`, `https://${API}/v1/items`), ['2 200', '2 403'], 'one connection: the allowed stream passes, the other is refused');
    const d = await waitFor('the block diagnostic', () => blockDiagnostic(policyUri, API));
    assert.match(d.d.message, /path-not-allowed/);
    assert.match(d.d.message, /GET \/v1\/items, once/);
    assert.equal(d.uri.toString(), policyUri.toString(), 'a block its rule decided sits on that rule in the policy file');
    assert.equal(await applyFirstQuickFix(d, new RegExp(`^Allow GET /v1/\\*\\* on ${esc(API)}$`)), `Allow GET /v1/** on ${API}`);
    await waitFor('the diagnostic to go', () => !hasBlockDiagnostic(policyUri, API));
    // The new entry names the method and path only; the test upstream is on a private address, which the
    // proxy refuses until the entry opts in, and the editor offers exactly that.
    assert.deepEqual(await curl(`https://${API}/v1/items`), ['2 403']);
    const d2 = await waitFor('the private-address diagnostic', async () => {
      const x = await blockDiagnostic(policyUri, API);
      return x && /private-address/.test(x.d.message) ? x : undefined;
    });
    await applyFirstQuickFix(d2, new RegExp(`^Allow ${esc(API)} to reach a private address$`));
    await waitFor('the diagnostic to go', () => !hasBlockDiagnostic(policyUri, API));
    assert.deepEqual(await curl(`https://${API}/v1/items`, `https://${API}/ok/2`), ['2 200', '2 200'], 'the retry succeeds over HTTP/2, without restarting anything');
    assert.match(new TextDecoder().decode(await vscode.workspace.fs.readFile(policyUri)), /methods: \[ ?GET ?\]\n\s+paths: \[ ?"?\/v1\/\*\*"? ?\]/);
  });
});
