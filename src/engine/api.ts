// The engine's public surface, as the extension and the CLI use it. The implementation lives beside this
// file (src/engine/*.ts); this file only states the contract. No vscode import anywhere under src/engine.
import type { Duplex } from 'node:stream';
import type { MountCheck } from './mountinfo';
import type { WorkspaceProtection } from './protect';

export type { MountCheck } from './mountinfo';
export type { Placeholder, ProtectedPath, WorkspaceProtection } from './protect';

/** paused: the agent's processes are frozen (CageEngine.pauseAgent), e.g. while the user decides about a broken protection. */
export type CageState = 'starting' | 'healthy' | 'unhealthy' | 'proxy-down' | 'agent-down' | 'paused' | 'stopped';

export interface CageInfo {
  id: string;
  workspace: string;
  state: CageState;
  agentContainerId?: string;
  proxyContainerId?: string;
  networkName: string;
  agentImage: string;
  createdAt: string;
  /** Where the workspace is mounted inside the agent (the host path itself, or /workspace). */
  workspaceInContainer?: string;
  /** Host path of the policy file this cage was started with. */
  policyPath?: string;
  /** The proxy's verdict on the policy it started with (up() only). */
  policy?: PolicyPushResult;
  /** Base image the agent image was derived from. */
  baseImage?: string;
  /** What the agent cannot change in the workspace (read-only mounts), as the cage was created. */
  protection?: WorkspaceProtection;
}

/** The workspace protection of a running cage, checked now: see CageEngine.checkProtection. */
export interface ProtectionStatus {
  protection: WorkspaceProtection;
  /** The agent's mounts against the ones the cage was created with; undefined when they could not be read
   * (the image has no `cat`, or the agent is not running), with the reason in `unreadable`. */
  mounts?: MountCheck;
  unreadable?: string;
  /** Protected paths whose content differs from the start (ProtectedPath.path). */
  changed: string[];
  /** Expected mount point (inside the agent) -> the protected path it stands for. */
  mountPaths: Record<string, string>;
}

export type StartStep =
  | 'engine'
  | 'proxy-image'
  | 'ca'
  | 'agent-image'
  | 'workspace'
  | 'networks'
  | 'proxy-container'
  | 'proxy-healthy'
  | 'policy'
  | 'agent-container';

export interface UpOptions {
  /** Absolute path of the workspace folder to bind-mount into the agent (read-write). */
  workspace: string;
  /** Policy file; default <workspace>/.caged/policy.yaml. Its folder is mounted read-only for the agent. */
  policyPath?: string;
  /** Base image for the agent; default: devcontainer.json image, else DEFAULT_AGENT_IMAGE. */
  agentImage?: string;
  /** Command the agent container runs (default: keeps the container alive so terminals can attach). */
  agentCommand?: string[];
  /** Extra env for the agent (never secrets). */
  agentEnv?: Record<string, string>;
  /**
   * Programs the agent's command needs (e.g. ["npx"] for an npm-installed agent), looked up on the image's PATH
   * before anything is started; missing ones fail the start at step "agent-image", with `for` in the message.
   */
  requires?: { programs: string[]; for: string };
  /** Base image with Node for the proxy; default DEFAULT_PROXY_BASE_IMAGE. */
  proxyBaseImage?: string;
  /** PEM text of extra CAs the proxy trusts upstream. */
  upstreamCaPem?: string;
  upstreamProxy?: string;
  /** Secrets for credential injection: name -> value. Given only to the proxy container. */
  secrets?: Record<string, string>;
  /** Progress for long work (image builds): step + human text. */
  onProgress?: (step: StartStep, message: string) => void;
  signal?: AbortSignal;
}

export interface PolicyPushResult {
  ok: boolean;
  /** From the proxy's policy-loaded / policy-error event. */
  message: string;
  line?: number;
  col?: number;
  /**
   * When ok is false, what the proxy enforces now, as far as the engine knows: 'previous' (it refused this
   * text and kept the policy it had), 'none' (it has no valid policy: everything is blocked), 'unknown' (it did
   * not answer in time, so it may have loaded the text or not).
   */
  inForce?: 'previous' | 'none' | 'unknown';
}

export interface VerifyCheck {
  name: string;
  ok: boolean;
  detail: string;
  /** true when the check did not run (e.g. no allowed URL given, no shell in the image); ok is then true, and
   * summaries count it as skipped, not passed. */
  skipped?: boolean;
}

export interface VerifyOptions {
  /** Host that must be blocked (default: a name the policy cannot allow, e.g. "blocked.caged-agent.invalid"). */
  blockedUrl?: string;
  /** URL that must succeed with a cage-CA certificate (skipped with a clear note if not given). */
  allowedUrl?: string;
  /** Name that must not resolve from inside the agent (default: the egress network's outside name). */
  externalName?: string;
  /** "HOST:PORT" a raw TCP rule allows: a client connecting there must get through (skipped if not given). */
  tcpTarget?: string;
}

export interface ShellSession {
  stream: Duplex;
  resize(cols: number, rows: number): Promise<void>;
  /** Resolves with the exit code when the shell ends. */
  exit: Promise<number>;
}

export interface EventSubscription {
  stop(): void;
}

export interface DoctorCheck {
  name: string;
  ok: boolean;
  detail: string;
  /** true for advisories that don't stop the product working (e.g. the DNS CVE note). */
  warning?: boolean;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  user?: string;
  env?: Record<string, string>;
  workdir?: string;
  /** Kill the wait after this long (the process may keep running); default 60 s. */
  timeoutMs?: number;
}

export interface ShellOptions {
  cols: number;
  rows: number;
  /** Command to run instead of the login shell. */
  cmd?: string[];
  user?: string;
  env?: Record<string, string>;
}

export interface EventOptions {
  /** Replay events since this time (Date, or UNIX seconds); default: only new events. */
  since?: Date | number;
  /** Called once when the log stream ends (proxy stopped or removed) or fails. */
  onEnd?: (error?: Error) => void;
}

export interface GcOptions {
  /** Leave objects younger than this alone (a start may be in progress); default 60 s. */
  minAgeMs?: number;
  /** Also remove cached agent/proxy images no container uses. Default false. */
  images?: boolean;
  /** Only consider these cages (default: every labelled object on the engine). */
  cages?: string[];
}

export interface GcResult {
  containers: string[];
  networks: string[];
  volumes: string[];
  images: string[];
}
