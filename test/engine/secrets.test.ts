// Credential injection through a real cage: the secret is given to the proxy only; the agent sends a dummy
// (or no) Authorization header and the upstream receives the real one. The token is nowhere the agent can see:
// not in its environment, not in its container configuration, not in the proxy's event log.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type Docker from 'dockerode';
import type { CageEngine, CageInfo } from '../../src/engine';
import { esc, makeEngine, makeWorkspace, prepare, startUpstream, tearDownCage, tmpDir, type Upstream } from './setup';

// Host names only this file puts on the shared egress network (see test/shared/upstream.ts).
const ALLOWED = 'allowed.engine-secrets.test';

const TOKEN = 'tok-caged-test-2f6c1e9a7b';

describe('credential injection in a real cage', { timeout: 180_000 }, () => {
  let engine: CageEngine;
  let docker: Docker;
  let stateDir: string;
  let ws: string;
  let upstream: Upstream;
  let cage: CageInfo;

  before(async () => {
    prepare();
    stateDir = tmpDir('caged-state-');
    ws = makeWorkspace(
      'caged-secret-ws-',
      `version: 1\nallow:\n  - host: ${ALLOWED}\n    private: true            # the test upstream is on a Docker bridge\n    auth: { scheme: Bearer, secret: upstream_token }\n`,
    );
    engine = makeEngine(stateDir);
    docker = engine.docker;
    upstream = await startUpstream(docker, engine, { name: 'caged-agent-test-upstream-secrets', hosts: [ALLOWED] });
    cage = await engine.up({ workspace: ws, upstreamCaPem: upstream.caPem, secrets: { upstream_token: TOKEN } });
  });

  after(async () => {
    await tearDownCage(engine, ws, stateDir, upstream?.stop);
  });

  it('the upstream receives the injected token, not what the agent sent; its echo comes back overwritten', async () => {
    // The upstream echoes the headers it got. The proxy overwrites the injected token wherever it comes back
    // (same length), which it only does for those exact bytes: the upstream got the token, the agent not.
    const masked = `Bearer ${'*'.repeat(TOKEN.length)}`;
    const withDummy = await engine.exec(cage.id, ['curl', '-sS', '-H', 'Authorization: Bearer agent-made-this-up', `https://${ALLOWED}/echo-headers`]);
    assert.equal(withDummy.exitCode, 0, withDummy.stderr);
    assert.equal(JSON.parse(withDummy.stdout).authorization, masked);
    const without = await engine.exec(cage.id, ['curl', '-sS', `https://${ALLOWED}/echo-headers`]);
    assert.equal(JSON.parse(without.stdout).authorization, masked);
    assert.ok(!without.stdout.includes(TOKEN));
  });

  it('the token is not in the agent: env, container config, image, workspace', async () => {
    const env = await engine.exec(cage.id, ['env']);
    assert.ok(!env.stdout.includes(TOKEN));
    const agent = await docker.getContainer(cage.agentContainerId!).inspect();
    assert.ok(!JSON.stringify(agent).includes(TOKEN), 'not in the agent container configuration');
    const image = await docker.getImage(agent.Image).inspect();
    assert.ok(!JSON.stringify(image).includes(TOKEN), 'not in the agent image');
    const grep = await engine.exec(cage.id, ['grep', '-rl', TOKEN, ws, '/etc', '/usr/local/share/caged-agent']);
    assert.equal(grep.stdout.trim(), '', 'not in any file the agent can read');
    // Every file of the workspace (the empty placeholders of protected paths are folders).
    for (const f of fs.readdirSync(ws, { recursive: true }) as string[]) {
      const p = path.join(ws, f);
      if (fs.statSync(p).isFile()) assert.ok(!fs.readFileSync(p, 'utf8').includes(TOKEN), f);
    }
  });

  it('the token is not in the proxy container configuration either: only in its config volume, mode 600', async () => {
    const proxy = docker.getContainer(cage.proxyContainerId!);
    assert.ok(!JSON.stringify(await proxy.inspect()).includes(TOKEN), 'not in `docker inspect` of the proxy');
    const statJs = "const s=require('fs').statSync('/etc/caged-agent/secrets.env');console.log((s.mode&0o777).toString(8),s.uid)";
    const exec = await proxy.exec({ Cmd: ['node', '-e', statJs], AttachStdout: true, AttachStderr: true });
    const stream = await exec.start({});
    const out = await new Promise<string>((resolve) => {
      let buf = '';
      stream.on('data', (d: Buffer) => (buf += d.toString('latin1')));
      stream.on('end', () => resolve(buf));
    });
    assert.match(out, /600 1000/);
  });

  it('the proxy event log names the rule, never the token', async () => {
    const proxy = docker.getContainer(cage.proxyContainerId!);
    const logs = String(await proxy.logs({ stdout: true, stderr: true } as any));
    assert.match(logs, new RegExp(`"host":"${esc(ALLOWED)}"`));
    assert.ok(!logs.includes(TOKEN), 'the token is not logged');
    assert.ok(!logs.includes('agent-made-this-up'), 'header values are not logged');
  });
});
