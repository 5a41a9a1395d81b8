// The cage on a Docker engine, as the editor and the CLI drive it: one internal network per cage holding the
// agent and the proxy, a shared egress network only proxies join. This class is the facade; each job lives in a
// file of its own: discover.ts (finding cages, their state), start.ts (the named start steps and their undo),
// specs.ts (what is created, hardening included), networks.ts, proxyLog.ts (the one follower of each proxy's
// log), push.ts (policy push and its verdict), mounts.ts (the protection seen from inside), cleanup.ts (down,
// gc), exec.ts (exec, shell), doctor.ts, verify.ts.
import Docker from 'dockerode';
import * as fs from 'node:fs';
import type { ControlRequest } from '../policy';
import type { ProxyEvent } from '../policy/events';
import type {
  CageInfo,
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
  UpOptions,
  VerifyCheck,
  VerifyOptions,
} from './api';
import { CageAsk, ControlSession, controlProxy, TemporaryStore, type AnswerResult, type AskAnswer, type AskState } from './ask';
import { collectGarbage, downCage } from './cleanup';
import { describeCage, labelledContainers, listCages, runningContainer } from './discover';
import { devcontainerImage } from './devcontainer';
import { runDoctor } from './doctor';
import { resolveDockerEndpoint, type DockerEndpoint } from './dockerContext';
import { dockerMessage, isConnectionError, logTail, statusOf } from './dockerutil';
import { execIn, openShell } from './exec';
import { checkProtection } from './mounts';
import { cageIdFor, canonicalWorkspace, DEFAULT_AGENT_IMAGE, DEFAULT_PROXY_BASE_IMAGE, EGRESS_NETWORK, names } from './names';
import { ensureEgressNetwork } from './networks';
import { ProxyLogs } from './proxyLog';
import { pushPolicy } from './push';
import { startCage } from './start';
import { StateStore } from './state';
import { LABEL_POLICY, LABEL_WORKSPACE_IN_CONTAINER } from './specs';
import { endTerminals, type TerminalSelector } from './terminals';
import { runVerify, tcpTargetOf } from './verify';

export { PROXY_ENV, TELEMETRY_ENV } from './specs';

export interface CageEngineOptions {
  /** Private state (per-cage CA). Extension: its globalStorage; CLI: defaultStateDir(). */
  stateDir: string;
  /** The bundled proxy program (dist/proxy.js). */
  proxyBundlePath: string;
  /** A ready dockerode client; default: the endpoint resolveDockerEndpoint() picks (docker contexts followed). */
  docker?: Docker;
  dockerOptions?: Docker.DockerOptions;
  /** A Docker context to use (like `docker --context`); default: DOCKER_HOST, DOCKER_CONTEXT, currentContext. */
  dockerContext?: string;
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
  /**
   * Who the agent runs as: 'owner' (default) is the workspace folder's owner uid/gid (agentUser.ts); 'root' keeps
   * the image's user (root for most images).
   */
  agentUser?: 'owner' | 'root';
}

export class CageEngine {
  readonly docker: Docker;
  readonly state: StateStore;
  /** The one follower of each proxy's log that events(), pushPolicy() and up() subscribe to. */
  private readonly logs = new ProxyLogs();
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly pushLocks = new Map<string, Promise<unknown>>();

  /** The endpoint and why it was chosen (docker contexts followed), when the engine made its own client. */
  readonly endpoint: DockerEndpoint | undefined;
  /** The context named cannot be used (ping() says so). */
  private readonly endpointError: string | undefined;

  constructor(readonly options: CageEngineOptions) {
    if (!options.docker && !options.dockerOptions) {
      try {
        this.endpoint = resolveDockerEndpoint({ context: options.dockerContext });
      } catch (e) {
        this.endpointError = (e as Error).message;
      }
    }
    this.docker = options.docker ?? new Docker(options.dockerOptions ?? this.endpoint?.options);
    this.state = new StateStore(options.stateDir);
  }

  /** The cage id for a workspace folder (stable: sha256 of its real path). */
  cageIdFor(workspace: string): string {
    return cageIdFor(workspace);
  }

