// Names, labels and defaults shared by everything under src/engine. One place so status, teardown and
// cleanup find objects by label without guessing names.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const DEFAULT_PROXY_BASE_IMAGE = 'node:20-alpine';
export const DEFAULT_AGENT_IMAGE = 'node:20-bookworm';

/** The shared egress network only proxies join (created once, reused). */
export const EGRESS_NETWORK = 'caged-agent-egress';
/** The proxy's name on each cage's internal network. */
export const PROXY_ALIAS = 'caged-proxy';
export const PROXY_PORT = 3128;
export const PROXY_URL = `http://${PROXY_ALIAS}:${PROXY_PORT}`;
/** Where the proxy container reads its CA, key, policy and upstream CAs (a per-cage volume). */
export const PROXY_CONFIG_DIR = '/etc/caged-agent';
/** The uid/gid the proxy runs as (the `node` user of the official Node images). */
export const PROXY_UID = 1000;

/** Where the agent image carries the cage CA and the combined bundle. */
export const AGENT_CA_FILE = '/usr/local/share/ca-certificates/caged-agent.crt';
export const AGENT_BUNDLE_FILE = '/usr/local/share/caged-agent/ca-bundle.crt';

export const LABEL = 'caged-agent';
export const LABEL_CAGE = 'caged-agent.cage';
export const LABEL_WORKSPACE = 'caged-agent.workspace';
export const LABEL_ROLE = 'caged-agent.role';

export type Role = 'agent' | 'proxy' | 'network' | 'egress' | 'image' | 'volume' | 'probe';

export function labels(role: Role, cageId?: string, workspace?: string): Record<string, string> {
  const l: Record<string, string> = { [LABEL]: '1', [LABEL_ROLE]: role };
  if (cageId) l[LABEL_CAGE] = cageId;
  if (workspace) l[LABEL_WORKSPACE] = workspace;
  return l;
}

/** Resolves the workspace to its real absolute path (symlinks resolved) when it exists. */
export function canonicalWorkspace(workspace: string): string {
  const abs = path.resolve(workspace);
  try {
    return fs.realpathSync.native(abs);
  } catch {
    return abs;
  }
}

/** Stable cage id per workspace: restarting the same workspace reuses its CA and agent image. */
export function cageIdFor(workspace: string): string {
  return 'ca-' + crypto.createHash('sha256').update(canonicalWorkspace(workspace)).digest('hex').slice(0, 10);
}

export function isCageId(s: string): boolean {
  return /^ca-[0-9a-f]{10}$/.test(s);
}

export const names = {
  network: (id: string) => `caged-agent-${id}`,
  proxy: (id: string) => `caged-agent-${id}-proxy`,
  agent: (id: string) => `caged-agent-${id}-agent`,
  volume: (id: string) => `caged-agent-${id}-config`,
};
