// Ask instead of fail in a real cage (issue 17), driven by the command line as a user would: with
// onUnknown: ask the agent's curl to an unknown host waits; `allow HOST --for 5m` completes it with 200 and
// leaves the policy file as it was; the next request passes at once; after a short temporary allow expires the
// host waits again; `deny` answers 403 at once; no answer gives 403 "no-decision" after askTimeout. The
// answer travels through the proxy's control socket (docker exec), which the agent cannot reach.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { CageEngine } from '../../src/engine';
import { CLI, makeEngine, makeWorkspace, prepare, runCli, startUpstream, tearDownCage, tmpDir, type Upstream } from './setup';

// Host names only this file puts on the shared egress network.
const UNKNOWN = 'unknown.i17-ask.test';
const LATER = 'later.i17-ask.test';
const DENIED = 'denied.i17-ask.test';
const NEVER = 'never.i17-ask.test';
const ASK_TIMEOUT = 4;

const POLICY = `version: 1
# Ask the user about hosts no rule names (held for ${ASK_TIMEOUT} s).
onUnknown: ask
askTimeout: ${ASK_TIMEOUT}
allow: []
`;

describe('held requests in a real cage (onUnknown: ask)', { timeout: 300_000 }, () => {
  let stateDir: string;
  let ws: string;
  let upstream: Upstream;
  let engine: CageEngine;
  let cageId = '';
  const policyFile = () => path.join(ws, '.caged', 'policy.yaml');

  const cli = (args: string[]) => runCli(args, ws, stateDir);

  /** The agent's curl: status code and the time it took. */
  const agentCurl = async (url: string): Promise<{ status: string; ms: number; body: string }> => {
    const t0 = Date.now();
    const r = await engine.exec(cageId, ['sh', '-c', `curl -sS --max-time 60 -w '\\n%{http_code}' ${url}`], { timeoutMs: 90_000 });
    const lines = r.stdout.trimEnd().split('\n');
    return { status: lines.pop() ?? '', body: lines.join('\n'), ms: Date.now() - t0 };
  };

  const waitPending = async (host: string): Promise<void> => {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const s = await engine.pending(cageId);
      if (s.pending.some((g) => g.host === host)) return;
      if (Date.now() > deadline) throw new Error(`no request to ${host} was held: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };

  before(async () => {
    prepare();
    stateDir = tmpDir('caged-state-i17-');
    ws = makeWorkspace('caged-i17-ask-', POLICY);
    engine = makeEngine(stateDir);
    upstream = await startUpstream(engine.docker, engine, { name: 'caged-agent-test-i17-upstream', hosts: [UNKNOWN, LATER, DENIED, NEVER] });
    const info = await engine.up({ workspace: ws, upstreamCaPem: upstream.caPem });
    cageId = info.id;
    assert.equal(info.policy?.ok, true, info.policy?.message);
  });

  after(async () => {
    await tearDownCage(engine, ws, stateDir, upstream?.stop);
  });

  it('curl to an unknown host waits; allow --for 5m completes it with 200 and leaves the policy file unchanged; the next passes at once', async () => {
    const before = fs.readFileSync(policyFile(), 'utf8');
    const ev = spawn(process.execPath, [CLI, 'events', cageId], { cwd: ws, env: { ...process.env, CAGED_AGENT_STATE_DIR: stateDir }, stdio: ['ignore', 'pipe', 'pipe'] });
    let evOut = '';
    ev.stdout.on('data', (d) => (evOut += d));
    try {
      await new Promise((r) => setTimeout(r, 700));
      const held = agentCurl(`https://${UNKNOWN}/first`);
      await waitPending(UNKNOWN);
      const p = await cli(['pending', cageId]);
      assert.equal(p.code, 0, p.stderr);
      assert.match(p.stdout, new RegExp(`^${UNKNOWN.replace(/\./g, '\\.')}:443 {2}1 waiting, first GET /first, gives up in \\d+ s$`, 'm'));
      const t0 = Date.now();
      const a = await cli(['allow', UNKNOWN, '--for', '5m', '--private', '--cage', cageId]);
      const answerMs = Date.now() - t0;
      assert.equal(a.code, 0, a.stderr);
      assert.match(a.stderr, new RegExp(`${UNKNOWN.replace(/\./g, '\\.')} is allowed for 5 min; released 1 waiting request`));
      const r = await held;
      console.log(`# held curl completed ${r.ms} ms after it started; the CLI answer took ${answerMs} ms`);
      assert.equal(r.status, '200', r.body);
      assert.match(r.body, new RegExp(`hello from ${UNKNOWN.replace(/\./g, '\\.')} GET /first`));
      assert.equal(fs.readFileSync(policyFile(), 'utf8'), before, 'the policy file is unchanged');
      const second = await agentCurl(`https://${UNKNOWN}/second`);
      assert.equal(second.status, '200');
      assert.ok(second.ms < 3000, `${second.ms} ms`);
      const st = await cli(['status']);
      assert.match(st.stdout, new RegExp(`ALLOW ${UNKNOWN.replace(/\./g, '\\.')} \\(private\\) {2}5 min left {2}\\[t-[0-9a-f]{6}\\]`));
      for (let i = 0; i < 50 && !/PENDING GET unknown/.test(evOut); i++) await new Promise((res) => setTimeout(res, 100));
      assert.match(evOut, new RegExp(`PENDING GET ${UNKNOWN.replace(/\./g, '\\.')}:443/first waiting: 1`));
      assert.match(evOut, new RegExp(`ALLOWED ${UNKNOWN.replace(/\./g, '\\.')}:443 held requests answered: 1`));
    } finally {
      ev.kill('SIGTERM');
    }
  });

  it('after a short temporary allow expires the host waits again; deny answers 403 at once', async () => {
    const a = await cli(['allow', LATER, '--for', '3s', '--private', '--cage', cageId]);
    assert.equal(a.code, 0, a.stderr);
    assert.match(a.stderr, /no request was waiting/);
    assert.equal((await agentCurl(`https://${LATER}/in-time`)).status, '200');
    await new Promise((r) => setTimeout(r, 3500));
    const held = agentCurl(`https://${LATER}/too-late`);
    await waitPending(LATER);
    const t0 = Date.now();
    const d = await cli(['deny', LATER, cageId]);
    assert.equal(d.code, 0, d.stderr);
    assert.match(d.stderr, /refused 1 waiting request/);
    const r = await held;
    assert.equal(r.status, '403');
    assert.ok(Date.now() - t0 < 5000);
    assert.match(r.body, /The user denied/);
    // Remembered for the session: the next one is refused at once, not held.
    const next = await agentCurl(`https://${LATER}/again`);
    assert.equal(next.status, '403');
    assert.ok(next.ms < 3000, `${next.ms} ms`);
    const rv = await cli(['revoke', LATER, cageId]);
    assert.equal(rv.code, 0, rv.stderr);
  });

  it('deny with nothing waiting still remembers; no answer gives 403 no-decision after askTimeout', async () => {
    const t0 = Date.now();
    const r = await agentCurl(`https://${NEVER}/nobody`);
    assert.equal(r.status, '403');
    assert.match(r.body, /Reason: no-decision/);
    assert.match(r.body, new RegExp(`Nobody answered within ${ASK_TIMEOUT} s`));
    assert.ok(Date.now() - t0 >= ASK_TIMEOUT * 1000 - 200, `${Date.now() - t0} ms`);
    const once = await cli(['allow', NEVER, '--once', '--cage', cageId]);
    assert.equal(once.code, 1, 'an answer the proxy did not take is reported');
    assert.match(once.stderr, /the proxy did not take it: no request to never\.i17-ask\.test is waiting/);
  });

  it('a proxy that restarts gets the temporary allows back from the engine', async () => {
    const a = await cli(['allow', DENIED, '--session', '--private', '--cage', cageId]);
    assert.equal(a.code, 0, a.stderr);
    const proxy = engine.docker.getContainer(`caged-agent-${cageId}-proxy`);
    await proxy.restart({ t: 1 });
    for (let i = 0; i < 100; i++) {
      const st = (await proxy.inspect()).State;
      if (st.Health?.Status === 'healthy') break;
      await new Promise((r) => setTimeout(r, 200));
    }
    // The next contact with the proxy (any engine call) notices the new boot and restores the entries.
    const s = await engine.pending(cageId);
    assert.ok(s.temporary.some((e) => e.host === DENIED && e.kind === 'allow'), JSON.stringify(s.temporary));
    const r = await agentCurl(`https://${DENIED}/after-restart`);
    assert.equal(r.status, '200', r.body);
    assert.ok(r.ms < 5000, `${r.ms} ms`);
  });

  it('the agent cannot reach the control socket', async () => {
    const r = await engine.exec(cageId, ['sh', '-c', 'ls -l /tmp/caged-control.sock 2>&1; echo rc=$?']);
    assert.match(r.stdout, /No such file/);
  });
});
