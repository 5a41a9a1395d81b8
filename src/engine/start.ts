// Starting a cage: named steps, each reported as progress, and an undo stack. Whatever a step creates (the
// workspace's placeholders, the network, the config volume, the containers) goes on the stack; when a later step
// fails or the start is cancelled, the stack is unwound newest first and the error names the step that failed.
import type Docker from 'dockerode';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFAULT_POLICY_PATH } from '../policy';
import type { CageInfo, StartStep, UpOptions } from './api';
import { devcontainerImage } from './devcontainer';
import { describeCage, labelledContainers } from './discover';
import { dockerMessage, isNotFound, logTail, sleep } from './dockerutil';
import type { CageEngineOptions } from './engine';
import { execIn } from './exec';
import { ensureAgentImage, ensureProxyImage, missingPrograms, pruneAgentImages } from './images';
import { workspaceOwner } from './agentUser';
import { agentMountProblems } from './mounts';
import { DEFAULT_AGENT_IMAGE, DEFAULT_PROXY_BASE_IMAGE, EGRESS_NETWORK, names, PROXY_CONFIG_DIR } from './names';
import { createCageNetwork, ensureEgressNetwork } from './networks';
import type { WorkspaceProtection } from './protect';
import { prepareWorkspace, removePlaceholders } from './protect-scan';
import { workspaceVisible } from './visibility';
import type { ProxyLogs } from './proxyLog';
import { startupVerdict, watchStartupVerdict } from './push';
import { agentContainerSpec, configVolumeSpec, PROXY_HEALTH_CMD, proxyConfigFiles, proxyContainerSpec, secretWithLineBreak } from './specs';
import type { StateStore } from './state';
import { createTar } from './tar';

const STEP_TEXT: Record<StartStep, string> = {
  engine: 'reaching the Docker engine',
  'proxy-image': 'preparing the proxy image',
  ca: 'preparing the cage certificate authority',
  'agent-image': 'preparing the agent image',
  workspace: 'protecting the workspace',
  networks: 'creating the cage networks',
  'proxy-container': 'starting the proxy container',
  'proxy-healthy': 'waiting for the proxy to become healthy',
  policy: 'loading the policy into the proxy',
  'agent-container': 'starting the agent container',
};

export class StepError extends Error {
  constructor(readonly step: StartStep, readonly reason: string) {
    super(`Starting the cage failed while ${STEP_TEXT[step]} (step "${step}"): ${reason}`);
  }
}

/** What a start needs from the engine. */
export interface StartContext {
  docker: Docker;
  state: StateStore;
  logs: ProxyLogs;
  options: CageEngineOptions;
  engineAddress(): string;
  ping(): Promise<void>;
  down(cageId: string): Promise<void>;
}

/** The steps' bookkeeping: which step runs, progress in its name, the undo stack, cancellation. */
class StartRun {
  step: StartStep = 'engine';
  private readonly undo: Array<{ what: string; fn: () => Promise<unknown> }> = [];

  constructor(private readonly opts: UpOptions) {}

  /** Begins the next named step (a cancelled start stops here). */
  begin(step: StartStep): void {
    if (this.opts.signal?.aborted) throw new Error('cancelled');
    this.step = step;
  }

  readonly say = (message: string): void => {
    try { this.opts.onProgress?.(this.step, message); } catch {}
  };

  /** Something this start created, and how to remove it again. */
  created(what: string, fn: () => Promise<unknown>): void {
    this.undo.push({ what, fn });
  }

  /** Removes what the start created, newest first; what cannot be removed is reported, not thrown. */
  async unwind(): Promise<void> {
    for (const u of this.undo.splice(0).reverse()) {
      try { await u.fn(); } catch (err) { if (!isNotFound(err)) this.say(`could not undo ${u.what}: ${dockerMessage(err)}`); }
    }
  }
}

/** Starts the cage `id` of `workspace` (canonical), or returns it when it already runs. */
export async function startCage(cx: StartContext, id: string, workspace: string, opts: UpOptions): Promise<CageInfo> {
  const run = new StartRun(opts);
  try {
    return await runSteps(cx, run, id, workspace, opts);
  } catch (e) {
    const reason = e instanceof StepError ? e.reason : (e as any)?.code === 'ENGINE_UNREACHABLE' ? (e as Error).message : dockerMessage(e);
    await run.unwind();
    throw new StepError(run.step, reason);
  }
}

