// The plan: the protect targets (protect.ts) against the file system as scanned (protect-scan.ts) become the
// agent's mount list, what it protects, the placeholders to create, and the reasons not to start (symlinks, hard
// links, a home folder). Pure: the file-system view comes in as data.
import * as path from 'node:path';
import { workspacePathCovers } from '../policy/workspace';
import { inside, strictlyInside, type AgentMount, type FsEntry, type Placeholder, type ProtectedPath, type ProtectInput, type Target } from './protect';

export interface ProtectPlan {
  mounts: AgentMount[];
  protected: ProtectedPath[];
  writable: string[];
  /** To create on the host before the container starts, parents first. */
  placeholders: Placeholder[];
  /** Reasons not to start (each names the path and the fix). */
  problems: string[];
  /** Progress notes (a writable entry that protects nothing, git that cannot work inside the cage). */
  notes: string[];
}

/** Where a host path appears inside the agent, or undefined when it is not mounted. */
export function containerPath(input: Pick<ProtectInput, 'workspace' | 'workspaceInContainer'>, hostPath: string): string | undefined {
  if (inside(hostPath, input.workspace)) {
    const rel = path.relative(input.workspace, hostPath);
    return rel === '' ? input.workspaceInContainer : path.posix.join(input.workspaceInContainer, ...rel.split(path.sep));
  }
  // Outside the workspace only git folders are mounted, at their own path, when the workspace is too.
  return input.workspaceInContainer === input.workspace && path.posix.isAbsolute(hostPath) ? hostPath : undefined;
}

export function displayPath(workspace: string, hostPath: string): string {
  return inside(hostPath, workspace) ? path.relative(workspace, hostPath).split(path.sep).join('/') : hostPath;
}

/** How many entries of a protected folder the scan looks at for links (more is refused: too big to check). */
export const MAX_DIR_ENTRIES = 5000;

/**
 * The agent's mount list and what it protects. `fs` holds the lstat results (and resolved symlinks) of every
 * target, of their parents up to the workspace or git folder they live in, and of the entries inside protected
 * folders (keys: absolute host paths, files inside folders as "folder/…"). A path missing from `fs` counts as
 * missing.
 */
