// What the engine asks Docker to create, as data: the proxy and agent containers (hardening included), the
// networks, the config volume and the files of the proxy's config. Pure: no Docker call, no file access, so the
// hardening is asserted by unit tests (test/unit/engine-specs.test.ts) and its effect by the cage tests.
import type Docker from 'dockerode';
import { SECRET_ENV_PREFIX, secretEnvName } from '../policy';
import type { AgentImage } from './images';
import { EGRESS_NETWORK, labels, names, PROXY_ALIAS, PROXY_CONFIG_DIR, PROXY_PORT, PROXY_UID, PROXY_URL } from './names';
import type { Placeholder, WorkspaceProtection } from './protect';
import { gitSafeDirectoryEnv } from './protect-scan';
import type { TarEntry } from './tar';

/** Container labels beyond the common ones (names.ts labels()). */
export const LABEL_POLICY = 'caged-agent.policy';
export const LABEL_BASE_IMAGE = 'caged-agent.base-image';
export const LABEL_WORKSPACE_IN_CONTAINER = 'caged-agent.workspace-in-container';
/** What a cage protects (WorkspaceProtection as JSON), on the agent container. */
export const LABEL_PROTECT = 'caged-agent.protect';

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

/**
 * The proxy's own health check, run by Docker's HEALTHCHECK and by the engine when it cannot wait for Docker. It
 * asks the proxy's name on the cage network (the engine's DNS answers it inside the proxy's container too): the
 * proxy listens on its cage address only, and a cage of an older version (every address) answers there as well.
 */
export const PROXY_HEALTH_CMD = ['node', '/app/proxy.js', '--health', '--listen', `${PROXY_ALIAS}:${PROXY_PORT}`];
/** The proxy's control socket (inside its container; src/proxy/control.ts), and the client mode that talks to it (+ the JSON request). */
export const PROXY_CONTROL_SOCKET = '/tmp/caged-control.sock';
export const PROXY_CONTROL_CMD = ['node', '/app/proxy.js', '--control-socket', PROXY_CONTROL_SOCKET, '--control'];

export function envList(env: Record<string, string>): string[] {
  return Object.entries(env).map(([k, v]) => `${k}=${v}`);
}

/** The proxy's config volume: CA (key mode 600), policy, extra upstream CAs, secrets (mode 600). */
export function proxyConfigFiles(ca: { certPem: string; keyPem: string }, policyText: string | undefined, upstreamCaPem: string | undefined, secrets: Array<[string, string]>): TarEntry[] {
  const own = { uid: PROXY_UID, gid: PROXY_UID };
  const files: TarEntry[] = [
    { name: 'ca.crt', data: ca.certPem, mode: 0o644, ...own },
    { name: 'ca.key', data: ca.keyPem, mode: 0o600, ...own },
  ];
  if (policyText !== undefined) files.push(policyFile(policyText));
  if (upstreamCaPem) files.push({ name: 'upstream-ca.pem', data: upstreamCaPem, mode: 0o644, ...own });
  if (secrets.length) {
    const text = secrets.map(([k, v]) => `${secretEnvName(k).slice(SECRET_ENV_PREFIX.length)}=${v}\n`).join('');
    files.push({ name: 'secrets.env', data: text, mode: 0o600, ...own });
  }
  return files;
}

/** The policy as the proxy reads it from its config volume (a push replaces it, then SIGHUP). */
export function policyFile(text: string): TarEntry {
  return { name: 'policy.yaml', data: text, mode: 0o644, uid: PROXY_UID, gid: PROXY_UID };
}

/** A secret value must fit on one line of the secrets file: the name of the first that does not, or undefined. */
export function secretWithLineBreak(secrets: Array<[string, string]>): string | undefined {
  return secrets.find(([, v]) => /[\r\n]/.test(v))?.[0];
}

export function configVolumeSpec(id: string, workspace: string): Docker.VolumeCreateOptions {
  return { Name: names.volume(id), Labels: labels('volume', id, workspace) };
}

/**
 * The cage's internal network. `hostless`: the bridge gets no IPv4 address of its own (inhibit_ipv4), so the
 * agent cannot reach services listening on the engine host through the bridge gateway; only containers on the
 * network (the proxy) are reachable. `plan`: its address range as cageAddressPlan() laid it out (the proxy's
 * address pinned), else the engine picks one.
 */
export function cageNetworkSpec(id: string, workspace: string, hostless: boolean, plan?: CageAddressPlan): Docker.NetworkCreateOptions {
  const base: Docker.NetworkCreateOptions = { Name: names.network(id), Driver: 'bridge', Internal: true, CheckDuplicate: true, Labels: labels('network', id, workspace) };
  if (plan) base.IPAM = { Driver: 'default', Config: [{ Subnet: plan.subnet, Gateway: plan.gateway, IPRange: plan.dynamicRange }] };
  return hostless ? { ...base, Options: { 'com.docker.network.bridge.inhibit_ipv4': 'true' } } : base;
}

