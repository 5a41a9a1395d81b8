// The workspace is part of the cage: which workspace paths the agent must not change because the host runs or
// obeys them (git hooks and config, editor and agent settings, dev containers, the policy), and the agent's
// mount list that enforces it. Everything here is pure: the host-side facts come in as data (protect-scan.ts
// gathers them), so the rules are unit-tested without Docker and their effect is tested on a real engine.
//
// Enforcement: each protected path is a read-only bind mount of itself over the read-write workspace mount. A
// mount point cannot be removed or renamed from inside (EBUSY), so the agent cannot replace it or plant a symlink
// there; a missing protected path gets an empty placeholder on the host so it can be a mount point too; every
// folder between the workspace root and a protected path is pinned (bound onto itself) so that renaming a parent
// away (`mv .git .git.old && mkdir .git`) fails as well.
import * as path from 'node:path';
import { workspacePathCovers } from '../policy/workspace';

/** One path the agent cannot change, as status, the sidebar and the container label carry it. */
export interface ProtectedPath {
  /** Workspace-relative ("/" separators), or an absolute host path outside the workspace (a linked worktree's git folder). */
  path: string;
  kind: 'dir' | 'file';
  /** Why it is protected, in a few words ("git hooks", "VS Code settings and tasks", "workspace.protect"). */
  why: string;
  /** true when it did not exist and the engine created an empty placeholder for it. */
  placeholder?: boolean;
}

/** Something the engine created on the host so a missing path can be a mount point; removed again at `down`. */
export interface Placeholder {
  /** Absolute host path. */
  path: string;
  kind: 'dir' | 'file';
}

/** What a cage protects, carried as data (a JSON container label) to status, the sidebar, verify and `down`. */
export interface WorkspaceProtection {
  /** false only when the engine was told not to protect (tests of the extension's own defences). */
  enabled: boolean;
  protected: ProtectedPath[];
  /** Built-in protected paths the policy's `workspace.writable` lets the agent change. */
  writable: string[];
  /** Created by the engine (parents first); `down` removes those still empty. */
  placeholders: Placeholder[];
  /** Content digest of each protected path at start (by ProtectedPath.path), for "changed since the cage started". */
  baseline: Record<string, string>;
  /** Git folders mounted read-write of their own (left out of the digests of the folders around them). */
  gitDirs?: string[];
  /** The policy's workspace section as the cage was started with it ("path", or "path/" for a folder). */
  rules?: { protect: string[]; writable: string[] };
}

/** The policy's workspace section in the form the record keeps. */
export function rulesRecord(rules: ProtectInput['rules']): { protect: string[]; writable: string[] } {
  const show = (p: { path: string; dir: boolean }) => p.path + (p.dir ? '/' : '');
  return { protect: (rules?.protect ?? []).map(show), writable: (rules?.writable ?? []).map(show) };
}

/** Whether a policy's workspace section differs from the one a running cage was started with (it applies at the next start). */
export function rulesDiffer(rec: WorkspaceProtection, rules: ProtectInput['rules']): boolean {
  const a = rec.rules ?? { protect: [], writable: [] };
  const b = rulesRecord(rules);
  const key = (x: { protect: string[]; writable: string[] }) => JSON.stringify([[...x.protect].sort(), [...x.writable].sort()]);
  return key(a) !== key(b);
}

export interface AgentMount {
  source: string;
  target: string;
  readOnly: boolean;
  /** workspace: the workspace itself; protect: a read-only protected path; pin: a folder bound onto itself so it
   * cannot be renamed; gitdir: a git folder outside the workspace (linked worktree, submodule) mounted read-write. */
  role: 'workspace' | 'protect' | 'pin' | 'gitdir';
}

// ---------------------------------------------------------------------------------------------------------
// Host facts (gathered by protect-scan.ts)

export type FsKind = 'file' | 'dir' | 'symlink' | 'missing' | 'other';

