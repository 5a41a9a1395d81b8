// Finding cages on the engine by their labels (so a restarted editor or CLI finds them again) and saying what
// state each is in. cageState() and cageInfo() are pure: the containers' summaries and the proxy's health in,
// the answer out (unit-tested without Docker).
import type Docker from 'dockerode';
import type { CageInfo, CageState } from './api';
import { execIn } from './exec';
import { LABEL, LABEL_CAGE, LABEL_ROLE, LABEL_WORKSPACE, names } from './names';
import { LABEL_BASE_IMAGE, LABEL_POLICY, LABEL_WORKSPACE_IN_CONTAINER, PROXY_HEALTH_CMD, protectionOf } from './specs';

export type Summary = Docker.ContainerInfo;

/** The parts of a container summary the state depends on. */
type Seen = Pick<Summary, 'State'> | undefined;

/** A cage's state from its containers' states and the proxy's health (Docker's, or the proxy's own answer). */
export function cageState(proxy: Seen, agent: Seen, health: string | undefined): CageState {
  const proxyUp = proxy?.State === 'running';
  const agentUp = agent?.State === 'running';
  if (!proxyUp && !agentUp) return 'stopped';
  if (!proxyUp) return 'proxy-down';
  if (agent?.State === 'paused') return 'paused';
  if (!agentUp) return 'agent-down';
  if (health === 'unhealthy') return 'unhealthy';
  if (health === 'starting') return 'starting';
  return 'healthy';
}

/** A cage as its labelled containers describe it; undefined when neither container exists. */
export function cageInfo(cageId: string, list: Summary[], health: string | undefined): CageInfo | undefined {
  const proxy = roleIn(list, 'proxy');
  const agent = roleIn(list, 'agent');
  if (!proxy && !agent) return undefined;
  const src = agent ?? proxy!;
  const created = Math.min(...[proxy, agent].filter((c): c is Summary => !!c).map((c) => c.Created));
  return {
    id: cageId,
    workspace: src.Labels[LABEL_WORKSPACE] ?? '',
    state: cageState(proxy, agent, health),
    agentContainerId: agent?.Id,
    proxyContainerId: proxy?.Id,
    networkName: names.network(cageId),
    agentImage: agent?.Image ?? '',
    createdAt: new Date(created * 1000).toISOString(),
    workspaceInContainer: agent?.Labels[LABEL_WORKSPACE_IN_CONTAINER],
    policyPath: src.Labels[LABEL_POLICY],
    baseImage: agent?.Labels[LABEL_BASE_IMAGE],
    protection: agent ? protectionOf(agent.Labels) : undefined,
  };
}

function roleIn(list: Summary[], role: 'proxy' | 'agent'): Summary | undefined {
  return list.find((c) => c.Labels[LABEL_ROLE] === role);
}

/** The labelled containers, of one cage and one role when given. */
export async function labelledContainers(docker: Docker, cageId?: string, role?: string): Promise<Summary[]> {
  const label = [`${LABEL}=1`];
  if (cageId) label.push(`${LABEL_CAGE}=${cageId}`);
  if (role) label.push(`${LABEL_ROLE}=${role}`);
  return docker.listContainers({ all: true, filters: { label } });
}

/** Containers grouped by their cage label (those without one under ""). */
export function byCage(list: Summary[]): Map<string, Summary[]> {
  const out = new Map<string, Summary[]>();
  for (const c of list) {
    const id = c.Labels[LABEL_CAGE] ?? '';
    out.set(id, [...(out.get(id) ?? []), c]);
  }
  return out;
}

/** The health of a running proxy: Docker's verdict, or the proxy's own answer while Docker has not checked yet. */
async function proxyHealth(docker: Docker, proxy: Summary | undefined): Promise<string | undefined> {
  if (proxy?.State !== 'running') return undefined;
  try {
    const c = docker.getContainer(proxy.Id);
    const health = (await c.inspect()).State.Health?.Status;
    // Docker runs its first health check only after an interval: ask the proxy directly meanwhile, so a cage
    // that is already serving does not show as "starting".
    if (health === 'starting') {
      const r = await execIn(c, PROXY_HEALTH_CMD, { timeoutMs: 3000 }).catch(() => undefined);
      if (r?.exitCode === 0) return 'healthy';
    }
    return health;
  } catch {
    return undefined;
  }
}

export async function describeCage(docker: Docker, cageId: string, list: Summary[]): Promise<CageInfo | undefined> {
  return cageInfo(cageId, list, await proxyHealth(docker, roleIn(list, 'proxy')));
}

/** Every cage on the engine, by workspace. */
export async function listCages(docker: Docker): Promise<CageInfo[]> {
  const mine = (await labelledContainers(docker)).filter((c) => c.Labels[LABEL_CAGE] && (c.Labels[LABEL_ROLE] === 'agent' || c.Labels[LABEL_ROLE] === 'proxy'));
  const out: CageInfo[] = [];
  for (const [id, list] of byCage(mine)) {
    const info = await describeCage(docker, id, list);
    if (info) out.push(info);
  }
  return out.sort((a, b) => a.workspace.localeCompare(b.workspace));
}

const ROLE_WORDS = { proxy: 'proxy', agent: 'agent container' } as const;

/** The cage's running proxy or agent container; throws in plain words when there is none or it is not running. */
export async function runningContainer(docker: Docker, cageId: string, role: 'proxy' | 'agent'): Promise<Docker.Container> {
  const c = (await labelledContainers(docker, cageId, role))[0];
  if (!c) throw new Error(role === 'proxy' ? `No proxy is running for cage ${cageId}.` : `No agent container exists for cage ${cageId}.`);
  if (c.State !== 'running') throw new Error(`The ${ROLE_WORDS[role]} of cage ${cageId} is not running (${c.State}).`);
  return docker.getContainer(c.Id);
}