export function planProtection(input: ProtectInput, targets: Target[], fs: ReadonlyMap<string, FsEntry>, dirEntries: ReadonlyMap<string, string[]> = new Map()): ProtectPlan {
  const ws = input.workspace;
  const plan: ProtectPlan = { mounts: [], protected: [], writable: [], placeholders: [], problems: [], notes: [] };
  const stat = (p: string): FsEntry => fs.get(p) ?? { kind: 'missing' };
  const show = (p: string) => displayPath(ws, p);
  if (input.home && path.resolve(input.home) === path.resolve(ws)) {
    plan.problems.push(`${ws} is your home folder: it holds your shell startup files, SSH keys and git config, which the agent could change. Open a project folder instead.`);
  }
  plan.mounts.push({ source: ws, target: input.workspaceInContainer, readOnly: false, role: 'workspace' });

  // 1. The policy's opt-outs (never the policy itself).
  const writable = input.rules?.writable ?? [];
  const relaxed = (t: Target) => !t.user && !t.policy && inside(t.path, ws) && writable.some((w) => workspacePathCovers(w.path, show(t.path)));
  for (const w of writable) {
    const abs = path.join(ws, ...w.path.split('/'));
    const policyT = targets.find((t) => t.policy);
    if (policyT && (inside(policyT.path, abs) || inside(abs, policyT.path))) {
      plan.problems.push(`workspace.writable: "${w.path}" would let the agent change its own policy (${show(policyT.path)}); remove it from the list.`);
      continue;
    }
    if (targets.some((t) => !t.user && !t.policy && inside(t.path, abs))) plan.writable.push(w.path);
    else plan.notes.push(`workspace.writable: "${w.path}" is not protected anyway`);
  }

  // 2. Keep the targets that apply; drop those inside another read-only target (already covered).
  let list = targets.filter((t) => !relaxed(t));
  const mountable = (t: Target) => containerPath(input, t.path) !== undefined;
  for (const t of list.filter((x) => !mountable(x))) {
    if (t.mode === 'rw') plan.notes.push(`git inside the cage cannot use ${t.path}: it is outside the workspace and the workspace is not mounted at its own path`);
  }
  list = list.filter(mountable);
  // A git folder outside the workspace is only mounted when something inside it is protected too (always).
  const roots = [ws, ...list.filter((t) => t.mode === 'rw' && !inside(t.path, ws)).map((t) => t.path)];
  const rootOf = (p: string) => roots.filter((r) => inside(p, r)).sort((a, b) => b.length - a.length)[0];
  const byPath = new Map<string, Target>();
  for (const t of list) {
    const prev = byPath.get(t.path);
    byPath.set(t.path, !prev ? t : {
      ...prev,
      mode: prev.mode === 'ro' || t.mode === 'ro' ? 'ro' : 'rw',
      placeholder: prev.placeholder ?? t.placeholder,
      placeholderContent: prev.placeholder ? prev.placeholderContent : t.placeholderContent,
      policy: prev.policy || t.policy,
      user: prev.user || t.user,
      why: prev.mode === 'rw' && t.mode === 'ro' ? t.why : prev.why,
    });
  }
  const all = [...byPath.values()];
  const ro = all.filter((t) => t.mode === 'ro');
  // The nearest target folder around a path decides: inside a read-only one it is covered, inside a read-write git
  // folder (a submodule's, inside the read-only .git/modules) it is not.
  const coveredByRo = (p: string) => {
    const around = all.filter((o) => strictlyInside(p, o.path) && (o.mode === 'rw' || stat(o.path).kind !== 'file'));
    around.sort((a, b) => b.path.length - a.path.length);
    return around[0]?.mode === 'ro';
  };

  // 3. Each target against the file system: symlinks refused, a file where a folder is expected protected instead.
  const created = new Set<string>();
  const mountTargets = new Map<string, AgentMount>();
  const addMount = (source: string, role: AgentMount['role'], readOnly: boolean) => {
    const target = containerPath(input, source)!;
    if (!mountTargets.has(target)) mountTargets.set(target, { source, target, readOnly, role });
  };
  const ordered = [...byPath.values()].sort((a, b) => a.path.length - b.path.length || a.path.localeCompare(b.path));
  for (const t of ordered) {
    if (t.mode === 'ro' && coveredByRo(t.path)) continue;
    const root = rootOf(t.path);
    if (!root) continue;
    // Parents between the mount root and the target: no symlinks; a file there is protected itself instead.
    let blocked = false;
    const chain: string[] = [];
    for (let p = path.dirname(t.path); p !== root && inside(p, root) && p !== path.dirname(p); p = path.dirname(p)) chain.unshift(p);
    for (const p of chain) {
      const e = stat(p);
      if (e.kind === 'symlink') {
        plan.problems.push(symlinkProblem(show(p), e, ws, `it is a parent of ${show(t.path)} (${t.why})`));
        blocked = true;
        break;
      }
      if (e.kind === 'file' || e.kind === 'other') {
        if (!mountTargets.has(containerPath(input, p)!)) {
          addMount(p, 'protect', true);
          plan.protected.push({ path: show(p), kind: 'file', why: `stands where ${show(t.path)} (${t.why}) would be` });
        }
        blocked = true;
        break;
      }
    }
    if (blocked) continue;
    const e = stat(t.path);
    if (e.kind === 'symlink') {
      plan.problems.push(symlinkProblem(show(t.path), e, ws, t.why));
      continue;
    }
    if (e.kind === 'other') {
      plan.problems.push(`${show(t.path)} (${t.why}) is neither a file nor a folder; remove it or replace it with the real file.`);
      continue;
    }
    if (e.kind === 'missing') {
      if (!t.placeholder) continue;
      for (const p of [...chain, t.path]) {
        if (stat(p).kind === 'missing' && !created.has(p)) {
          created.add(p);
          const own = p === t.path;
          plan.placeholders.push({ path: p, kind: own ? t.placeholder : 'dir', ...(own && t.placeholderContent ? { content: t.placeholderContent } : {}) });
        }
      }
    }
    const kind: 'dir' | 'file' = e.kind === 'missing' ? t.placeholder! : e.kind === 'dir' ? 'dir' : 'file';
    if (kind === 'file' && (e.nlink ?? 1) > 1) {
      plan.problems.push(`${show(t.path)} (${t.why}) has ${e.nlink} hard links: another name for the same file elsewhere in the workspace would stay writable. Make it a file of its own (cp ${show(t.path)} x && mv x ${show(t.path)}).`);
      continue;
    }
    if (t.mode === 'rw') {
      if (kind !== 'dir') continue;
      addMount(t.path, 'gitdir', false);
      continue;
    }
    addMount(t.path, 'protect', true);
    plan.protected.push({ path: show(t.path), kind, why: t.why, ...(e.kind === 'missing' ? { placeholder: true } : {}) });
    if (kind === 'dir' && e.kind === 'dir') checkDirEntries(t, dirEntries, fs, ro, ws, plan);
  }

  // 4. Pin every parent folder of a protected path that is not itself a mount point or inside a read-only one.
  for (const m of [...mountTargets.values()]) {
    if (m.role !== 'protect' && m.role !== 'gitdir') continue;
    const root = rootOf(m.source);
    if (!root) continue;
    for (let p = path.dirname(m.source); p !== root && inside(p, root) && p !== path.dirname(p); p = path.dirname(p)) {
      const target = containerPath(input, p)!;
      if (mountTargets.has(target) || coveredByRo(p)) break;
      mountTargets.set(target, { source: p, target, readOnly: false, role: 'pin' });
    }
  }
  plan.mounts.push(...[...mountTargets.values()].sort((a, b) => depth(a.target) - depth(b.target) || a.target.localeCompare(b.target)));
  plan.protected.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return plan;
}