export interface FsEntry {
  kind: FsKind;
  /** Hard-link count of a file. */
  nlink?: number;
  /** For a symlink: the absolute path it resolves to, or undefined when it dangles. */
  resolved?: string;
}

export type HookRunner = 'pre-commit' | 'lefthook' | 'husky' | 'overcommit';

export interface GitDirFacts {
  /** Absolute host path of the git folder. */
  path: string;
  /** repo: the workspace's own .git folder (or where a .git file points when it has no common dir); common: the
   * common dir of a linked worktree; worktree: a linked worktree's own entry; module: a submodule's git folder. */
  role: 'repo' | 'common' | 'worktree' | 'module';
  /** Its config could not be read (git itself would refuse the repository). */
  configError?: string;
  /** core.hooksPath, resolved (absolute). */
  hooksPath?: string;
  /** include.path and includeIf.*.path values, resolved (absolute). */
  includes: string[];
  /** extensions.worktreeConfig: git also reads config.worktree. */
  worktreeConfig: boolean;
  /** Hook runners whose hooks are installed (found in the hooks folder or the hooksPath folder). */
  runners: HookRunner[];
}

export interface GitFacts {
  /** What <workspace>/.git is. */
  dotGit: FsKind;
  /** <workspace>/.git is a file: the git folder it points to and that folder's common dir (absolute), or why not. */
  link?: { gitdir?: string; commondir?: string; error?: string };
  dirs: GitDirFacts[];
  /** `.git` files of submodule checkouts inside the workspace (absolute). */
  checkoutLinks: string[];
}

export interface ProtectInput {
  /** Canonical absolute host path of the workspace. */
  workspace: string;
  /** Where the workspace appears inside the agent. */
  workspaceInContainer: string;
  /** Absolute host path of the policy file. */
  policyPath: string;
  /** The user's home folder: never caged as a workspace. */
  home?: string;
  git: GitFacts;
  /** Names directly in the workspace folder (for *.code-workspace files). */
  rootNames: string[];
  /** The policy's workspace section. */
  rules?: { protect: Array<{ path: string; dir: boolean }>; writable: Array<{ path: string; dir: boolean }> };
}

/** What must be protected, before looking at the file system. */
export interface Target {
  /** Absolute host path. */
  path: string;
  kind: 'dir' | 'file';
  why: string;
  /** What to create when missing: null = nothing (the path is then not protected, and that is harmless). */
  placeholder: 'dir' | 'file' | null;
  /** rw: a git folder outside the workspace the agent's git writes to (mounted read-write, protected inside). */
  mode: 'ro' | 'rw';
  /** The policy's own folder or file: workspace.writable cannot relax it. */
  policy?: boolean;
  /** From workspace.protect: writable does not relax it. */
  user?: boolean;
}

// ---------------------------------------------------------------------------------------------------------
// What is protected

/** Workspace-relative paths the host runs or obeys, outside git. Missing ones get a placeholder (a folder unless said). */
export const EDITOR_PATHS: ReadonlyArray<{ rel: string; kind: 'dir' | 'file'; why: string; placeholder?: 'file' }> = [
  // An empty file, not a folder: VS Code's git reads .gitmodules and fails its status on a folder there.
  { rel: '.gitmodules', kind: 'file', why: 'submodule list (URLs the host git fetches)', placeholder: 'file' },
  { rel: '.vscode', kind: 'dir', why: 'VS Code settings, tasks and launch configurations' },
  { rel: '.idea', kind: 'dir', why: 'JetBrains settings and run configurations' },
  { rel: '.devcontainer', kind: 'dir', why: 'dev container (initializeCommand runs on the host)' },
  { rel: '.devcontainer.json', kind: 'file', why: 'dev container (initializeCommand runs on the host)' },
  { rel: '.mcp.json', kind: 'file', why: 'MCP servers the host agent starts' },
  { rel: '.claude/settings.json', kind: 'file', why: 'Claude Code settings (hooks, permissions)' },
  { rel: '.claude/commands', kind: 'dir', why: 'Claude Code commands' },
  { rel: '.claude/agents', kind: 'dir', why: 'Claude Code agents' },
  { rel: '.claude/hooks', kind: 'dir', why: 'Claude Code hooks' },
];