async function runSteps(cx: StartContext, run: StartRun, id: string, workspace: string, opts: UpOptions): Promise<CageInfo> {
  const { docker } = cx;
  run.begin('engine');
  run.say(`connecting to the Docker engine at ${cx.engineAddress()}`);
  await cx.ping();
  const existing = await describeCage(docker, id, await labelledContainers(docker, id));
  if (existing && (existing.state === 'healthy' || existing.state === 'starting')) {
    run.say(`cage ${id} is already running`);
    return existing;
  }
  if (existing) {
    run.say(`cage ${id} is ${existing.state}; removing its leftovers first`);
    await cx.down(id);
  }

  run.begin('proxy-image');
  const proxyBase = opts.proxyBaseImage ?? cx.options.proxyBaseImage ?? DEFAULT_PROXY_BASE_IMAGE;
  const proxyImage = await ensureProxyImage(docker, cx.options.proxyBundlePath, proxyBase, run.say);

  // The engine must see this folder (a remote engine or an unshared VM folder would give the agent an empty one).
  const visible = await workspaceVisible(docker, proxyImage, workspace, id);
  if (visible === false) {
    throw new StepError('proxy-image', `the Docker engine at ${cx.engineAddress()} cannot see the workspace folder ${workspace} (it runs on another machine, or in a VM this folder is not shared with), so the agent would get an empty folder. Use an engine on this machine, or share the folder with the engine's VM (Docker Desktop / colima file sharing).`);
  }
  run.say(visible ? 'the engine sees the workspace folder' : 'the workspace folder is not writable here: whether the engine sees it was not checked');

  run.begin('ca');
  const ca = cx.state.loadOrCreateCA(id);
  run.say(ca.created ? `minted a new CA for cage ${id} (${ca.fingerprint256.slice(0, 23)}…)` : `reusing the CA of cage ${id}`);

  run.begin('agent-image');
  let baseImage = opts.agentImage;
  if (!baseImage) {
    const dc = devcontainerImage(workspace);
    if (dc.note) run.say(dc.note);
    if (dc.image) run.say(`using the image of ${path.relative(workspace, dc.file!)}: ${dc.image}`);
    baseImage = dc.image ?? cx.options.agentImage ?? DEFAULT_AGENT_IMAGE;
  }
  const agentImage = await ensureAgentImage(docker, baseImage, ca, id, workspace, run.say, cx.options.agentUser === 'root' ? undefined : workspaceOwner(workspace));
  const pruned = await pruneAgentImages(docker, agentImage.tag).catch(() => []);
  if (pruned.length) run.say(`removed ${pruned.length} agent image(s) of old cages no container uses`);
  if (opts.requires?.programs.length) {
    const missing = await missingPrograms(docker, agentImage.tag, id, opts.requires.programs);
    if (missing.length) {
      throw new StepError('agent-image', `the image ${baseImage} has no ${missing.join(' or ')} on its PATH, which ${opts.requires.for} needs. Choose an image that has it (the cagedAgent.agentImage setting, e.g. a Node image for an npm-installed agent) or the Custom command preset.`);
    }
  }

  // What the agent cannot change (read-only mounts), the policy among it.
  run.begin('workspace');
  const policyPath = path.resolve(opts.policyPath ?? path.join(workspace, DEFAULT_POLICY_PATH));
  let policyText: string | undefined;
  try { policyText = fs.readFileSync(policyPath, 'utf8'); } catch {}
  const ws = prepareWorkspace({ workspace, policyPath, policyText, home: os.homedir(), protect: cx.options.protectWorkspace !== false });
  run.created('placeholders', async () => removePlaceholders(ws.record.placeholders));
  for (const n of ws.notes) run.say(n);
  run.say(protectionSummary(ws.record));

  run.begin('networks');
  run.say(`egress network ${EGRESS_NETWORK} and internal network ${names.network(id)}`);
  await ensureEgressNetwork(docker);
  const net = await createCageNetwork(docker, id, workspace, run.say);
  run.created('network', () => net.network.remove());
  if (net.proxyIp) run.say(`the proxy's address on ${names.network(id)}: ${net.proxyIp}`);

  run.begin('proxy-container');
  run.say(`creating the proxy container ${names.proxy(id)}`);
  await docker.createVolume(configVolumeSpec(id, workspace));
  run.created('volume', () => docker.getVolume(names.volume(id)).remove());
  const secrets = Object.entries(opts.secrets ?? {});
  const broken = secretWithLineBreak(secrets);
  if (broken !== undefined) throw new StepError('proxy-container', `the secret "${broken}" contains a line break`);
  const proxy = await docker.createContainer(proxyContainerSpec({
    id, workspace, image: proxyImage, policyPath, upstreamProxy: opts.upstreamProxy, upstreamCa: !!opts.upstreamCaPem, secrets: secrets.length > 0, proxyIp: net.proxyIp,
  }));
  run.created('proxy container', () => proxy.remove({ force: true, v: true }));
  await docker.getNetwork(EGRESS_NETWORK).connect({ Container: proxy.id });
  await proxy.putArchive(await createTar(proxyConfigFiles(ca, policyText, opts.upstreamCaPem, secrets)), { path: PROXY_CONFIG_DIR });
  await proxy.start();
  // The proxy reports on its policy as it starts: its log is followed from the start, so the report is not missed.
  const report = await watchStartupVerdict(cx.logs, proxy);
  let verdict;
  try {
    run.begin('proxy-healthy');
    run.say('waiting for the proxy to answer');
    await waitHealthy(proxy, cx.options.healthTimeoutMs ?? 30_000, opts.signal);

    run.begin('policy');
    verdict = await startupVerdict(report, policyText !== undefined, policyPath);
    run.say(verdict.ok ? `policy loaded: ${verdict.message}` : `policy problem: ${verdict.message}`);
  } finally {
    report.stop();
  }

  run.begin('agent-container');
  run.say(`starting the agent container ${names.agent(id)} from ${baseImage}`);
  const proxyIp = (await proxy.inspect()).NetworkSettings.Networks[names.network(id)]?.IPAddress || undefined;
  const { spec, ownCommand } = agentContainerSpec({
    id, workspace, image: agentImage, baseImage, policyPath, ws, agentCommand: opts.agentCommand, agentEnv: opts.agentEnv, proxyIp,
  });
  if (ownCommand) run.say(`${baseImage} has no sleep or busybox; running its own command`);
  const agent = await docker.createContainer(spec);
  run.created('agent container', () => agent.remove({ force: true, v: true }));
  await agent.start();
  await checkAgentStarted(agent);
  await checkAgentMounts(agent, run.say);
  const info = await describeCage(docker, id, await labelledContainers(docker, id));
  if (!info) throw new Error('the containers disappeared right after starting');
  run.say(`cage ${id} is running`);
  // The proxy answered its health check above; the engine's own check may not have run yet.
  return { ...info, state: info.state === 'starting' ? 'healthy' : info.state, policy: verdict };
}

