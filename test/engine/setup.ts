// Shared setup for the engine tests: a Docker engine that answers, the local test images, the proxy
// bundle, workspaces with a policy, and cleanup of everything a test file created. The "outside" upstream is
// test/shared/upstream.ts (each file names its own hosts).
import Docker from 'dockerode';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import assert from 'node:assert/strict';
import { CageEngine, LABEL, LABEL_CAGE, type ProxyEvent } from '../../src/engine';
import { allowPolicy, TEST_NODE_IMAGE } from '../shared/upstream';

export { allowPolicy, esc, startUpstream, TEST_LABEL, type Upstream } from '../shared/upstream';

export const ROOT = path.resolve(__dirname, '..', '..', '..');
export const PROXY_BUNDLE = path.join(ROOT, 'dist', 'proxy.js');
export const CLI = path.join(ROOT, 'dist', 'cli.js');
export const DEBIAN_IMAGE = 'caged-agent-test/debian:bookworm';
export const NODE_IMAGE = TEST_NODE_IMAGE;
export const NOSHELL_IMAGE = 'caged-agent-test/noshell:1';
/** The Debian image plus git, node and npm (scripts/build-test-images.sh). */
export const DEV_IMAGE = 'caged-agent-test/dev:1';

let prepared = false;

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'], timeout: 15 * 60_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status})`);
}

/** Engine up, test images present, bundles built. Once per test process. */
export function prepare(): void {
  if (prepared) return;
  run('bash', [path.join(ROOT, 'scripts', 'ensure-docker.sh')]);
  run('bash', [path.join(ROOT, 'scripts', 'build-test-images.sh')]);
  try {
    run(process.execPath, [path.join(ROOT, 'scripts', 'build.mjs')]);
  } catch (e) {
    // Another bundle (e.g. the extension) may fail to build; the engine tests need only these two.
    if (!fs.existsSync(PROXY_BUNDLE) || !fs.existsSync(CLI)) throw e;
    console.error(`# build failed (${(e as Error).message}); using the existing dist/proxy.js and dist/cli.js`);
  }
  if (!fs.existsSync(PROXY_BUNDLE)) throw new Error(`${PROXY_BUNDLE} is missing after the build`);
  prepared = true;
}

export function tmpDir(prefix: string): string {
  return fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), prefix)));
}

export function makeEngine(stateDir: string): CageEngine {
  return new CageEngine({ stateDir, proxyBundlePath: PROXY_BUNDLE, proxyBaseImage: NODE_IMAGE, agentImage: DEBIAN_IMAGE });
}

/** A workspace folder with a policy (by default one allowing allowed.test, a name no upstream answers to). */
export function makeWorkspace(prefix: string, policy = ALLOW_POLICY): string {
  const ws = tmpDir(prefix);
  fs.mkdirSync(path.join(ws, '.caged'));
  fs.writeFileSync(path.join(ws, '.caged', 'policy.yaml'), policy);
  fs.writeFileSync(path.join(ws, 'README.md'), 'a test workspace\n');
  return ws;
}

export const ALLOW_POLICY = allowPolicy('allowed.test');

/** Every labelled object (containers, networks, volumes) of the given cages. */
export async function leftovers(docker: Docker, cageIds: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const id of cageIds) {
    const filters = { label: [`${LABEL}=1`, `${LABEL_CAGE}=${id}`] };
    for (const c of await docker.listContainers({ all: true, filters })) out.push(`container ${c.Names[0]}`);
    for (const n of await docker.listNetworks({ filters })) out.push(`network ${n.Name}`);
    for (const v of (await docker.listVolumes({ filters })).Volumes ?? []) out.push(`volume ${v.Name}`);
  }
  return out;
}

export interface CliRun { code: number; stdout: string; stderr: string }

/** The command line (dist/cli.js) as a user runs it: in the workspace `cwd`, with the engine state in `stateDir`. */
export function runCli(args: string[], cwd: string, stateDir: string): Promise<CliRun> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, CAGED_AGENT_STATE_DIR: stateDir }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/**
 * The end of a real-cage test file: the workspace's cage down (its agent image too), then the file's own outside
 * containers (`stops`), nothing of the cage left on the engine, the temp folders gone.
 */
export async function tearDownCage(engine: CageEngine | undefined, ws: string | undefined, stateDir: string | undefined, ...stops: Array<(() => Promise<unknown> | undefined) | undefined>): Promise<void> {
  if (engine && ws) await engine.down(engine.cageIdFor(ws), { images: true }).catch(() => {});
  for (const stop of stops) await Promise.resolve(stop?.()).catch(() => undefined);
  if (engine && ws) assert.deepEqual(await leftovers(engine.docker, [engine.cageIdFor(ws)]), [], 'nothing of the cage is left on the engine');
  if (ws) rmrf(ws);
  if (stateDir) rmrf(stateDir);
}

export function rmrf(p: string): void {
  try { fs.rmSync(p, { recursive: true, force: true }); } catch {}
}

/** The first of `events` (filled by an engine.events() subscription) matching `pred`, waiting up to 5 s for it. */
export async function waitForEvent(events: ProxyEvent[], pred: (e: ProxyEvent) => boolean): Promise<ProxyEvent> {
  const deadline = Date.now() + 5000;
  while (!events.some(pred) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const e = events.find(pred);
  assert.ok(e, `an event arrived (got ${JSON.stringify(events.slice(-5))})`);
  return e;
}
