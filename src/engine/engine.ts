// The cage on a Docker engine: one internal network per cage holding the agent and the proxy, a shared
// egress network only proxies join, images derived and cached, lifecycle with undo on failure, policy
// push, event stream, recovery by labels, verification from inside the agent.
import Docker from 'dockerode';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Duplex } from 'node:stream';
import { DEFAULT_POLICY_PATH, SECRET_ENV_PREFIX, secretEnvName } from '../policy';
import { parseEventLine, type PolicyErrorEvent, type PolicyLoadedEvent, type ProxyEvent } from '../policy/events';
import { policyHash } from '../shared/policyHash';
import type {
  CageInfo,
  CageState,
  DoctorCheck,
  EventOptions,
  EventSubscription,
  ExecOptions,
  ExecResult,
  GcOptions,
  GcResult,
  PolicyPushResult,
  ProtectionStatus,
  ShellOptions,
  ShellSession,
  StartStep,
  UpOptions,
  VerifyCheck,
  VerifyOptions,
} from './api';
import { devcontainerImage } from './devcontainer';
import { collect, demux, demuxBuffer, dockerMessage, isConnectionError, isNotFound, splitLines, statusOf } from './dockerutil';
import { ensureAgentImage, ensureProxyImage, imageExists, listLabelledImages, pathExists, type AgentImage } from './images';
import {
  cageIdFor,
  canonicalWorkspace,
  DEFAULT_AGENT_IMAGE,
  DEFAULT_PROXY_BASE_IMAGE,
  EGRESS_NETWORK,
  LABEL,
  LABEL_CAGE,
  LABEL_ROLE,
  LABEL_WORKSPACE,
  labels,
  names,
  PROXY_ALIAS,
  PROXY_CONFIG_DIR,
  PROXY_PORT,
  PROXY_UID,
  PROXY_URL,
} from './names';
import { checkMounts, parseMountInfo, type WorkspaceProtection } from './protect';
import { changedSinceStart, gitSafeDirectoryEnv, prepareWorkspace, removePlaceholders, type PreparedWorkspace } from './protect-scan';
import { StateStore } from './state';
import { createTar, type TarEntry } from './tar';
import { runVerify } from './verify';

export interface CageEngineOptions {
  /** Private state (per-cage CA). Extension: its globalStorage; CLI: defaultStateDir(). */
  stateDir: string;
  /** The bundled proxy program (dist/proxy.js). */
  proxyBundlePath: string;
  /** A ready dockerode client; default `new Docker(dockerOptions)` (honours DOCKER_HOST). */
  docker?: Docker;
  dockerOptions?: Docker.DockerOptions;
  /** Defaults for up() when UpOptions leave them out. */
  proxyBaseImage?: string;
  agentImage?: string;
  /** How long to wait for the proxy to become healthy; default 30 s. */
  healthTimeoutMs?: number;
  /** How long pushPolicy waits for the proxy's verdict; default 10 s. */
  policyTimeoutMs?: number;
  /**
   * false: mount only the policy read-only, not the rest of the protected workspace paths. For tests of the
   * extension's own defences behind the mounts; no setting or policy key reaches it. Default true.
   */
  protectWorkspace?: boolean;
}

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

/** Telemetry/auto-update off for common agents and tools (they would only be blocked anyway). */
export const TELEMETRY_ENV: Record<string, string> = {
  DISABLE_TELEMETRY: '1',
  DISABLE_ERROR_REPORTING: '1',
  DISABLE_AUTOUPDATER: '1',
  CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
  DO_NOT_TRACK: '1',
  NEXT_TELEMETRY_DISABLED: '1',
  GATSBY_TELEMETRY_DISABLED: '1',
  DOTNET_CLI_TELEMETRY_OPTOUT: '1',
  HF_HUB_DISABLE_TELEMETRY: '1',
  GEMINI_TELEMETRY_ENABLED: 'false',
  SCARF_ANALYTICS: 'false',
  NPM_CONFIG_UPDATE_NOTIFIER: 'false',
  CHECKPOINT_DISABLE: '1',
};

export const PROXY_ENV: Record<string, string> = {
  HTTP_PROXY: PROXY_URL,
  HTTPS_PROXY: PROXY_URL,
  http_proxy: PROXY_URL,
  https_proxy: PROXY_URL,
  NO_PROXY: 'localhost,127.0.0.1,::1',
  no_proxy: 'localhost,127.0.0.1,::1',
};

class StepError extends Error {
  constructor(readonly step: StartStep, readonly reason: string) {
    super(`Starting the cage failed while ${STEP_TEXT[step]} (step "${step}"): ${reason}`);
  }
}

