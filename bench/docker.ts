// Optional phase (--docker): a real cage through the command line (dist/cli.js) on a real Docker engine with
// images cached: `up` → agent ready, and a blocked request made inside the agent → the block event seen by
// a `caged-agent events --json` follower. Skipped with a printed reason when no engine answers.
import * as child from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { nowMs, sleep } from './common';
import { spawnTracked, stop } from './procs';

export interface DockerResult {
  skipped?: string;
  /** First `up` in this run (may build the derived images). */
  firstUpMs?: number;
  /** `up` again after `down`, images cached: command start → exit 0 (agent running). */
  startMs?: number;
  /** Proxy event time → the event printed by `caged-agent events --json` (same host clock). */
  blockToEventMs?: number;
  /** `caged-agent shell CAGE -- curl ...` started → event printed (includes docker exec start-up). */
  execToEventMs?: number;
  agentImage?: string;
  proxyBaseImage?: string;
  notes?: string[];
}

const AGENT_IMAGE = process.env.CAGED_BENCH_AGENT_IMAGE ?? 'caged-agent-test/debian:bookworm';
const PROXY_BASE_IMAGE = process.env.CAGED_BENCH_PROXY_BASE_IMAGE ?? 'caged-agent-test/node:20';

function runCli(cli: string, args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const t0 = nowMs();
  const p = spawnTracked('caged-agent ' + args[0], process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  p.proc.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  const timer = setTimeout(() => void stop(p), timeoutMs);
  return new Promise((resolve) => {
    p.proc.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr: p.stderr(), ms: nowMs() - t0 });
    });
  });
}