  /** Where the engine is, in words ("/var/run/docker.sock", "tcp://host:2376"), and why when a context chose it. */
  engineAddress(withSource = false): string {
    if (this.endpoint) return `${this.endpoint.address.replace(/^unix:\/\//, '')}${withSource ? `, from ${this.endpoint.source}` : ''}`;
    const m = this.docker.modem as any;
    if (typeof m.socketPath === 'string' && m.socketPath) return m.socketPath;
    if (m.host) return `${m.protocol ?? 'http'}://${m.host}:${m.port ?? ''}`;
    const env = process.env.DOCKER_HOST;
    if (env) return env.replace(/^unix:\/\//, '');
    return '/var/run/docker.sock';
  }

  /** Pings the engine; throws the plain-words "is Docker running?" error when nothing answers. */
  async ping(): Promise<void> {
    if (this.endpointError) {
      const err = new Error(this.endpointError);
      (err as any).code = 'ENGINE_UNREACHABLE';
      throw err;
    }
    try {
      await this.docker.ping();
    } catch (e) {
      if (isConnectionError(e) || statusOf(e) === undefined) {
        const why = this.endpoint && this.endpoint.source !== 'the default socket' ? `; the endpoint of ${this.endpoint.source}` : '';
        const err = new Error(`Cannot reach the Docker engine at ${this.engineAddress()} — is Docker running? (${(e as any)?.code ?? dockerMessage(e)}${why})`);
        (err as any).code = 'ENGINE_UNREACHABLE';
        throw err;
      }
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

  /** One cage by id, or undefined when none of its containers exists. */
  async get(cageId: string): Promise<CageInfo | undefined> {
    await this.ping();
    return describeCage(this.docker, cageId, await labelledContainers(this.docker, cageId));
  }

  /** The cages found on the engine by their labels (recovers after a restart of the caller). */
  async list(): Promise<CageInfo[]> {
    await this.ping();
    return listCages(this.docker);
  }

  /** Starts the cage of opts.workspace (one start per workspace at a time), or returns it when it runs. */
  async up(opts: UpOptions): Promise<CageInfo> {
    const workspace = canonicalWorkspace(opts.workspace);
    let st: fs.Stats | undefined;
    try { st = fs.statSync(workspace); } catch {}
    if (!st?.isDirectory()) throw new Error(`The workspace folder ${workspace} does not exist or is not a folder.`);
    const id = cageIdFor(workspace);
    const cx = { docker: this.docker, state: this.state, logs: this.logs, options: this.options, engineAddress: () => this.engineAddress(), ping: () => this.ping(), down: (c: string) => this.down(c) };
    return this.withLock(this.locks, id, () => startCage(cx, id, workspace, opts));
  }

  /**
   * The workspace protection of a running cage, checked now: the agent's mount table against the mounts it was
   * created with (a program on the host that replaces a protected file or folder makes Docker drop that mount),
   * and the protected paths' content against the start.
   */
  async checkProtection(cageId: string): Promise<ProtectionStatus> {
    return checkProtection(await runningContainer(this.docker, cageId, 'agent'), cageId);
  }

  /** Freezes the agent's processes (docker pause): nothing in it runs until resumeAgent. */
  async pauseAgent(cageId: string): Promise<void> {
    await (await runningContainer(this.docker, cageId, 'agent')).pause();
  }

  async resumeAgent(cageId: string): Promise<void> {
    const list = await labelledContainers(this.docker, cageId, 'agent');
    if (list[0]?.State === 'paused') await this.docker.getContainer(list[0].Id).unpause();
  }

  /** Creates the shared egress network when missing (labelled; reused by every cage). */
  ensureEgressNetwork(): Promise<void> {
    return ensureEgressNetwork(this.docker);
  }

  /**
   * Copies the policy text into the proxy (works with remote engines) and signals a reload; resolves with
   * the proxy's verdict (policy-loaded or policy-error with line/column). One push per cage at a time.
   */
  async pushPolicy(cageId: string, text: string): Promise<PolicyPushResult> {
    return this.withLock(this.pushLocks, cageId, async () => {
      const proxy = await runningContainer(this.docker, cageId, 'proxy');
      return pushPolicy(this.logs, proxy, text, this.options.policyTimeoutMs ?? 10_000);
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

  /** Calls onEvent for each proxy event (typed JSON lines of its log), through the cage's one log follower. */
  async events(cageId: string, onEvent: (e: ProxyEvent) => void, opts: EventOptions = {}): Promise<EventSubscription> {
    const proxy = await runningContainer(this.docker, cageId, 'proxy');
    const since = opts.since instanceof Date ? Math.floor(opts.since.getTime() / 1000) : opts.since;
    return this.logs.subscribe(proxy, { onEvent, onEnd: opts.onEnd }, { since });
  }

  /**
   * Removes the cage's agent, proxy, network and volume. Idempotent: a missing object is success.
   * `images: true` also removes the cage's derived agent images (they embed its CA; a restart rebuilds).
   */
  async down(cageId: string, opts: { images?: boolean } = {}): Promise<void> {
    await this.ping();
    await downCage(this.docker, cageId, opts);
    // Temporary allows and denies last as long as the cage (the session).
    new TemporaryStore(this.state.cageDir(cageId)).clear();
  }

  // ------------------------------------------------------------------ held requests (onUnknown: ask)

  /** One control session per proxy container (a long-lived exec; a restarted proxy is a new container id or a new session). */
  private readonly controls = new Map<string, ControlSession>();

  private async ask(cageId: string): Promise<CageAsk> {
    const proxy = await runningContainer(this.docker, cageId, 'proxy');
    let session = this.controls.get(proxy.id);
    if (!session) this.controls.set(proxy.id, (session = new ControlSession(proxy)));
    const s = session;
    // The session first; a one-off exec when it cannot be opened or broke (the proxy restarted under it).
    const control = (req: ControlRequest) => s.send(req).catch(() => controlProxy(proxy, req));
    return new CageAsk(control, new TemporaryStore(this.state.cageDir(cageId)), proxy.id);
  }

  /** Ends the control sessions (their execs); a later answer opens one again. */
  closeControl(): void {
    for (const s of this.controls.values()) s.close();
    this.controls.clear();
  }

  /** The requests waiting for an answer, by host:port, and the temporary allows and denies in force. */
  async pending(cageId: string): Promise<AskState> {
    return (await this.ask(cageId)).state();
  }

  /**
   * Answers the requests waiting for a host (allow once, for a time, for the session; deny once or for the
   * session) through the proxy's control channel. The result says whether the proxy took it. "Always" is a
   * policy edit and a push (pushPolicy): the reload releases the waiting requests.
   */
  async answer(cageId: string, a: AskAnswer): Promise<AnswerResult> {
    return (await this.ask(cageId)).answer(a);
  }

  /** Ends a temporary allow or deny (by id, or every one for a host). */
  async revoke(cageId: string, idOrHost: string): Promise<AnswerResult> {
    return (await this.ask(cageId)).revoke(idOrHost);
  }

  /**
   * Removes orphans, only among labelled objects: a proxy whose agent is gone, leftover probe
   * containers, per-cage networks with no containers, per-cage volumes with no proxy.
   */
  async gc(opts: GcOptions = {}): Promise<GcResult> {
    await this.ping();
    return collectGarbage(this.docker, opts);
  }

  /** Runs a command in the agent container and collects its output. */
  async exec(cageId: string, cmd: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    return execIn(await runningContainer(this.docker, cageId, 'agent'), cmd, opts);
  }

  /** An interactive terminal in the agent (docker exec with a TTY): the extension's terminal. */
  async openShell(cageId: string, opts: ShellOptions): Promise<ShellSession> {
    return openShell(await runningContainer(this.docker, cageId, 'agent'), cageId, opts);
  }

  /** The proxy's log (its event lines and anything else it wrote), the last `lines` lines. */
  async proxyLog(cageId: string, lines = 5000): Promise<string> {
    return logTail(await runningContainer(this.docker, cageId, 'proxy'), lines);
  }

  /** Ends the processes of the editor's terminals in the agent (see terminals.ts); resolves to how many. */
  async endTerminals(cageId: string, sel: TerminalSelector): Promise<number> {
    return endTerminals(await runningContainer(this.docker, cageId, 'agent'), sel);
  }

  /** Checks, from inside the agent, that the cage holds: see VerifyOptions. */
  async verify(cageId: string, opts: VerifyOptions = {}): Promise<VerifyCheck[]> {
    const agent = await runningContainer(this.docker, cageId, 'agent');
    const proxy = await runningContainer(this.docker, cageId, 'proxy');
    const proxyInfo = await proxy.inspect();
    const egress = proxyInfo.NetworkSettings.Networks[EGRESS_NETWORK];
    const caPem = this.state.readCACert(cageId);
    const internal = await this.docker.getNetwork(names.network(cageId)).inspect().catch(() => undefined);
    const agentLabels = (await agent.inspect()).Config.Labels ?? {};
    const inContainer = agentLabels[LABEL_WORKSPACE_IN_CONTAINER] ?? '/';
    const status = await this.checkProtection(cageId).then((s) => ({ status: s }), (e) => ({ error: (e as Error).message }));
    return runVerify({
      workspace: { inContainer, ...status },
      exec: (cmd, timeoutMs) => execIn(agent, cmd, { timeoutMs }),
      proxyEgressIp: egress?.IPAddress,
      proxyIp: proxyInfo.NetworkSettings.Networks[names.network(cageId)]?.IPAddress || undefined,
      egressGateway: egress?.Gateway,
      internalGateway: internal?.IPAM?.Config?.[0]?.Gateway,
      caPem,
      options: { ...opts, tcpTarget: opts.tcpTarget ?? tcpTargetOf(agentLabels[LABEL_POLICY]) },
    });
  }

  /** Checks the setup; with `workspace`, the agent image a start there would use (its devcontainer's, when it names one). */
  async doctor(opts: { proxyBaseImage?: string; agentImage?: string; workspace?: string } = {}): Promise<DoctorCheck[]> {
    const dc = !opts.agentImage && opts.workspace ? devcontainerImage(opts.workspace).image : undefined;
    return runDoctor({
      docker: this.docker,
      ping: () => this.ping(),
      engineAddress: this.engineAddress(true),
      proxyBundlePath: this.options.proxyBundlePath,
      proxyBaseImage: opts.proxyBaseImage ?? this.options.proxyBaseImage ?? DEFAULT_PROXY_BASE_IMAGE,
      agentImage: opts.agentImage ?? dc ?? this.options.agentImage ?? DEFAULT_AGENT_IMAGE,
    });
  }
}