/** Config files of hook runners: the host's git commits run what they say. */
export const RUNNER_FILES: Record<HookRunner, { files: string[]; primary: string }> = {
  'pre-commit': { files: ['.pre-commit-config.yaml', '.pre-commit-config.yml'], primary: '.pre-commit-config.yaml' },
  lefthook: {
    files: ['lefthook.yml', 'lefthook.yaml', '.lefthook.yml', '.lefthook.yaml', 'lefthook-local.yml', 'lefthook-local.yaml', '.lefthook-local.yml', '.lefthook-local.yaml', '.lefthook', '.lefthook-local'],
    primary: 'lefthook.yml',
  },
  husky: { files: ['.husky'], primary: '.husky' },
  overcommit: { files: ['.overcommit.yml', '.git-hooks'], primary: '.overcommit.yml' },
};

/** The worktree entries of a repository change with every commit in another worktree: digested by name only. */
export const WHY_WORKTREES = 'git worktree entries';
/** The policy changes by design (Allow quick fixes, `caged-agent allow`; the proxy is told each time): no baseline. */
export const WHY_POLICY = 'policy';

function inside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

function strictlyInside(child: string, parent: string): boolean {
  return child !== parent && inside(child, parent);
}

/** The targets for one git folder (its config, hooks, info, modules, worktrees, hooksPath, includes, runners). */
function gitDirTargets(g: GitDirFacts, input: ProtectInput, out: Target[]): void {
  const at = (name: string) => path.join(g.path, name);
  if (g.role === 'worktree') {
    // A linked worktree's own entry: HEAD and index are written here; what points git elsewhere is not.
    out.push({ path: g.path, kind: 'dir', why: 'git folder of this worktree', placeholder: null, mode: 'rw' });
    out.push({ path: at('commondir'), kind: 'file', why: 'git worktree link', placeholder: null, mode: 'ro' });
    out.push({ path: at('gitdir'), kind: 'file', why: 'git worktree link', placeholder: null, mode: 'ro' });
    out.push({ path: at('config.worktree'), kind: 'file', why: 'git config', placeholder: g.worktreeConfig ? 'file' : null, mode: 'ro' });
    return;
  }
  if (g.role !== 'repo' || !inside(g.path, input.workspace)) {
    out.push({ path: g.path, kind: 'dir', why: g.role === 'module' ? 'submodule git folder' : 'git folder', placeholder: null, mode: 'rw' });
  }
  out.push({ path: at('config'), kind: 'file', why: 'git config (core.fsmonitor, filters, aliases run on the host)', placeholder: 'file', mode: 'ro' });
  out.push({ path: at('config.worktree'), kind: 'file', why: 'git config', placeholder: g.worktreeConfig ? 'file' : null, mode: 'ro' });
  out.push({ path: at('hooks'), kind: 'dir', why: 'git hooks', placeholder: 'dir', mode: 'ro' });
  out.push({ path: at('info'), kind: 'dir', why: 'git attributes and excludes', placeholder: 'dir', mode: 'ro' });
  out.push({ path: at('modules'), kind: 'dir', why: 'submodule git folders', placeholder: 'dir', mode: 'ro' });
  if (g.role !== 'module') out.push({ path: at('worktrees'), kind: 'dir', why: WHY_WORKTREES, placeholder: 'dir', mode: 'ro' });
  if (g.hooksPath) out.push({ path: g.hooksPath, kind: 'dir', why: 'git hooks (core.hooksPath)', placeholder: 'dir', mode: 'ro' });
  for (const inc of g.includes) out.push({ path: inc, kind: 'file', why: 'git config (include.path)', placeholder: 'dir', mode: 'ro' });
  for (const r of g.runners) {
    const spec = RUNNER_FILES[r];
    for (const f of spec.files) {
      out.push({ path: path.join(input.workspace, f), kind: f.includes('.y') ? 'file' : 'dir', why: `${r} config (runs at git commit)`, placeholder: f === spec.primary ? 'dir' : null, mode: 'ro' });
    }
  }
}