function protectionSummary(p: WorkspaceProtection): string {
  if (!p.enabled) return 'protection OFF (engine option protectWorkspace: false): only the policy is read-only';
  return `${p.protected.length} paths read-only for the agent${p.placeholders.length ? `, ${p.placeholders.length} empty placeholders created` : ''}${p.writable.length ? `; writable by the policy: ${p.writable.join(', ')}` : ''}`;
}

async function waitHealthy(proxy: Docker.Container, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastProbe = '';
  for (;;) {
    if (signal?.aborted) throw new Error('cancelled');
    const info = await proxy.inspect();
    if (!info.State.Running) {
      const tail = await logTail(proxy);
      throw new StepError('proxy-healthy', `the proxy exited (code ${info.State.ExitCode})${tail ? `. Its last log lines:\n${tail}` : ''}`);
    }
    if (info.State.Health?.Status === 'healthy') return;
    const r = await execIn(proxy, PROXY_HEALTH_CMD, { timeoutMs: 5000 }).catch((e) => ({ exitCode: -1, stdout: '', stderr: dockerMessage(e) }));
    if (r.exitCode === 0) return;
    lastProbe = (r.stderr || r.stdout).trim();
    if (Date.now() > deadline) {
      const tail = await logTail(proxy);
      throw new StepError('proxy-healthy', `the proxy did not become healthy within ${Math.round(timeoutMs / 1000)} s${lastProbe ? ` (health check: ${lastProbe})` : ''}${tail ? `. Its last log lines:\n${tail}` : ''}`);
    }
    await sleep(250);
  }
}

/** A command that cannot run (missing program, bad entrypoint) exits at once: report it as a failure. */
async function checkAgentStarted(agent: Docker.Container): Promise<void> {
  await sleep(250);
  const started = await agent.inspect();
  if (!started.State.Running && started.State.ExitCode !== 0) {
    const tail = await logTail(agent);
    throw new StepError('agent-container', `the agent exited at once with code ${started.State.ExitCode}${started.State.Error ? ` (${started.State.Error})` : ''}${tail ? `. Its last output:\n${tail}` : ''}`);
  }
}

/**
 * The engine must really have applied the read-only mounts (an engine that ignores nested mounts or their
 * read-only flag would leave the workspace open): read the agent's own mount table and compare.
 */
async function checkAgentMounts(agent: Docker.Container, say: (m: string) => void): Promise<void> {
  const r = await agentMountProblems(agent);
  if ('unreadable' in r) {
    say(`the read-only mounts could not be checked from inside (${r.unreadable})`);
    return;
  }
  if (r.bad.length) throw new StepError('agent-container', `the Docker engine did not apply the agent's read-only mounts (${r.bad.join('; ')}), so the agent could change files the host runs. Use an engine that supports nested bind mounts.`);
  say(`checked from inside: ${r.readOnly} read-only mounts in place`);
}
