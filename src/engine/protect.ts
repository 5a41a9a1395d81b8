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
//
// This file: the records and host facts, and what must be protected (protectTargets). protect-plan.ts turns the
// targets into the agent's mounts; protect-scan.ts gathers the facts on the host; mountinfo.ts checks the result
// from inside the agent.
import * as path from 'node:path';

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
  /** What a file placeholder holds (empty when absent); removed at the end only while it still holds just this. */
  content?: string;
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
  /** What a file placeholder holds (empty when absent). */
  placeholderContent?: string;
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

/** Whether `child` is `parent` or below it. */
export function inside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

export function strictlyInside(child: string, parent: string): boolean {
  return child !== parent && inside(child, parent);
}

/** The content of the commondir placeholder: this git folder itself. */
const COMMONDIR_SELF = '.\n';

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
  // A planted commondir would point the host's git at a repository the agent made (its config and hooks). An empty
  // file would break git; "." names this folder itself, which is what git assumes when there is none.
  out.push({ path: at('commondir'), kind: 'file', why: 'git common-folder link (where git finds config and hooks)', placeholder: 'file', placeholderContent: COMMONDIR_SELF, mode: 'ro' });
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