function envList(env: Record<string, string>): string[] {
  return Object.entries(env).map(([k, v]) => `${k}=${v}`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The proxy's own health check, run by Docker's HEALTHCHECK and by the engine when it cannot wait for Docker. */
const PROXY_HEALTH_CMD = ['node', '/app/proxy.js', '--health', '--listen', `127.0.0.1:${PROXY_PORT}`];

/**
 * Removes a Docker object: true when removed, false when it was already gone. While the engine answers with
 * one of `busy` (still in use right after its containers went) it retries for about two seconds.
 */
async function removeWhenFree(remove: () => Promise<unknown>, busy: number[], stillBusy: string): Promise<boolean> {
  for (let i = 0; i < 10; i++) {
    try {
      await remove();
      return true;
    } catch (e) {
      if (isNotFound(e)) return false;
      if (busy.includes(statusOf(e) ?? 0)) {
        await sleep(200);
        continue;
      }
      throw e;
    }
  }
  throw new Error(stillBusy);
}

function versionLess(v: string, than: [number, number, number]): boolean {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(v);
  if (!m) return false;
  const a = [Number(m[1]), Number(m[2]), Number(m[3])];
  for (let i = 0; i < 3; i++) if (a[i] !== than[i]) return a[i] < than[i];
  return false;
}

/** The engine could not allocate a subnet for a new network from its address pools. */
class PoolExhaustedError extends Error {}

/** The proxy's config volume: CA (key mode 600), policy, extra upstream CAs, secrets (mode 600). */
function proxyConfigTar(ca: { certPem: string; keyPem: string }, policyText: string | undefined, upstreamCaPem: string | undefined, secrets: Array<[string, string]>): Buffer {
  const files: TarEntry[] = [
    { name: 'ca.crt', data: ca.certPem, mode: 0o644, uid: PROXY_UID, gid: PROXY_UID },
    { name: 'ca.key', data: ca.keyPem, mode: 0o600, uid: PROXY_UID, gid: PROXY_UID },
  ];
  if (policyText !== undefined) files.push({ name: 'policy.yaml', data: policyText, mode: 0o644, uid: PROXY_UID, gid: PROXY_UID });
  if (upstreamCaPem) files.push({ name: 'upstream-ca.pem', data: upstreamCaPem, mode: 0o644, uid: PROXY_UID, gid: PROXY_UID });
  if (secrets.length) {
    const text = secrets.map(([k, v]) => `${secretEnvName(k).slice(SECRET_ENV_PREFIX.length)}=${v}\n`).join('');
    files.push({ name: 'secrets.env', data: text, mode: 0o600, uid: PROXY_UID, gid: PROXY_UID });
  }
  return createTar(files);
}


type Summary = Docker.ContainerInfo;

export class CageEngine {
  readonly docker: Docker;
  readonly state: StateStore;
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly pushLocks = new Map<string, Promise<unknown>>();

  constructor(readonly options: CageEngineOptions) {
    this.docker = options.docker ?? new Docker(options.dockerOptions);
    this.state = new StateStore(options.stateDir);
  }

  /** The cage id for a workspace folder (stable: sha256 of its real path). */
  cageIdFor(workspace: string): string {
    return cageIdFor(workspace);
  }

  /** Where the engine is, in words ("/var/run/docker.sock", "tcp://host:2376"). */
  engineAddress(): string {
    const m = this.docker.modem as any;
    if (typeof m.socketPath === 'string' && m.socketPath) return m.socketPath;
    if (m.host) return `${m.protocol ?? 'http'}://${m.host}:${m.port ?? ''}`;
    const env = process.env.DOCKER_HOST;
    if (env) return env.replace(/^unix:\/\//, '');
    return '/var/run/docker.sock';
  }

  private unreachable(e: unknown): Error {
    const err = new Error(`Cannot reach the Docker engine at ${this.engineAddress()} — is Docker running? (${(e as any)?.code ?? dockerMessage(e)})`);
    (err as any).code = 'ENGINE_UNREACHABLE';
    return err;
  }

  /** Pings the engine; throws the plain-words "is Docker running?" error when nothing answers. */
  async ping(): Promise<void> {
    try {
      await this.docker.ping();
    } catch (e) {
      if (isConnectionError(e) || statusOf(e) === undefined) throw this.unreachable(e);
      throw e;
    }
  }

  private async withLock<T>(map: Map<string, Promise<unknown>>, key: string, fn: () => Promise<T>): Promise<T> {
    const prev = map.get(key) ?? Promise.resolve();
    const run = prev.catch(() => {}).then(fn);
    map.set(key, run);
    try {
      return await run;
    } finally {
      if (map.get(key) === run) map.delete(key);
    }
  }

  // ---------------------------------------------------------------------------------------------------
  // Discovery

  private async containers(cageId?: string, role?: string): Promise<Summary[]> {
    const label = [`${LABEL}=1`];
    if (cageId) label.push(`${LABEL_CAGE}=${cageId}`);
    if (role) label.push(`${LABEL_ROLE}=${role}`);
    return this.docker.listContainers({ all: true, filters: { label } });
  }

  private async describe(cageId: string, list: Summary[]): Promise<CageInfo | undefined> {
    const proxy = list.find((c) => c.Labels[LABEL_ROLE] === 'proxy');
    const agent = list.find((c) => c.Labels[LABEL_ROLE] === 'agent');
    if (!proxy && !agent) return undefined;
    let health: string | undefined;
    if (proxy && proxy.State === 'running') {
      try {
        const c = this.docker.getContainer(proxy.Id);
        health = (await c.inspect()).State.Health?.Status;
        // Docker runs its first health check only after an interval: ask the proxy directly meanwhile, so a
        // cage that is already serving does not show as "starting".
        if (health === 'starting') {
          const r = await this.execIn(c, PROXY_HEALTH_CMD, { timeoutMs: 3000 }).catch(() => undefined);
          if (r?.exitCode === 0) health = 'healthy';
        }
      } catch {}
    }
    let state: CageState;
    const proxyUp = proxy?.State === 'running';
    const agentUp = agent?.State === 'running';
    if (!proxyUp && !agentUp) state = 'stopped';
    else if (!proxyUp) state = 'proxy-down';
    else if (agent?.State === 'paused') state = 'paused';
    else if (!agentUp) state = 'agent-down';
    else if (health === 'unhealthy') state = 'unhealthy';
    else if (health === 'starting') state = 'starting';
    else state = 'healthy';
    const src = agent ?? proxy!;
    const created = Math.min(...[proxy, agent].filter((c): c is Summary => !!c).map((c) => c.Created));
    return {
      id: cageId,
      workspace: src.Labels[LABEL_WORKSPACE] ?? '',
      state,
      agentContainerId: agent?.Id,
      proxyContainerId: proxy?.Id,
      networkName: names.network(cageId),
      agentImage: agent?.Image ?? '',
      createdAt: new Date(created * 1000).toISOString(),
      workspaceInContainer: agent?.Labels['caged-agent.workspace-in-container'],
      policyPath: src.Labels['caged-agent.policy'],
      baseImage: agent?.Labels['caged-agent.base-image'],
      protection: agent ? protectionOf(agent.Labels) : undefined,
    };
  }

  /** One cage by id, or undefined when none of its containers exists. */
  async get(cageId: string): Promise<CageInfo | undefined> {
    await this.ping();
    return this.describe(cageId, await this.containers(cageId));
  }

  /** The cages found on the engine by their labels (recovers after a restart of the caller). */
  async list(): Promise<CageInfo[]> {
    await this.ping();
    const all = await this.containers();
    const byCage = new Map<string, Summary[]>();
    for (const c of all) {
      const id = c.Labels[LABEL_CAGE];
      const role = c.Labels[LABEL_ROLE];
      if (!id || (role !== 'agent' && role !== 'proxy')) continue;
      byCage.set(id, [...(byCage.get(id) ?? []), c]);
    }
    const out: CageInfo[] = [];
    for (const [id, list] of byCage) {
      const info = await this.describe(id, list);
      if (info) out.push(info);
    }
    return out.sort((a, b) => a.workspace.localeCompare(b.workspace));
  }

  // ---------------------------------------------------------------------------------------------------
  // Start

  async up(opts: UpOptions): Promise<CageInfo> {
    const workspace = canonicalWorkspace(opts.workspace);
    let st: fs.Stats | undefined;
    try { st = fs.statSync(workspace); } catch {}
    if (!st?.isDirectory()) throw new Error(`The workspace folder ${workspace} does not exist or is not a folder.`);
    const id = cageIdFor(workspace);
    return this.withLock(this.locks, id, () => this.upLocked(id, workspace, opts));
  }

  private async upLocked(id: string, workspace: string, opts: UpOptions): Promise<CageInfo> {
    const progress = (step: StartStep, message: string) => {
      try { opts.onProgress?.(step, message); } catch {}
    };
    const undo: Array<{ what: string; fn: () => Promise<unknown> }> = [];
    let step: StartStep = 'engine';
    const checkAbort = () => {
      if (opts.signal?.aborted) throw new Error('cancelled');
    };
    try {
      // engine
      progress('engine', `connecting to the Docker engine at ${this.engineAddress()}`);
      await this.ping();
      const existing = await this.describe(id, await this.containers(id));
      if (existing && (existing.state === 'healthy' || existing.state === 'starting')) {
        progress('engine', `cage ${id} is already running`);
        return existing;
      }
      if (existing) {
        progress('engine', `cage ${id} is ${existing.state}; removing its leftovers first`);
        await this.down(id);
      }
      checkAbort();

      // proxy image
      step = 'proxy-image';
      const proxyBase = opts.proxyBaseImage ?? this.options.proxyBaseImage ?? DEFAULT_PROXY_BASE_IMAGE;
      const proxyImage = await ensureProxyImage(this.docker, this.options.proxyBundlePath, proxyBase, (m) => progress('proxy-image', m));
      checkAbort();

      // CA
      step = 'ca';
      const ca = this.state.loadOrCreateCA(id);
      progress('ca', ca.created ? `minted a new CA for cage ${id} (${ca.fingerprint256.slice(0, 23)}…)` : `reusing the CA of cage ${id}`);

      // agent image
      step = 'agent-image';
      let baseImage = opts.agentImage;
      if (!baseImage) {
        const dc = devcontainerImage(workspace);
        if (dc.note) progress('agent-image', dc.note);
        if (dc.image) progress('agent-image', `using the image of ${path.relative(workspace, dc.file!)}: ${dc.image}`);
        baseImage = dc.image ?? this.options.agentImage ?? DEFAULT_AGENT_IMAGE;
      }
      const agentImage = await ensureAgentImage(this.docker, baseImage, ca, id, workspace, (m) => progress('agent-image', m));
      checkAbort();

      // workspace: what the agent cannot change (read-only mounts), the policy among it
      step = 'workspace';
      const policyPath = path.resolve(opts.policyPath ?? path.join(workspace, DEFAULT_POLICY_PATH));
      let policyText: string | undefined;
      try { policyText = fs.readFileSync(policyPath, 'utf8'); } catch {}
      const ws = prepareWorkspace({ workspace, policyPath, policyText, home: os.homedir(), protect: this.options.protectWorkspace !== false });
      undo.push({ what: 'placeholders', fn: async () => removePlaceholders(ws.record.placeholders) });
      const prot = ws.record;
      for (const n of ws.notes) progress('workspace', n);
      progress('workspace', prot.enabled
        ? `${prot.protected.length} paths read-only for the agent${prot.placeholders.length ? `, ${prot.placeholders.length} empty placeholders created` : ''}${prot.writable.length ? `; writable by the policy: ${prot.writable.join(', ')}` : ''}`
        : 'protection OFF (engine option protectWorkspace: false): only the policy is read-only');
      checkAbort();

      // networks
      step = 'networks';
      progress('networks', `egress network ${EGRESS_NETWORK} and internal network ${names.network(id)}`);
      await this.ensureEgressNetwork();
      const net = await this.createCageNetwork(id, workspace, (m) => progress('networks', m));
      undo.push({ what: 'network', fn: () => net.remove() });
      checkAbort();

      // proxy container
      step = 'proxy-container';
      progress('proxy-container', `creating the proxy container ${names.proxy(id)}`);
      await this.docker.createVolume({ Name: names.volume(id), Labels: labels('volume', id, workspace) } as any);
      undo.push({ what: 'volume', fn: () => this.docker.getVolume(names.volume(id)).remove() });
      const secrets = Object.entries(opts.secrets ?? {});
      for (const [k, v] of secrets) {
        if (/[\r\n]/.test(v)) throw new StepError('proxy-container', `the secret "${k}" contains a line break`);
      }
      const proxy = await this.createProxyContainer(id, workspace, proxyImage, policyPath, opts, secrets.length > 0);
      undo.unshift({ what: 'proxy container', fn: () => proxy.remove({ force: true, v: true }) });
      await this.docker.getNetwork(EGRESS_NETWORK).connect({ Container: proxy.id });
      await proxy.putArchive(proxyConfigTar(ca, policyText, opts.upstreamCaPem, secrets), { path: PROXY_CONFIG_DIR });
      await proxy.start();
      checkAbort();

      // healthy
      step = 'proxy-healthy';
      progress('proxy-healthy', 'waiting for the proxy to answer');
      await this.waitHealthy(proxy, this.options.healthTimeoutMs ?? 30_000, opts.signal);

      // policy
      step = 'policy';
      const verdict = await this.startupPolicyVerdict(proxy, policyText !== undefined, policyPath);
      progress('policy', verdict.ok ? `policy loaded: ${verdict.message}` : `policy problem: ${verdict.message}`);
      checkAbort();

      // agent container
      step = 'agent-container';
      progress('agent-container', `starting the agent container ${names.agent(id)} from ${baseImage}`);
      const agent = await this.createAgentContainer(id, workspace, agentImage, baseImage, policyPath, ws, opts, (m) => progress('agent-container', m));
      undo.unshift({ what: 'agent container', fn: () => agent.remove({ force: true, v: true }) });
      await agent.start();
      await this.checkAgentStarted(agent);
      await this.checkAgentMounts(agent, (m) => progress('agent-container', m));
      const info = await this.describe(id, await this.containers(id));
      if (!info) throw new Error('the containers disappeared right after starting');
      progress('agent-container', `cage ${id} is running`);
      // The proxy answered its health check above; the engine's own check may not have run yet.
      return { ...info, state: info.state === 'starting' ? 'healthy' : info.state, policy: verdict };
    } catch (e) {
      const reason = e instanceof StepError ? e.reason : (e as any)?.code === 'ENGINE_UNREACHABLE' ? (e as Error).message : dockerMessage(e);
      for (const u of undo) {
        try { await u.fn(); } catch (err) { if (!isNotFound(err)) progress(step, `could not undo ${u.what}: ${dockerMessage(err)}`); }
      }
      throw new StepError(step, reason);
    }
  }

  /** The proxy container: hardened, on the cage network (alias caged-proxy), reading its config volume. */
  private async createProxyContainer(id: string, workspace: string, proxyImage: string, policyPath: string, opts: UpOptions, withSecrets: boolean): Promise<Docker.Container> {
    const cmd = [
      '--policy', `${PROXY_CONFIG_DIR}/policy.yaml`,
      '--ca-cert', `${PROXY_CONFIG_DIR}/ca.crt`,
      '--ca-key', `${PROXY_CONFIG_DIR}/ca.key`,
      '--listen', `0.0.0.0:${PROXY_PORT}`,
    ];
    if (opts.upstreamCaPem) cmd.push('--upstream-ca', `${PROXY_CONFIG_DIR}/upstream-ca.pem`);
    if (opts.upstreamProxy) cmd.push('--upstream-proxy', opts.upstreamProxy);
    // Secrets go into the proxy's config volume (mode 600), not its environment: they stay out of
    // `docker inspect` and of the container's configuration.
    if (withSecrets) cmd.push('--secrets-file', `${PROXY_CONFIG_DIR}/secrets.env`);
    return this.docker.createContainer({
      name: names.proxy(id),
      Image: proxyImage,
      Cmd: cmd,
      User: `${PROXY_UID}:${PROXY_UID}`,
      Labels: { ...labels('proxy', id, workspace), 'caged-agent.policy': policyPath },
      Healthcheck: {
        Test: ['CMD', ...PROXY_HEALTH_CMD],
        Interval: 5e9,
        Timeout: 4e9,
        Retries: 3,
        StartPeriod: 0,
      },
      HostConfig: {
        NetworkMode: names.network(id),
        CapDrop: ['ALL'],
        SecurityOpt: ['no-new-privileges:true'],
        ReadonlyRootfs: true,
        Tmpfs: { '/tmp': 'rw,noexec,nosuid,nodev,size=64m' },
        PidsLimit: 256,
        Memory: 512 * 1024 * 1024,
        // Every request of the agent goes through the proxy: when the agent keeps the CPUs busy (a build,
        // parallel downloads), the proxy's turn comes first (twice the default weight; no effect otherwise).
        CpuShares: 2048,
        Mounts: [{ Type: 'volume', Source: names.volume(id), Target: PROXY_CONFIG_DIR, ReadOnly: false }],
        RestartPolicy: { Name: 'unless-stopped' },
        LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } },
      },
      NetworkingConfig: { EndpointsConfig: { [names.network(id)]: { Aliases: [PROXY_ALIAS] } } },
    } as any);
  }

  /** The agent container: cage network only, DNS that resolves nothing outside, the workspace mounted. */
  private async createAgentContainer(
    id: string,
    workspace: string,
    agentImage: AgentImage,
    baseImage: string,
    policyPath: string,
    ws: PreparedWorkspace,
    opts: UpOptions,
    progress: (m: string) => void,
  ): Promise<Docker.Container> {
    const workspaceInContainer = ws.workspaceInContainer;
    let entrypoint: string[] | undefined;
    let agentCmd: string[] | undefined;
    if (opts.agentCommand?.length) {
      entrypoint = [opts.agentCommand[0]];
      agentCmd = opts.agentCommand.slice(1);
    } else if (agentImage.keepalive) {
      entrypoint = [agentImage.keepalive[0]];
      agentCmd = agentImage.keepalive.slice(1);
    } else {
      progress(`${baseImage} has no sleep or busybox; running its own command`);
    }
    const env = gitSafeDirectoryEnv({ ...TELEMETRY_ENV, ...(opts.agentEnv ?? {}), ...PROXY_ENV });
    for (const k of Object.keys(env)) if (k.toUpperCase().startsWith(SECRET_ENV_PREFIX)) delete env[k];
    return this.docker.createContainer({
      name: names.agent(id),
      Image: agentImage.tag,
      ...(entrypoint ? { Entrypoint: entrypoint, Cmd: agentCmd } : {}),
      Env: envList(env),
      WorkingDir: workspaceInContainer,
      Hostname: 'caged-agent',
      Labels: {
        ...labels('agent', id, workspace),
        'caged-agent.policy': policyPath,
        'caged-agent.base-image': baseImage,
        'caged-agent.workspace-in-container': workspaceInContainer,
        [LABEL_PROTECT]: JSON.stringify(ws.record),
      },
      HostConfig: {
        NetworkMode: names.network(id),
        // The engine's embedded DNS still answers names on the cage network (caged-proxy); anything
        // else it would forward goes to an address where nothing answers, so external lookups fail
        // even on engines older than 25.0.5 (CVE-2024-29018).
        Dns: ['127.0.0.1'],
        DnsSearch: [],
        // Lookups of outside names never succeed here: fail them in a second instead of hanging.
        DnsOptions: ['timeout:1', 'attempts:1'],
        Mounts: ws.mounts,
        Init: true,
        PublishAllPorts: false,
        // The agent may install packages as root in its own container, but needs no raw sockets (no
        // crafted packets past the proxy) and no device nodes.
        CapDrop: ['NET_RAW', 'MKNOD'],
        RestartPolicy: { Name: 'no' },
      },
      NetworkingConfig: { EndpointsConfig: { [names.network(id)]: {} } },
    } as any);
  }

  /**
   * The engine must really have applied the read-only mounts (an engine that ignores nested mounts or their
   * read-only flag would leave the workspace open): read the agent's own mount table and compare.
   */
  private async checkAgentMounts(agent: Docker.Container, progress: (m: string) => void): Promise<void> {
    const info = await agent.inspect();
    const expected = (info.HostConfig.Mounts ?? []).map((m: any) => ({ target: m.Target as string, readOnly: !!m.ReadOnly }));
    const r = await this.readMounts(agent, expected);
    if ('unreadable' in r) {
      progress(`the read-only mounts could not be checked from inside (${r.unreadable})`);
      return;
    }
    const bad = [...r.missing.map((m) => `${m} is not mounted`), ...r.writable.map((m) => `${m} is writable`)];
    if (bad.length) throw new StepError('agent-container', `the Docker engine did not apply the agent's read-only mounts (${bad.join('; ')}), so the agent could change files the host runs. Use an engine that supports nested bind mounts.`);
    progress(`checked from inside: ${expected.filter((m) => m.readOnly).length} read-only mounts in place`);
  }

  /** The agent's mount table against the expected mounts (cat /proc/self/mountinfo, as root). */
  private async readMounts(agent: Docker.Container, expected: Array<{ target: string; readOnly: boolean }>): Promise<ReturnType<typeof checkMounts> | { unreadable: string }> {
    const r = await this.execIn(agent, ['cat', '/proc/self/mountinfo'], { user: '0', timeoutMs: 10_000 }).catch((e) => ({ exitCode: -1, stdout: '', stderr: dockerMessage(e) }));
    if (r.exitCode !== 0) return { unreadable: (r.stderr || r.stdout).trim().split('\n')[0] || `exit ${r.exitCode}` };
    return checkMounts(expected, parseMountInfo(r.stdout));
  }

  /**
   * The workspace protection of a running cage, checked now: the agent's mount table against the mounts it was
   * created with (a program on the host that replaces a protected file or folder makes Docker drop that mount),
   * and the protected paths' content against the start.
   */
  async checkProtection(cageId: string): Promise<ProtectionStatus> {
    const agent = await this.agentContainer(cageId);
    const info = await agent.inspect();
    const protection = protectionOf(info.Config.Labels ?? {});
    if (!protection) throw new Error(`Cage ${cageId} was started without workspace protection records (started by an older version); restart it.`);
    const workspace = info.Config.Labels?.[LABEL_WORKSPACE] ?? '';
    const mounts = (info.HostConfig.Mounts ?? []) as any[];
    const mountPaths: Record<string, string> = {};
    for (const m of mounts) {
      const rel = path.relative(workspace, m.Source);
      mountPaths[m.Target] = rel === '' ? '.' : !rel.startsWith('..') && !path.isAbsolute(rel) ? rel.split(path.sep).join('/') : m.Source;
    }
    const r = await this.readMounts(agent, mounts.map((m) => ({ target: m.Target, readOnly: !!m.ReadOnly })));
    return {
      protection,
      ...('unreadable' in r ? { unreadable: r.unreadable } : { mounts: r }),
      changed: changedSinceStart(workspace, protection),
      mountPaths,
    };
  }

  /** Freezes the agent's processes (docker pause): nothing in it runs until resumeAgent. */
  async pauseAgent(cageId: string): Promise<void> {
    await (await this.agentContainer(cageId)).pause();
  }

  async resumeAgent(cageId: string): Promise<void> {
    const list = await this.containers(cageId, 'agent');
    if (list[0]?.State === 'paused') await this.docker.getContainer(list[0].Id).unpause();
  }

  /** A command that cannot run (missing program, bad entrypoint) exits at once: report it as a failure. */
  private async checkAgentStarted(agent: Docker.Container): Promise<void> {
    await sleep(250);
    const started = await agent.inspect();
    if (!started.State.Running && started.State.ExitCode !== 0) {
      const tail = await this.logTail(agent);
      throw new StepError('agent-container', `the agent exited at once with code ${started.State.ExitCode}${started.State.Error ? ` (${started.State.Error})` : ''}${tail ? `. Its last output:\n${tail}` : ''}`);
    }
  }

  /**
   * The cage's internal network. The bridge gets no IPv4 address of its own (inhibit_ipv4), so the agent
   * cannot reach services listening on the engine host through the bridge gateway; only containers on
   * the network (the proxy) are reachable. Falls back to a plain internal bridge (with a warning) on
   * engines that refuse the option.
   */
  private async createCageNetwork(id: string, workspace: string, progress: (m: string) => void): Promise<Docker.Network> {
    const base = { Name: names.network(id), Driver: 'bridge', Internal: true, CheckDuplicate: true, Labels: labels('network', id, workspace) };
    try {
      return await this.createNetwork({ ...base, Options: { 'com.docker.network.bridge.inhibit_ipv4': 'true' } });
    } catch (e) {
      if (statusOf(e) === 409 || e instanceof PoolExhaustedError) throw e;
      progress(`the engine refused a bridge without a host address (${dockerMessage(e)}); the agent may reach services on the engine host`);
      return this.createNetwork(base);
    }
  }

  /**
   * docker.createNetwork, except that used-up address pools (every network needs a range from them) become a
   * PoolExhaustedError that says so plainly and what to do.
   */
  private async createNetwork(spec: object): Promise<Docker.Network> {
    try {
      return await this.docker.createNetwork(spec as any);
    } catch (e) {
      if (!/non-overlapping IPv4 address pool|address pools have been fully subnetted/i.test(dockerMessage(e))) throw e;
      const ours = await this.docker.listNetworks({ filters: { label: [`${LABEL}=1`] } }).catch(() => []);
      throw new PoolExhaustedError(
        `Docker has no free address range left for another network (${dockerMessage(e)}). ${ours.length} of its networks belong to Caged Agent. ` +
          'Stop cages you no longer need (Caged Agent: Stop, or "caged-agent down" / "caged-agent gc"), remove other unused networks ("docker network prune"), ' +
          'or give the engine more room with "default-address-pools" in its daemon.json.',
      );
    }
  }

  /** Creates the shared egress network when missing (labelled; reused by every cage). */
  async ensureEgressNetwork(): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const info = await this.docker.getNetwork(EGRESS_NETWORK).inspect();
        if (info.Labels?.[LABEL] !== '1') {
          throw new Error(`a network named ${EGRESS_NETWORK} exists that Caged Agent did not create; remove or rename it`);
        }
        if (info.Internal) throw new Error(`the network ${EGRESS_NETWORK} is internal; it must reach the outside`);
        return;
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
      try {
        await this.createNetwork({ Name: EGRESS_NETWORK, Driver: 'bridge', CheckDuplicate: true, Labels: labels('egress') });
        return;
      } catch (e) {
        if (statusOf(e) !== 409) throw e; // created concurrently: inspect again
      }
    }
  }

  private async logTail(container: Docker.Container, lines = 20): Promise<string> {
    try {
      const buf = (await container.logs({ stdout: true, stderr: true, tail: lines, follow: false } as any)) as unknown as Buffer;
      const { stdout, stderr } = demuxBuffer(Buffer.isBuffer(buf) ? buf : Buffer.from(String(buf)));
      return (stdout + stderr).trim();
    } catch {
      return '';
    }
  }

  private async waitHealthy(proxy: Docker.Container, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let lastProbe = '';
    for (;;) {
      if (signal?.aborted) throw new Error('cancelled');
      const info = await proxy.inspect();
      if (!info.State.Running) {
        const tail = await this.logTail(proxy);
        throw new StepError('proxy-healthy', `the proxy exited (code ${info.State.ExitCode})${tail ? `. Its last log lines:\n${tail}` : ''}`);
      }
      if (info.State.Health?.Status === 'healthy') return;
      const r = await this.execIn(proxy, PROXY_HEALTH_CMD, { timeoutMs: 5000 }).catch((e) => ({ exitCode: -1, stdout: '', stderr: dockerMessage(e) }));
      if (r.exitCode === 0) return;
      lastProbe = (r.stderr || r.stdout).trim();
      if (Date.now() > deadline) {
        const tail = await this.logTail(proxy);
        throw new StepError('proxy-healthy', `the proxy did not become healthy within ${Math.round(timeoutMs / 1000)} s${lastProbe ? ` (health check: ${lastProbe})` : ''}${tail ? `. Its last log lines:\n${tail}` : ''}`);
      }
      await sleep(250);
    }
  }

  private async startupPolicyVerdict(proxy: Docker.Container, hadPolicy: boolean, policyPath: string): Promise<PolicyPushResult> {
    const deadline = Date.now() + 5000;
    for (;;) {
      const buf = (await proxy.logs({ stdout: true, stderr: false, follow: false } as any)) as unknown as Buffer;
      const { stdout } = demuxBuffer(buf);
      let found: PolicyPushResult | undefined;
      for (const line of stdout.split('\n')) {
        const ev = parseEventLine(line);
        if (ev?.type === 'policy-loaded' || ev?.type === 'policy-error') found = verdictOf(ev);
      }
      if (found) return found;
      if (Date.now() > deadline) {
        return hadPolicy
          ? { ok: false, message: 'the proxy did not report on the policy' }
          : { ok: false, message: `no policy file at ${policyPath}: everything is blocked until one is written` };
      }
      await sleep(100);
    }
  }

  // ---------------------------------------------------------------------------------------------------
  // Policy and events

  private async proxyContainer(cageId: string): Promise<Docker.Container> {
    const list = await this.containers(cageId, 'proxy');
    const c = list[0];
    if (!c) throw new Error(`No proxy is running for cage ${cageId}.`);
    if (c.State !== 'running') throw new Error(`The proxy of cage ${cageId} is not running (${c.State}).`);
    return this.docker.getContainer(c.Id);
  }

  private async agentContainer(cageId: string): Promise<Docker.Container> {
    const list = await this.containers(cageId, 'agent');
    const c = list[0];
    if (!c) throw new Error(`No agent container exists for cage ${cageId}.`);
    if (c.State !== 'running') throw new Error(`The agent container of cage ${cageId} is not running (${c.State}).`);
    return this.docker.getContainer(c.Id);
  }

  /**
   * Copies the policy text into the proxy (works with remote engines) and signals a reload; resolves with
   * the proxy's verdict (policy-loaded or policy-error with line/column).
   */
  async pushPolicy(cageId: string, text: string): Promise<PolicyPushResult> {
    return this.withLock(this.pushLocks, cageId, async () => {
      const proxy = await this.proxyContainer(cageId);
      const hash = policyHash(text);
      const startSec = Math.floor(Date.now() / 1000) - 1;
      const timeoutMs = this.options.policyTimeoutMs ?? 10_000;
      // Follow new log lines before signalling, so the verdict cannot be missed.
      const stream = (await proxy.logs({ stdout: true, stderr: false, follow: true, tail: 0 } as any)) as unknown as NodeJS.ReadableStream;
      let settle!: (r: PolicyPushResult | undefined) => void;
      const verdict = new Promise<PolicyPushResult | undefined>((r) => (settle = r));
      const { stdout } = demux(stream);
      splitLines(stdout, (line) => {
        const ev = parseEventLine(line);
        if (ev?.type === 'policy-error' || (ev?.type === 'policy-loaded' && ev.hash === hash)) settle(verdictOf(ev));
      });
      stdout.on('end', () => settle(undefined));
      const timer = setTimeout(() => settle(undefined), timeoutMs);
      try {
        await proxy.putArchive(createTar([{ name: 'policy.yaml', data: text, mode: 0o644, uid: PROXY_UID, gid: PROXY_UID }]), { path: PROXY_CONFIG_DIR });
        await proxy.kill({ signal: 'SIGHUP' });
        const r = await verdict;
        if (r) return r;
        // Fallback: look at what was logged since the push started.
        const buf = (await proxy.logs({ stdout: true, stderr: false, follow: false, since: startSec } as any)) as unknown as Buffer;
        let found: PolicyPushResult | undefined;
        for (const line of demuxBuffer(buf).stdout.split('\n')) {
          const ev = parseEventLine(line);
          if (ev?.type === 'policy-error' || (ev?.type === 'policy-loaded' && ev.hash === hash)) found = verdictOf(ev);
        }
        return found ?? { ok: false, message: `the proxy did not confirm the new policy within ${Math.round(timeoutMs / 1000)} s` };
      } finally {
        clearTimeout(timer);
        (stream as any).destroy?.();
      }
    });
  }

  /** Reads the policy file the cage was started with and pushes it. */
  async reloadPolicy(cageId: string): Promise<PolicyPushResult> {
    const info = await this.get(cageId);
    if (!info?.policyPath) throw new Error(`Cage ${cageId} is not running.`);
    let text: string;
    try {
      text = fs.readFileSync(info.policyPath, 'utf8');
    } catch (e) {
      throw new Error(`Cannot read the policy file ${info.policyPath}: ${(e as Error).message}`);
    }
    return this.pushPolicy(cageId, text);
  }

  /** Follows the proxy's log stream and calls onEvent for each proxy event (typed JSON lines). */
  async events(cageId: string, onEvent: (e: ProxyEvent) => void, opts: EventOptions = {}): Promise<EventSubscription> {
    const proxy = await this.proxyContainer(cageId);
    const q: any = { stdout: true, stderr: false, follow: true };
    if (opts.since !== undefined) q.since = opts.since instanceof Date ? Math.floor(opts.since.getTime() / 1000) : opts.since;
    else q.tail = 0;
    const stream = (await proxy.logs(q)) as unknown as NodeJS.ReadableStream;
    let stopped = false;
    let ended = false;
    const end = (err?: Error) => {
      if (ended) return;
      ended = true;
      if (!stopped) opts.onEnd?.(err);
    };
    const { stdout } = demux(stream);
    splitLines(stdout, (line) => {
      if (stopped) return;
      const ev = parseEventLine(line);
      if (ev) {
        try { onEvent(ev); } catch {}
      }
    });
    stdout.on('end', () => end());
    stdout.on('error', (e) => end(e));
    stream.on('error', (e: Error) => end(e));
    return {
      stop() {
        stopped = true;
        (stream as any).destroy?.();
      },
    };
  }

  // ---------------------------------------------------------------------------------------------------
  // Stop and cleanup

  /**
   * Removes the cage's agent, proxy, network and volume. Idempotent: a missing object is success.
   * `images: true` also removes the cage's derived agent images (they embed its CA; a restart rebuilds).
   */
  async down(cageId: string, opts: { images?: boolean } = {}): Promise<void> {
    await this.ping();
    const list = await this.containers(cageId);
    const placeholders = list.flatMap((c) => (c.Labels[LABEL_ROLE] === 'agent' ? protectionOf(c.Labels)?.placeholders ?? [] : []));
    const order = (c: Summary) => (c.Labels[LABEL_ROLE] === 'agent' ? 0 : c.Labels[LABEL_ROLE] === 'proxy' ? 1 : 2);
    for (const c of list.sort((a, b) => order(a) - order(b))) {
      try {
        await this.docker.getContainer(c.Id).remove({ force: true, v: true });
      } catch (e) {
        if (!isNotFound(e) && statusOf(e) !== 409) throw e;
      }
    }
    // The empty placeholders the start created go once the agent that had them mounted is gone.
    removePlaceholders(placeholders);
    const nets = await this.docker.listNetworks({ filters: { label: [`${LABEL}=1`, `${LABEL_CAGE}=${cageId}`] } });
    for (const n of nets) await this.removeNetwork(n.Id);
    const vols = await this.docker.listVolumes({ filters: { label: [`${LABEL}=1`, `${LABEL_CAGE}=${cageId}`] } });
    for (const v of vols.Volumes ?? []) await this.removeVolume(v.Name);
    if (opts.images) {
      for (const img of await listLabelledImages(this.docker, cageId)) {
        try {
          await this.docker.getImage(img.Id).remove({ force: true } as any);
        } catch (e) {
          if (!isNotFound(e)) throw e;
        }
      }
    }
  }

  private removeNetwork(idOrName: string): Promise<boolean> {
    // 403/409 "has active endpoints" right after a container removal: give the engine a moment.
    return removeWhenFree(() => this.docker.getNetwork(idOrName).remove(), [403, 409], `the network ${idOrName} still has containers attached`);
  }

  private removeVolume(name: string): Promise<boolean> {
    return removeWhenFree(() => this.docker.getVolume(name).remove(), [409], `the volume ${name} is still in use`);
  }

  /**
   * Removes orphans, only among labelled objects: a proxy whose agent is gone, leftover probe
   * containers, per-cage networks with no containers, per-cage volumes with no proxy.
   */
  async gc(opts: GcOptions = {}): Promise<GcResult> {
    await this.ping();
    const minAge = opts.minAgeMs ?? 60_000;
    const now = Date.now();
    const old = (createdSec: number) => now - createdSec * 1000 >= minAge;
    const result: GcResult = { containers: [], networks: [], volumes: [], images: [] };
    const mine = (cage: string | undefined) => !opts.cages || (!!cage && opts.cages.includes(cage));
    const all = (await this.containers()).filter((c) => mine(c.Labels[LABEL_CAGE]));
    const byCage = new Map<string, Summary[]>();
    for (const c of all) {
      const id = c.Labels[LABEL_CAGE] ?? '';
      byCage.set(id, [...(byCage.get(id) ?? []), c]);
    }
    for (const [, list] of byCage) {
      const agent = list.find((c) => c.Labels[LABEL_ROLE] === 'agent');
      const agentGone = !agent || agent.State !== 'running';
      for (const c of list) {
        const role = c.Labels[LABEL_ROLE];
        const orphan = role === 'probe' || ((role === 'proxy' || role === 'agent') && agentGone);
        if (!orphan || !old(c.Created)) continue;
        try {
          await this.docker.getContainer(c.Id).remove({ force: true, v: true });
          if (role === 'agent') removePlaceholders(protectionOf(c.Labels)?.placeholders ?? []);
          result.containers.push(c.Names?.[0]?.replace(/^\//, '') ?? c.Id);
        } catch (e) {
          if (!isNotFound(e)) throw e;
        }
      }
    }
    const nets = await this.docker.listNetworks({ filters: { label: [`${LABEL}=1`, `${LABEL_ROLE}=network`] } });
    for (const n of nets) {
      if (!mine(n.Labels?.[LABEL_CAGE])) continue;
      const info = await this.docker.getNetwork(n.Id).inspect().catch(() => undefined);
      if (!info) continue;
      const created = Date.parse(info.Created) / 1000;
      if (Object.keys(info.Containers ?? {}).length === 0 && old(created)) {
        if (await this.removeNetwork(n.Id).catch(() => false)) result.networks.push(n.Name);
      }
    }
    const remaining = await this.containers();
    const proxies = new Set(remaining.filter((c) => c.Labels[LABEL_ROLE] === 'proxy').map((c) => c.Labels[LABEL_CAGE]));
    const vols = await this.docker.listVolumes({ filters: { label: [`${LABEL}=1`, `${LABEL_ROLE}=volume`] } });
    for (const v of vols.Volumes ?? []) {
      const cage = v.Labels?.[LABEL_CAGE];
      if (!mine(cage)) continue;
      const created = Date.parse((v as any).CreatedAt ?? '') / 1000;
      if (proxies.has(cage) || (Number.isFinite(created) && !old(created))) continue;
      if (await this.removeVolume(v.Name).catch(() => false)) result.volumes.push(v.Name);
    }
    if (opts.images) {
      const used = new Set(remaining.map((c) => c.ImageID));
      for (const img of await listLabelledImages(this.docker)) {
        if (used.has(img.Id)) continue;
        if (opts.cages && !mine(img.Labels?.[LABEL_CAGE])) continue;
        const tags = (img.RepoTags ?? []).filter((t) => t.startsWith('caged-agent/'));
        if (!tags.length) continue;
        try {
          await this.docker.getImage(img.Id).remove({ force: false } as any);
          result.images.push(...tags);
        } catch {}
      }
    }
    return result;
  }

  // ---------------------------------------------------------------------------------------------------
  // Exec, shell, verify

  private async execIn(container: Docker.Container, cmd: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const exec = await container.exec({
      Cmd: cmd,
      AttachStdout: true,
      AttachStderr: true,
      AttachStdin: false,
      Tty: false,
      ...(opts.user ? { User: opts.user } : {}),
      ...(opts.env ? { Env: envList(opts.env) } : {}),
      ...(opts.workdir ? { WorkingDir: opts.workdir } : {}),
    });
    const stream = (await exec.start({ hijack: true, stdin: false })) as unknown as NodeJS.ReadableStream;
    const { stdout, stderr } = demux(stream);
    const out = collect(stdout);
    const err = collect(stderr);
    const timeoutMs = opts.timeoutMs ?? 60_000;
    let timedOut = false;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => { timedOut = true; (stream as any).destroy?.(); resolve(); }, timeoutMs);
      const done = () => { clearTimeout(timer); resolve(); };
      stream.on('end', done);
      stream.on('close', done);
      stream.on('error', done);
    });
    const [o, e] = await Promise.all([out.catch(() => Buffer.alloc(0)), err.catch(() => Buffer.alloc(0))]);
    let exitCode = -1;
    for (let i = 0; i < 20; i++) {
      const info = await exec.inspect();
      if (!info.Running && info.ExitCode !== null && info.ExitCode !== undefined) { exitCode = info.ExitCode; break; }
      if (timedOut) break;
      await sleep(50);
    }
    return { exitCode, stdout: o.toString('utf8'), stderr: e.toString('utf8') + (timedOut ? `\n[timed out after ${timeoutMs} ms]` : '') };
  }

  /** Runs a command in the agent container and collects its output. */
  async exec(cageId: string, cmd: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const agent = await this.agentContainer(cageId);
    return this.execIn(agent, cmd, opts);
  }

  /** An interactive terminal in the agent (docker exec with a TTY): the extension's terminal. */
  async openShell(cageId: string, opts: ShellOptions): Promise<ShellSession> {
    const agent = await this.agentContainer(cageId);
    let cmd = opts.cmd;
    if (!cmd?.length) {
      if (!(await pathExists(agent, '/bin/sh'))) {
        throw new Error(`The agent image of cage ${cageId} has no shell (/bin/sh), so no terminal can open in it.`);
      }
      cmd = ['/bin/sh', '-c', 'if command -v bash >/dev/null 2>&1; then exec bash -l; else exec sh -l; fi'];
    }
    const info = await agent.inspect();
    const exec = await agent.exec({
      Cmd: cmd,
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
      Tty: true,
      Env: envList({ TERM: 'xterm-256color', ...(opts.env ?? {}) }),
      WorkingDir: info.Config.Labels?.['caged-agent.workspace-in-container'] || info.Config.WorkingDir || '/',
      ...(opts.user ? { User: opts.user } : {}),
    });
    const stream = (await exec.start({ hijack: true, stdin: true, Tty: true } as any)) as unknown as Duplex;
    const resize = async (cols: number, rows: number) => {
      try {
        await exec.resize({ w: Math.max(1, Math.floor(cols)), h: Math.max(1, Math.floor(rows)) });
      } catch {}
    };
    await resize(opts.cols, opts.rows);
    const exit = new Promise<number>((resolve) => {
      let done = false;
      // The stream ends when the shell exits, but only if someone reads it: poll as well.
      const poll = setInterval(() => {
        exec.inspect().then((r) => { if (!r.Running) finish(); }, () => finish());
      }, 1000);
      const finish = async () => {
        if (done) return;
        done = true;
        clearInterval(poll);
        for (let i = 0; i < 20; i++) {
          try {
            const r = await exec.inspect();
            if (!r.Running) { (stream as any).destroy?.(); return resolve(r.ExitCode ?? 0); }
          } catch {
            return resolve(-1);
          }
          await sleep(50);
        }
        resolve(-1);
      };
      stream.on('end', finish);
      stream.on('close', finish);
      stream.on('error', finish);
    });
    return { stream, resize, exit };
  }

  /** Checks, from inside the agent, that the cage holds: see VerifyOptions. */
  async verify(cageId: string, opts: VerifyOptions = {}): Promise<VerifyCheck[]> {
    const agent = await this.agentContainer(cageId);
    const proxy = await this.proxyContainer(cageId);
    const proxyInfo = await proxy.inspect();
    const egress = proxyInfo.NetworkSettings.Networks[EGRESS_NETWORK];
    const caPem = this.state.readCACert(cageId);
    const internal = await this.docker.getNetwork(names.network(cageId)).inspect().catch(() => undefined);
    const inContainer = (await agent.inspect()).Config.Labels?.['caged-agent.workspace-in-container'] ?? '/';
    const status = await this.checkProtection(cageId).then((s) => ({ status: s }), (e) => ({ error: (e as Error).message }));
    return runVerify({
      workspace: { inContainer, ...status },
      exec: (cmd, timeoutMs) => this.execIn(agent, cmd, { timeoutMs }),
      proxyEgressIp: egress?.IPAddress,
      egressGateway: egress?.Gateway,
      internalGateway: internal?.IPAM?.Config?.[0]?.Gateway,
      caPem,
      options: opts,
    });
  }

  // ---------------------------------------------------------------------------------------------------
  // Doctor

  async doctor(opts: { proxyBaseImage?: string; agentImage?: string } = {}): Promise<DoctorCheck[]> {
    const checks: DoctorCheck[] = [];
    try {
      await this.ping();
      checks.push({ name: 'engine reachable', ok: true, detail: `answers at ${this.engineAddress()}` });
    } catch (e) {
      checks.push({ name: 'engine reachable', ok: false, detail: (e as Error).message });
      return checks;
    }
    const v = await this.docker.version();
    checks.push({ name: 'engine version', ok: true, detail: `Docker ${v.Version} (API ${v.ApiVersion}, ${v.Os}/${v.Arch})` });
    if (versionLess(v.Version, [25, 0, 5])) {
      checks.push({
        name: 'embedded DNS caveat',
        ok: false,
        warning: true,
        detail: `Docker ${v.Version} is older than 25.0.5: its embedded DNS can forward external lookups from internal networks (CVE-2024-29018). Caged Agent points the agent's DNS forwarders at an address that answers nothing, so this is covered; upgrading the engine is still advised.`,
      });
    } else {
      checks.push({ name: 'embedded DNS caveat', ok: true, detail: 'engine has the CVE-2024-29018 fix' });
    }
    const bundle = this.options.proxyBundlePath;
    checks.push(fs.existsSync(bundle)
      ? { name: 'proxy program', ok: true, detail: bundle }
      : { name: 'proxy program', ok: false, detail: `${bundle} is missing (run "npm run build")` });
    const proxyBase = opts.proxyBaseImage ?? this.options.proxyBaseImage ?? DEFAULT_PROXY_BASE_IMAGE;
    const agentBase = opts.agentImage ?? this.options.agentImage ?? DEFAULT_AGENT_IMAGE;
    for (const [name, ref] of [['proxy base image', proxyBase], ['agent base image', agentBase]] as const) {
      const present = await imageExists(this.docker, ref);
      checks.push({
        name,
        ok: present,
        warning: !present,
        detail: present ? `${ref} is present` : `${ref} is not present locally; it will be pulled on the first start (needs registry access)`,
      });
    }
    try {
      const egress = await this.docker.getNetwork(EGRESS_NETWORK).inspect();
      checks.push({ name: 'egress network', ok: egress.Labels?.[LABEL] === '1', detail: egress.Labels?.[LABEL] === '1' ? `${EGRESS_NETWORK} exists` : `${EGRESS_NETWORK} exists but was not created by Caged Agent` });
    } catch (e) {
      if (!isNotFound(e)) throw e;
      checks.push({ name: 'egress network', ok: true, detail: `${EGRESS_NETWORK} will be created on the first start` });
    }
    return checks;
  }
}

/** The container label carrying what a cage protects. */
const LABEL_PROTECT = 'caged-agent.protect';

function protectionOf(labels: Record<string, string>): WorkspaceProtection | undefined {
  const raw = labels[LABEL_PROTECT];
  if (!raw) return undefined;
  try {
    const v = JSON.parse(raw);
    return v && Array.isArray(v.protected) && Array.isArray(v.placeholders) ? (v as WorkspaceProtection) : undefined;
  } catch {
    return undefined;
  }
}

function verdictOf(ev: PolicyLoadedEvent | PolicyErrorEvent): PolicyPushResult {
  if (ev.type === 'policy-loaded') {
    return { ok: true, message: `${ev.allow} allow and ${ev.deny} deny rule${ev.deny === 1 ? '' : 's'} in force` };
  }
  return {
    ok: false,
    message: ev.message + (ev.keptPrevious ? ' (the previous policy stays in force)' : ' (everything is blocked)'),
    line: ev.line,
    col: ev.col,
  };
}