/** The cage network's IPv4 addresses: the proxy's fixed one, and the range the engine hands out (the agent). */
export interface CageAddressPlan {
  subnet: string;
  gateway: string;
  /** The upper half of the subnet: addresses the engine assigns itself (the agent's) come from here only. */
  dynamicRange: string;
  /** The proxy's address, in the lower half: no other container can take it, even while the proxy is stopped. */
  proxyIp: string;
}

function ipv4ToInt(ip: string): number | undefined {
  const parts = ip.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) return undefined;
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

function intToIpv4(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

/**
 * The address plan of a cage network, from the subnet the engine allocated for it (its address pools decide, as
 * for any network): the proxy pinned at the first free host address, so it keeps its address across restarts
 * (the agent's resolver and every DNS answer point at it), the engine's own allocations moved to the upper half.
 * Undefined when the subnet is not IPv4 or too small to split (smaller than /29): then nothing is pinned.
 */
export function cageAddressPlan(subnet: string, gateway: string | undefined): CageAddressPlan | undefined {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(subnet);
  const base = m ? ipv4ToInt(m[1]) : undefined;
  const prefix = m ? Number(m[2]) : NaN;
  if (base === undefined || !(prefix >= 8 && prefix <= 29)) return undefined;
  const size = 2 ** (32 - prefix);
  const network = base - (base % size);
  const gw = gateway ? ipv4ToInt(gateway) : network + 1;
  if (gw === undefined || gw < network || gw >= network + size) return undefined;
  const proxy = gw === network + 2 ? network + 3 : network + 2;
  return { subnet: `${intToIpv4(network)}/${prefix}`, gateway: intToIpv4(gw), dynamicRange: `${intToIpv4(network + size / 2)}/${prefix + 1}`, proxyIp: intToIpv4(proxy) };
}

/** The shared egress network only proxies join (it reaches the outside). */
export function egressNetworkSpec(): Docker.NetworkCreateOptions {
  return { Name: EGRESS_NETWORK, Driver: 'bridge', CheckDuplicate: true, Labels: labels('egress') };
}

export interface ProxySpecInput {
  id: string;
  workspace: string;
  image: string;
  policyPath: string;
  upstreamProxy?: string;
  /** The config volume holds upstream-ca.pem. */
  upstreamCa: boolean;
  /** The config volume holds secrets.env. */
  secrets: boolean;
  /** Its fixed address on the cage network (cageAddressPlan): every listener binds there only. */
  proxyIp?: string;
}

/**
 * The proxy container: hardened, on the cage network (alias caged-proxy, a fixed address when planned), reading
 * its config volume. It listens on its cage address only: the explicit proxy port and the transparent ones
 * (DNS, 80, 443, raw TCP) are not open on the egress side, where other proxies and the outside are.
 */
export function proxyContainerSpec(p: ProxySpecInput): Docker.ContainerCreateOptions {
  const cmd = [
    '--policy', `${PROXY_CONFIG_DIR}/policy.yaml`,
    '--ca-cert', `${PROXY_CONFIG_DIR}/ca.crt`,
    '--ca-key', `${PROXY_CONFIG_DIR}/ca.key`,
    // The transparent listeners bind to the same address (proxy/main.ts). Without a plan, the proxy's alias:
    // it resolves to the cage address when the proxy starts (the egress side stays closed, a restart may move it).
    '--listen', `${p.proxyIp ?? PROXY_ALIAS}:${PROXY_PORT}`,
    '--control-socket', PROXY_CONTROL_SOCKET,
    // Clients that ignore the proxy variables: the cage's DNS, TLS on 443 by SNI, HTTP on 80 by Host.
    '--transparent',
  ];
  if (p.upstreamCa) cmd.push('--upstream-ca', `${PROXY_CONFIG_DIR}/upstream-ca.pem`);
  if (p.upstreamProxy) cmd.push('--upstream-proxy', p.upstreamProxy);
  // Secrets go into the proxy's config volume (mode 600), not its environment: they stay out of
  // `docker inspect` and of the container's configuration.
  if (p.secrets) cmd.push('--secrets-file', `${PROXY_CONFIG_DIR}/secrets.env`);
  return {
    name: names.proxy(p.id),
    Image: p.image,
    Cmd: cmd,
    User: `${PROXY_UID}:${PROXY_UID}`,
    Labels: { ...labels('proxy', p.id, p.workspace), [LABEL_POLICY]: p.policyPath },
    Healthcheck: {
      Test: ['CMD', ...PROXY_HEALTH_CMD],
      Interval: 5e9,
      Timeout: 4e9,
      Retries: 3,
      StartPeriod: 0,
    },
    HostConfig: {
      NetworkMode: names.network(p.id),
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges:true'],
      // The transparent listeners (53, 80, 443) below 1024, without a capability: this sysctl is namespaced
      // (it holds for the proxy's own network namespace only) and the proxy keeps running unprivileged.
      Sysctls: { 'net.ipv4.ip_unprivileged_port_start': '0' },
      ReadonlyRootfs: true,
      Tmpfs: { '/tmp': 'rw,noexec,nosuid,nodev,size=64m' },
      PidsLimit: 256,
      Memory: 512 * 1024 * 1024,
      // Every request of the agent goes through the proxy: when the agent keeps the CPUs busy (a build,
      // parallel downloads), the proxy's turn comes first (twice the default weight; no effect otherwise).
      CpuShares: 2048,
      Mounts: [{ Type: 'volume', Source: names.volume(p.id), Target: PROXY_CONFIG_DIR, ReadOnly: false }],
      RestartPolicy: { Name: 'unless-stopped' },
      LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } },
    },
    NetworkingConfig: { EndpointsConfig: { [names.network(p.id)]: { Aliases: [PROXY_ALIAS], ...(p.proxyIp ? { IPAMConfig: { IPv4Address: p.proxyIp } } : {}) } } },
  };
}

