// The `caged-agent` command line (dist/cli.js) as scripts use it: exit codes, the cage id as the last
// stdout line, verify/allow/events/down, and the plain-words error when no engine answers.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type Docker from 'dockerode';
import type { CageEngine, CageInfo } from '../../src/engine';
import { allowPolicy, CLI, DEBIAN_IMAGE, esc, leftovers, makeEngine, makeWorkspace, NODE_IMAGE, prepare, startUpstream, tearDownCage, tmpDir, type Upstream } from './setup';

// Host names only this file puts on the shared egress network (see test/shared/upstream.ts).
const ALLOWED = 'allowed.engine-cli.test';
const BLOCKED = 'blocked.engine-cli.test';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe('the caged-agent command line', { timeout: 240_000 }, () => {
  let stateDir: string;
  let ws: string;
  let upstream: Upstream;
  let engine: CageEngine;
  let docker: Docker;
  let caFile: string;
  let cageId = '';
  const children: ChildProcess[] = [];

  const env = () => ({ ...process.env, CAGED_AGENT_STATE_DIR: stateDir });
  const cli = (args: string[], extraEnv: Record<string, string> = {}, cwd = ws): Promise<Run> =>
    new Promise((resolve) => {
      const p = spawn(process.execPath, [CLI, ...args], { cwd, env: { ...env(), ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d) => (stdout += d));
      p.stderr.on('data', (d) => (stderr += d));
      p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    });

  before(async () => {
    prepare();
    stateDir = tmpDir('caged-state-');
    ws = makeWorkspace('caged-cli-', allowPolicy(ALLOWED));
    engine = makeEngine(stateDir);
    docker = engine.docker;
    upstream = await startUpstream(docker, engine, { name: 'caged-agent-test-upstream-cli', hosts: [ALLOWED, BLOCKED] });
    caFile = path.join(stateDir, 'upstream-ca.pem');
    fs.writeFileSync(caFile, upstream.caPem);
  });

  after(async () => {
    for (const c of children) if (c.exitCode === null && c.pid) process.kill(c.pid, 'SIGTERM');
    await tearDownCage(engine, ws, stateDir, upstream?.stop);
  });

  it('--help explains the commands', async () => {
    const r = await cli(['--help']);
    assert.equal(r.code, 0);
    for (const word of ['up', 'down', 'status', 'verify', 'allow', 'events', 'gc', 'doctor']) assert.match(r.stdout, new RegExp(`^  ${word}\\b`, 'm'));
  });

  it('up prints progress on stderr and the cage id as the last line of stdout', async () => {
    const t0 = Date.now();
    const r = await cli(['up', '--workspace', ws, '--image', DEBIAN_IMAGE, '--policy', path.join(ws, '.caged', 'policy.yaml'), '--proxy-base-image', NODE_IMAGE, '--upstream-ca', caFile]);
    console.log(`# caged-agent up took ${Date.now() - t0} ms`);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    cageId = lines[lines.length - 1];
    assert.equal(cageId, engine.cageIdFor(ws));
    assert.match(r.stderr, /proxy-healthy/);
    assert.match(r.stderr, /agent-container: cage ca-[0-9a-f]{10} is running/);
    const agent = await docker.getContainer(`caged-agent-${cageId}-agent`).inspect();
    assert.equal(agent.State.Running, true);
  });

  it('status lists the cage; verify passes and says so', async () => {
    const s = await cli(['status']);
    assert.equal(s.code, 0);
    assert.match(s.stdout, new RegExp(`^${cageId}\\s+(healthy|starting)\\s+${ws.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`, 'm'));
    assert.match(s.stdout, /^ {4}read-only for the agent: \.caged\/, .*\.git, .*\.mcp\.json, \.vscode$/m);
    const j = await cli(['status', '--json']);
    const listed = (JSON.parse(j.stdout) as CageInfo[]).find((c) => c.id === cageId)!;
    assert.ok(listed.protection?.protected.some((p) => p.path === '.git' && p.placeholder), 'status --json carries the protection as data');
    // CAGE defaults to the cage of the current folder.
    const v = await cli(['verify', '--allowed-url', `https://${ALLOWED}/`, '--blocked-url', `https://${BLOCKED}/`, '--external-name', ALLOWED]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.ok(v.stdout.trim().split('\n').every((l) => l.startsWith('PASS')), v.stdout);
    assert.match(v.stdout, /PASS {2}a blocked host gets 403/);
    assert.match(v.stdout, /PASS {2}the agent cannot write \.git\/config/);
    assert.match(v.stdout, /PASS {2}the agent can write source files/);
    assert.match(v.stderr, /: \d+ passed$/m);
  });

  it('verify exits non-zero when a check fails', async () => {
    // BLOCKED is not allowed: as "allowed URL" it must fail.
    const v = await cli(['verify', cageId, '--allowed-url', `https://${BLOCKED}/`]);
    assert.equal(v.code, 1);
    assert.match(v.stdout, /FAIL {2}an allowed URL succeeds/);
  });

  it('allow edits the policy and reloads the proxy; events shows it', async () => {
    const ev = spawn(process.execPath, [CLI, 'events', cageId, '--json'], { cwd: ws, env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(ev);
    let evOut = '';
    ev.stdout.on('data', (d) => (evOut += d));
    await new Promise((r) => setTimeout(r, 700)); // let it attach
    const a = await cli(['allow', BLOCKED, '--private']);
    assert.equal(a.code, 0, a.stderr);
    assert.match(a.stderr, /proxy reloaded: 2 allow and 0 deny rules in force/);
    const policy = fs.readFileSync(path.join(ws, '.caged', 'policy.yaml'), 'utf8');
    assert.match(policy, new RegExp(esc(BLOCKED)));
    assert.match(policy, /# The test upstream lives on a Docker bridge address/);
    const sh = await cli(['shell', cageId, '--', 'curl', '-sS', `https://${BLOCKED}/via-cli`]);
    assert.equal(sh.code, 0, sh.stderr);
    assert.match(sh.stdout, new RegExp(`hello from ${esc(BLOCKED)} GET /via-cli`));
    const deadline = Date.now() + 5000;
    while (!new RegExp(`"type":"allow".*"host":"${esc(BLOCKED)}"`).test(evOut) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.match(evOut, /"type":"policy-loaded"/);
    assert.match(evOut, new RegExp(`"type":"allow"[^\\n]*"host":"${esc(BLOCKED)}"`));
    process.kill(ev.pid!, 'SIGTERM');
    const code = await new Promise((r) => ev.on('close', r));
    assert.equal(code, 0);
  });

  it('down removes the cage (with --images, its agent image too) and is idempotent', async () => {
    const cageImages = () => docker.listImages({ filters: { label: ['caged-agent=1', `caged-agent.cage=${cageId}`] } });
    assert.ok((await cageImages()).length >= 1, 'the cage has its own agent image (it embeds the CA)');
    const d = await cli(['down', '--images', cageId]);
    assert.equal(d.code, 0, d.stderr);
    assert.deepEqual(await leftovers(docker, [cageId]), []);
    assert.deepEqual(await cageImages(), [], 'down --images removed the agent image');
    const again = await cli(['down', cageId]);
    assert.equal(again.code, 0, again.stderr);
    const s = await cli(['status']);
    assert.ok(!s.stdout.includes(cageId));
    const v = await cli(['verify', cageId]);
    assert.equal(v.code, 1);
  });

  it('doctor reports the engine and the DNS caveat; no engine gives a plain-words error', async () => {
    const d = await cli(['doctor', '--proxy-base-image', NODE_IMAGE, '--image', DEBIAN_IMAGE]);
    assert.equal(d.code, 0, d.stdout + d.stderr);
    assert.match(d.stdout, /^OK {4}engine reachable/m);
    assert.match(d.stdout, /^OK {4}engine version: Docker \d+\.\d+/m);
    assert.match(d.stdout, /embedded DNS caveat/);
    assert.match(d.stdout, /^OK {4}proxy base image: caged-agent-test\/node:20 is present/m);
    const none = await cli(['status'], { DOCKER_HOST: 'unix:///tmp/caged-agent-no-engine.sock' });
    assert.equal(none.code, 1);
    assert.match(none.stderr, /Cannot reach the Docker engine at \/tmp\/caged-agent-no-engine\.sock — is Docker running\?/);
  });
});