function depth(p: string): number {
  return p.split('/').filter(Boolean).length;
}

function symlinkProblem(shown: string, e: FsEntry, ws: string, why: string): string {
  const where = e.resolved === undefined ? 'a path that does not exist' : inside(e.resolved, ws) ? `${displayPath(ws, e.resolved)}, inside the workspace` : `${e.resolved}, outside the workspace`;
  return `${shown} is a symbolic link (to ${where}) where a protected path is (${why}). A mount cannot make a link read-only, so the agent could replace it. Replace the link with the real folder or file, or list it under workspace.writable in the policy to let the agent change it.`;
}

/** Inside a protected folder: no links to writable places, no hard-linked files. */
function checkDirEntries(t: Target, dirEntries: ReadonlyMap<string, string[]>, fs: ReadonlyMap<string, FsEntry>, ro: Target[], ws: string, plan: ProtectPlan): void {
  const names = dirEntries.get(t.path);
  if (!names) return;
  if (names.length > MAX_DIR_ENTRIES) {
    plan.problems.push(`${displayPath(ws, t.path)} (${t.why}) holds more than ${MAX_DIR_ENTRIES} entries, too many to check for links to writable places.`);
    return;
  }
  for (const rel of names) {
    const p = path.join(t.path, rel);
    const e = fs.get(p);
    if (!e) continue;
    if (e.kind === 'symlink' && e.resolved !== undefined && inside(e.resolved, ws) && !ro.some((o) => inside(e.resolved!, o.path))) {
      plan.problems.push(`${displayPath(ws, p)} is a symbolic link to ${displayPath(ws, e.resolved)}, which the agent can write: the host would follow it (${t.why}). Replace the link with the file itself.`);
    } else if (e.kind === 'file' && (e.nlink ?? 1) > 1) {
      plan.problems.push(`${displayPath(ws, p)} has ${e.nlink} hard links: another name for it elsewhere in the workspace would stay writable (${t.why}). Make it a file of its own (cp ${displayPath(ws, p)} x && mv x ${displayPath(ws, p)}).`);
    }
  }
}