/** The agent's environment: telemetry off, the user's extras, the proxy; never a CAGED_SECRET_* variable. */
export function agentEnv(extra: Record<string, string> | undefined): Record<string, string> {
  const env = gitSafeDirectoryEnv({ ...TELEMETRY_ENV, ...(extra ?? {}), ...PROXY_ENV });
  for (const k of Object.keys(env)) if (k.toUpperCase().startsWith(SECRET_ENV_PREFIX)) delete env[k];
  return env;
}

export interface AgentSpecInput {
  id: string;
  workspace: string;
  image: AgentImage;
  baseImage: string;
  policyPath: string;
  /** The prepared workspace: its mounts (HostConfig.Mounts), where it appears inside, what it protects. */
  ws: {
    mounts: Array<{ Type: 'bind'; Source: string; Target: string; ReadOnly: boolean }>;
    workspaceInContainer: string;
    record: WorkspaceProtection;
  };
  agentCommand?: string[];
  agentEnv?: Record<string, string>;
  /** The proxy's address on the cage network: the agent's DNS server (the proxy answers every name). */
  proxyIp?: string;
}

/**
 * The agent container: cage network only, DNS that resolves nothing outside, the workspace mounted with its
 * protected paths read-only. `ownCommand`: the image has no sleep or busybox, so its own command runs.
 */
export function agentContainerSpec(a: AgentSpecInput): { spec: Docker.ContainerCreateOptions; ownCommand: boolean } {
  const run = a.agentCommand?.length ? a.agentCommand : a.image.keepalive;
  const spec: Docker.ContainerCreateOptions = {
    name: names.agent(a.id),
    Image: a.image.tag,
    ...(run ? { Entrypoint: [run[0]], Cmd: run.slice(1) } : {}),
    Env: envList(agentEnv(a.agentEnv)),
    WorkingDir: a.ws.workspaceInContainer,
    Hostname: 'caged-agent',
    // The workspace owner (agentUser.ts): every process in the agent, docker exec without -u included.
    ...(a.image.user ? { User: a.image.user } : {}),
    Labels: {
      ...labels('agent', a.id, a.workspace),
      [LABEL_POLICY]: a.policyPath,
      [LABEL_BASE_IMAGE]: a.baseImage,
      [LABEL_WORKSPACE_IN_CONTAINER]: a.ws.workspaceInContainer,
      [LABEL_PROTECT]: JSON.stringify(a.ws.record),
    },
    HostConfig: {
      NetworkMode: names.network(a.id),
      // The engine's embedded DNS still answers names on the cage network (caged-proxy); anything else it
      // forwards, from the agent's own network namespace, to the proxy's DNS responder, which answers every
      // name with the proxy's address and forwards nothing (proxy/dns.ts). Without the proxy's address the
      // forwarder gets an address where nothing answers: external lookups fail.
      Dns: [a.proxyIp ?? '127.0.0.1'],
      DnsSearch: [],
      // Lookups of outside names never succeed here: fail them in a second instead of hanging.
      DnsOptions: ['timeout:1', 'attempts:1'],
      Mounts: a.ws.mounts,
      Init: true,
      PublishAllPorts: false,
      // The agent needs no raw sockets (no crafted packets past the proxy) and no device nodes.
      CapDrop: ['NET_RAW', 'MKNOD'],
      RestartPolicy: { Name: 'no' },
    },
    NetworkingConfig: { EndpointsConfig: { [names.network(a.id)]: {} } },
  };
  return { spec, ownCommand: !run };
}

/** What an agent container's labels say it protects, or undefined (an older cage, or an unreadable label). */
export function protectionOf(labels: Record<string, string>): WorkspaceProtection | undefined {
  const raw = labels[LABEL_PROTECT];
  if (!raw) return undefined;
  try {
    const v = JSON.parse(raw);
    return v && Array.isArray(v.protected) && Array.isArray(v.placeholders) ? (v as WorkspaceProtection) : undefined;
  } catch {
    return undefined;
  }
}

/** The placeholders an agent container's labels say the start created. */
export function placeholdersOf(labels: Record<string, string>): Placeholder[] {
  return protectionOf(labels)?.placeholders ?? [];
}