/** Everything that should be protected for this workspace, from the git facts, the built-in list and the policy. */
export function protectTargets(input: ProtectInput): Target[] {
  const ws = input.workspace;
  const out: Target[] = [];
  const g = input.git;
  const dotGit = path.join(ws, '.git');
  if (g.dotGit === 'file') out.push({ path: dotGit, kind: 'file', why: 'git link (where git finds this checkout\u2019s repository)', placeholder: null, mode: 'ro' });
  // No repository: an empty, read-only .git keeps the agent from creating one that the host's git would obey.
  else if (g.dotGit === 'missing') out.push({ path: dotGit, kind: 'dir', why: 'no git repository here (keeps one from being created)', placeholder: 'dir', mode: 'ro' });
  else out.push({ path: dotGit, kind: 'dir', why: 'git folder', placeholder: null, mode: 'rw' });
  for (const d of g.dirs) gitDirTargets(d, input, out);
  for (const l of g.checkoutLinks) out.push({ path: l, kind: 'file', why: 'submodule git link', placeholder: null, mode: 'ro' });
  for (const e of EDITOR_PATHS) out.push({ path: path.join(ws, ...e.rel.split('/')), kind: e.kind, why: e.why, placeholder: e.placeholder ?? 'dir', mode: 'ro' });
  for (const n of input.rootNames) {
    if (n.endsWith('.code-workspace')) out.push({ path: path.join(ws, n), kind: 'file', why: 'VS Code workspace file (settings, tasks)', placeholder: null, mode: 'ro' });
  }
  if (inside(input.policyPath, ws)) {
    const dir = path.dirname(input.policyPath);
    if (dir !== ws) out.push({ path: dir, kind: 'dir', why: WHY_POLICY, placeholder: 'dir', mode: 'ro', policy: true });
    else out.push({ path: input.policyPath, kind: 'file', why: WHY_POLICY, placeholder: 'file', mode: 'ro', policy: true });
  }
  for (const p of input.rules?.protect ?? []) {
    out.push({ path: path.join(ws, ...p.path.split('/')), kind: p.dir ? 'dir' : 'file', why: 'workspace.protect', placeholder: 'dir', mode: 'ro', user: true });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// The plan

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
          plan.placeholders.push({ path: p, kind: p === t.path ? t.placeholder : 'dir' });
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

// ---------------------------------------------------------------------------------------------------------
// Checking the mounts from inside the agent

export interface MountInfoEntry {
  mountPoint: string;
  readOnly: boolean;
}

/** Parses /proc/self/mountinfo (proc(5)): mount point and whether it is read-only. */
export function parseMountInfo(text: string): MountInfoEntry[] {
  const out: MountInfoEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length < 6) continue;
    const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    out.push({ mountPoint: unescape(f[4]), readOnly: f[5].split(',').includes('ro') });
  }
  return out;
}

export interface MountCheck {
  /** Expected mount points that are not there (the engine ignored them, or a host program replaced the path). */
  missing: string[];
  /** Protected mount points that are writable. */
  writable: string[];
}

/** Compares the agent's mounts with what the cage was created with (later entries win, as in the kernel's view). */
export function checkMounts(expected: ReadonlyArray<{ target: string; readOnly: boolean }>, mountInfo: MountInfoEntry[]): MountCheck {
  const last = new Map<string, MountInfoEntry>();
  for (const m of mountInfo) last.set(m.mountPoint, m);
  const r: MountCheck = { missing: [], writable: [] };
  for (const e of expected) {
    const m = last.get(e.target);
    if (!m) r.missing.push(e.target);
    else if (e.readOnly && !m.readOnly) r.writable.push(e.target);
  }
  return r;
}