export async function runDockerPhase(o: { root: string; dir: string; log: (s: string) => void; quick: boolean }): Promise<DockerResult> {
  const cli = path.join(o.root, 'dist/cli.js');
  const skip = (why: string): DockerResult => {
    o.log(`[bench] docker phase skipped: ${why}`);
    return { skipped: why };
  };
  if (!fs.existsSync(cli)) return skip('dist/cli.js does not exist (src/cli/main.ts missing)');
  try {
    child.execFileSync('docker', ['version', '--format', '{{.Server.Version}}'], { stdio: 'pipe', timeout: 10000 });
  } catch {
    return skip('no Docker engine answers (docker version failed); start one, e.g. scripts/ensure-docker.sh');
  }
  for (const img of [AGENT_IMAGE, PROXY_BASE_IMAGE]) {
    try {
      child.execFileSync('docker', ['image', 'inspect', img], { stdio: 'pipe', timeout: 10000 });
    } catch {
      return skip(`image ${img} is not there (scripts/build-test-images.sh builds it)`);
    }
  }
  const ws = path.join(o.dir, 'docker-ws');
  fs.mkdirSync(path.join(ws, '.caged'), { recursive: true });
  fs.writeFileSync(path.join(ws, '.caged', 'policy.yaml'), 'version: 1\nallow: []\n');
  const stateDir = path.join(o.dir, 'state');
  process.env.CAGED_AGENT_STATE_DIR = stateDir;
  const up = ['up', '--workspace', ws, '--image', AGENT_IMAGE, '--proxy-base-image', PROXY_BASE_IMAGE];
  const r: DockerResult = { agentImage: AGENT_IMAGE, proxyBaseImage: PROXY_BASE_IMAGE, notes: [] };
  let cage: string | undefined;
  // The cage's derived images (caged-agent/agent:…, caged-agent/proxy:…, built on the test bases) that this
  // phase creates are removed at the end; those that were there before stay.
  const before = new Set(derivedTestImages());
  try {
    const first = await runCli(cli, up, 300000);
    if (first.code !== 0) throw new Error(`up failed (${first.code}): ${first.stderr.slice(-1500)}`);
    cage = first.stdout.trim().split('\n').pop();
    r.firstUpMs = first.ms;
    const down = await runCli(cli, ['down', cage!], 120000);
    if (down.code !== 0) throw new Error(`down failed: ${down.stderr.slice(-1000)}`);
    cage = undefined;
    const again = await runCli(cli, up, 300000);
    if (again.code !== 0) throw new Error(`second up failed (${again.code}): ${again.stderr.slice(-1500)}`);
    cage = again.stdout.trim().split('\n').pop();
    r.startMs = again.ms;
    o.log(`[bench]   docker: first up ${(first.ms / 1000).toFixed(2)} s, up with cached images ${(again.ms / 1000).toFixed(2)} s`);

    // Block → event.
    const ev = spawnTracked('caged-agent events', process.execPath, [cli, 'events', cage!, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const host = `blocked-${crypto.randomBytes(4).toString('hex')}.invalid`;
    const seen = new Promise<{ at: number; e: { time?: string } }>((resolve, reject) => {
      let acc = '';
      ev.proc.stdout!.on('data', (d: Buffer) => {
        const at = Date.now();
        acc += d.toString();
        let nl: number;
        while ((nl = acc.indexOf('\n')) >= 0) {
          const line = acc.slice(0, nl);
          acc = acc.slice(nl + 1);
          try {
            const e = JSON.parse(line) as { type?: string; host?: string; time?: string };
            if (e.type === 'block' && e.host === host) resolve({ at, e });
          } catch {}
        }
      });
      ev.proc.once('exit', (c) => reject(new Error(`events exited (${c}): ${ev.stderr().slice(-1000)}`)));
    });
    seen.catch(() => {});
    await sleep(1500); // let the follower attach
    const tExec = Date.now();
    const curl = runCli(cli, ['shell', cage!, '--', 'curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10', `https://${host}/`], 60000);
    const got = await Promise.race([seen, sleep(20000).then(() => undefined)]);
    const c = await curl;
    await stop(ev);
    if (!got) throw new Error(`no block event for ${host} within 20 s (curl: ${c.stdout} ${c.stderr.slice(-500)})`);
    const evTime = got.e.time ? Date.parse(got.e.time) : NaN;
    r.blockToEventMs = Number.isFinite(evTime) ? got.at - evTime : undefined;
    r.execToEventMs = got.at - tExec;
    r.notes!.push(`curl in the agent answered ${c.stdout.trim() || '(nothing)'}`);
    o.log(`[bench]   docker: block → event ${r.blockToEventMs?.toFixed(0)} ms (exec start → event ${r.execToEventMs} ms), curl said ${c.stdout.trim()}`);
    return r;
  } finally {
    if (cage) {
      const d = await runCli(cli, ['down', cage], 120000);
      if (d.code !== 0) o.log(`[bench] docker: down ${cage} failed: ${d.stderr.slice(-500)}`);
    }
    delete process.env.CAGED_AGENT_STATE_DIR;
    const made = derivedTestImages().filter((id) => !before.has(id));
    if (made.length) {
      try {
        child.execFileSync('docker', ['image', 'rm', ...made], { stdio: 'pipe', timeout: 60000 });
      } catch (e) {
        o.log(`[bench] docker: could not remove the images this phase built (${made.join(' ')}): ${String((e as { stderr?: Buffer }).stderr ?? e).slice(-300)}`);
      }
    }
  }
}

/** IDs of the cage images (caged-agent/*) built on the test base images (they carry caged-agent.test=1). */
function derivedTestImages(): string[] {
  const out = child.execFileSync('docker', ['image', 'ls', '--filter', 'label=caged-agent.test=1', '--format', '{{.ID}} {{.Repository}}'], { encoding: 'utf8', timeout: 10000 });
  return [
    ...new Set(
      out
        .split('\n')
        .map((l) => l.trim().split(' '))
        .filter(([id, repo]) => id && repo?.startsWith('caged-agent/'))
        .map(([id]) => id),
    ),
  ];
}
