// Who the agent runs as: the workspace owner's uid/gid, as Dev Containers' updateRemoteUserUID does, so the files
// the agent writes in the workspace belong to the user and not to root. The derived agent image gets a passwd and
// group entry for that uid/gid (written with COPY, so images without a shell or useradd work too), a writable
// HOME, and a user-writable install prefix on PATH (npm's prefix; pip --user and friends use ~/.local/bin), so
// package installs need no sudo. The container's configured User is that uid:gid: the agent command, the
// editor's terminal, `caged-agent shell` and a plain `docker exec` all run as the owner. Pure planning here; the
// image build is images.ts.
import * as fs from 'node:fs';

export interface Owner {
  uid: number;
  gid: number;
}

export interface AgentUserPlan {
  /** The container's User: "uid:gid". */
  user: string;
  home: string;
  /** New /etc/passwd and /etc/group text when the image lacks the entries (undefined: keep the image's). */
  passwd?: string;
  group?: string;
  /** The image has no such HOME directory: create it owned by the user. */
  createHome: boolean;
  /** Environment for the image: the user-writable prefix on PATH. */
  env: Record<string, string>;
}

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The owner of the workspace folder on this host; undefined when it cannot be read. */
export function workspaceOwner(workspace: string): Owner | undefined {
  try {
    const st = fs.statSync(workspace);
    return { uid: st.uid, gid: st.gid };
  } catch {
    return undefined;
  }
}

function rows(text: string): string[][] {
  return text.split('\n').filter((l) => l.trim() && !l.startsWith('#')).map((l) => l.split(':'));
}

function withLine(text: string, line: string): string {
  return (text && !text.endsWith('\n') ? text + '\n' : text) + line + '\n';
}

/**
 * The user plan for an image with these /etc/passwd and /etc/group texts ('' when missing), its PATH, and whether
 * a path exists in it. Undefined for root (uid 0): nothing to change.
 */
export function planAgentUser(owner: Owner, image: { passwd: string; group: string; path?: string; exists: (p: string) => boolean }): AgentUserPlan | undefined {
  if (owner.uid === 0) return undefined;
  const users = rows(image.passwd);
  const groups = rows(image.group);
  const existing = users.find((u) => Number(u[2]) === owner.uid);
  let passwd: string | undefined;
  let group: string | undefined;
  let home: string;
  if (existing) {
    home = existing[5] || '/home/caged';
  } else {
    const taken = new Set(users.map((u) => u[0]));
    const name = taken.has('caged') ? `caged${owner.uid}` : 'caged';
    home = `/home/${name}`;
    const base = image.passwd || 'root:x:0:0:root:/root:/bin/sh\n';
    passwd = withLine(base, `${name}:x:${owner.uid}:${owner.gid}:Caged Agent:${home}:/bin/sh`);
  }
  if (!groups.some((g) => Number(g[2]) === owner.gid)) {
    const taken = new Set(groups.map((g) => g[0]));
    const name = taken.has('caged') ? `caged${owner.gid}` : 'caged';
    group = withLine(image.group || 'root:x:0:\n', `${name}:x:${owner.gid}:`);
  }
  const createHome = !image.exists(home);
  const prefix = `${home}/.local`;
  return {
    user: `${owner.uid}:${owner.gid}`,
    home,
    passwd,
    group,
    createHome,
    env: { HOME: home, NPM_CONFIG_PREFIX: prefix, PATH: `${prefix}/bin:${image.path || DEFAULT_PATH}` },
  };
}
