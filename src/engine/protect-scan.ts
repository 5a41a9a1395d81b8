// The host side of workspace protection: reads what protect.ts needs (lstat results, the repository's git
// config, submodule and worktree git folders, installed hook runners), creates the placeholders the plan asks
// for, records a content digest of every protected path, and removes the placeholders again at `down`.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseWorkspaceRules } from '../policy/parse';
import { gitConfigBool, gitConfigGet, parseGitConfig } from './gitconfig';
import { MAX_DIR_ENTRIES, planProtection, type ProtectPlan } from './protect-plan';
import {
  protectTargets,
  rulesRecord,
  type FsEntry,
  type FsKind,
  type GitDirFacts,
  type GitFacts,
  type HookRunner,
  type Placeholder,
  type ProtectInput,
  type WorkspaceProtection,
  WHY_POLICY,
  WHY_WORKTREES,
} from './protect';

function lstat(p: string): FsEntry {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(p);
  } catch {
    return { kind: 'missing' };
  }
  if (st.isSymbolicLink()) {
    let resolved: string | undefined;
    try { resolved = fs.realpathSync.native(p); } catch {}
    return { kind: 'symlink', resolved };
  }
  const kind: FsKind = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other';
  return kind === 'file' ? { kind, nlink: st.nlink } : { kind };
}

function readText(p: string, max = 1 << 20): string | undefined {
  try {
    const fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    try {
      const buf = Buffer.alloc(Math.min(max, Math.max(0, fs.fstatSync(fd).size)));
      const n = fs.readSync(fd, buf, 0, buf.length, 0);
      return buf.subarray(0, n).toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return undefined;
  }
}

const RUNNER_SIGNS: Array<[HookRunner, RegExp]> = [
  ['pre-commit', /pre-commit\.com|-m pre_commit|\bpre-commit hook-impl\b/],
  ['lefthook', /lefthook/i],
  ['husky', /husky/i],
  ['overcommit', /overcommit/i],
];

/** Hook runners whose scripts are installed in these folders. */
function detectRunners(dirs: string[]): HookRunner[] {
  const found = new Set<HookRunner>();
  for (const d of dirs) {
    let names: string[] = [];
    try { names = fs.readdirSync(d); } catch { continue; }
    for (const n of names.slice(0, 200)) {
      if (n.endsWith('.sample')) continue;
      const text = readText(path.join(d, n), 64 * 1024);
      if (!text) continue;
      for (const [id, re] of RUNNER_SIGNS) if (re.test(text)) found.add(id);
    }
  }
  return [...found].sort();
}

function expandHome(p: string, home: string | undefined): string {
  return home && (p === '~' || p.startsWith('~/')) ? path.join(home, p.slice(1)) : p;
}

/** What a git folder's config says about what else git obeys. */
function gitDirFacts(dir: string, role: GitDirFacts['role'], worktree: string, home: string | undefined): GitDirFacts & { coreWorktree?: string } {
  const facts: GitDirFacts & { coreWorktree?: string } = { path: dir, role, includes: [], worktreeConfig: false, runners: [] };
  const text = readText(path.join(dir, 'config'));
  if (text !== undefined) {
    const r = parseGitConfig(text);
    if ('error' in r) facts.configError = `${path.join(dir, 'config')} line ${r.line}: ${r.error}`;
    else {
      const hp = gitConfigGet(r.entries, 'core.hooksPath');
      // A relative core.hooksPath is relative to where hooks run: the top of the working tree.
      if (typeof hp === 'string' && hp !== '') facts.hooksPath = path.resolve(worktree, expandHome(hp, home));
      facts.worktreeConfig = gitConfigBool(gitConfigGet(r.entries, 'extensions.worktreeConfig')) === true;
      for (const e of r.entries) {
        if ((e.key === 'include.path' || (e.key.startsWith('includeif.') && e.key.endsWith('.path'))) && e.value) {
          // Relative include paths are relative to the file that includes them.
          facts.includes.push(path.resolve(dir, expandHome(e.value, home)));
        }
      }
      const wt = gitConfigGet(r.entries, 'core.worktree');
      if (typeof wt === 'string' && wt !== '') facts.coreWorktree = path.resolve(dir, wt);
    }
  }
  facts.runners = detectRunners([path.join(dir, 'hooks'), ...(facts.hooksPath ? [facts.hooksPath] : [])]);
  return facts;
}

function isGitDir(p: string): boolean {
  return lstat(path.join(p, 'HEAD')).kind === 'file' && (lstat(path.join(p, 'objects')).kind === 'dir' || lstat(path.join(p, 'commondir')).kind === 'file');
}

/** Submodule git folders under <gitdir>/modules (names may contain "/"; modules nest). */
function findModules(gitdir: string, out: string[], depth = 0): void {
  const walk = (dir: string, d: number) => {
    if (d > 8 || out.length > 500) return;
    let ents: fs.Dirent[] = [];
    try { ents = fs.readdirSync(dir, { withFileTypes: true }); } catch { return; }
    for (const e of ents) {
      if (!e.isDirectory()) continue;
      const p = path.join(dir, e.name);
      if (isGitDir(p)) {
        out.push(p);
        findModules(p, out, depth + 1);
      } else walk(p, d + 1);
    }
  };
  if (depth < 8) walk(path.join(gitdir, 'modules'), 0);
}

/** Reads the facts about the workspace's repository: its git folders and what their configs point at. */
export function scanGit(workspace: string, home: string | undefined): GitFacts {
  const dotGit = path.join(workspace, '.git');
  const kind = lstat(dotGit).kind;
  const facts: GitFacts = { dotGit: kind, dirs: [], checkoutLinks: [] };
  const modules: string[] = [];
  const addRepo = (dir: string, role: GitDirFacts['role']) => {
    const f = gitDirFacts(dir, role, workspace, home);
    facts.dirs.push(f);
    findModules(dir, modules);
  };
  if (kind === 'dir') addRepo(dotGit, 'repo');
  else if (kind === 'file') {
    const text = readText(dotGit, 4096) ?? '';
    const m = /^gitdir: (.+?)\r?\n?$/m.exec(text);
    if (!m) facts.link = { error: `${dotGit} does not say "gitdir: <path>"` };
    else {
      const gitdir = path.resolve(workspace, m[1]);
      const common = readText(path.join(gitdir, 'commondir'), 4096)?.trim();
      if (common) {
        const commondir = path.resolve(gitdir, common);
        facts.link = { gitdir, commondir };
        facts.dirs.push(gitDirFacts(gitdir, 'worktree', workspace, home));
        addRepo(commondir, 'common');
        // Per-worktree config lives in the worktree's entry; its hooks and the rest come from the common dir.
        const wt = facts.dirs.find((d) => d.role === 'worktree')!;
        const cm = facts.dirs.find((d) => d.role === 'common')!;
        wt.worktreeConfig = cm.worktreeConfig;
      } else {
        facts.link = { gitdir };
        addRepo(gitdir, 'repo');
      }
    }
  }
  for (const m of modules) {
    const f = gitDirFacts(m, 'module', workspace, home);
    facts.dirs.push(f);
    if (f.coreWorktree) {
      const link = path.join(f.coreWorktree, '.git');
      const rel = path.relative(workspace, link);
      if (!rel.startsWith('..') && !path.isAbsolute(rel) && lstat(link).kind === 'file') facts.checkoutLinks.push(link);
    }
  }
  for (const d of facts.dirs) delete (d as { coreWorktree?: string }).coreWorktree;
  return facts;
}

/** Gathers the facts, lstat's every target and its parents, and plans the mounts (nothing is created yet). */
export function scanAndPlan(base: Omit<ProtectInput, 'git' | 'rootNames'>): { input: ProtectInput; plan: ProtectPlan } {
  const input: ProtectInput = { ...base, git: scanGit(base.workspace, base.home), rootNames: safeReaddir(base.workspace) };
  const targets = protectTargets(input);
  const seen = new Map<string, FsEntry>();
  const dirEntries = new Map<string, string[]>();
  const look = (p: string) => {
    if (!seen.has(p)) seen.set(p, lstat(p));
    return seen.get(p)!;
  };
  // Git folders mounted read-write of their own (submodules inside .git/modules) are not part of the folder around them.
  const skip = new Set(targets.filter((t) => t.mode === 'rw').map((t) => t.path));
  for (const t of targets) {
    for (let p = t.path; p !== path.dirname(p); p = path.dirname(p)) {
      look(p);
      if (p === base.workspace) break;
    }
    if (t.mode === 'ro' && look(t.path).kind === 'dir') dirEntries.set(t.path, listTree(t.path, look, skip));
  }
  const plan = planProtection(input, targets, seen, dirEntries);
  for (const d of input.git.dirs) if (d.configError) plan.problems.push(`git cannot read ${d.configError}; fix the file (git itself refuses the repository).`);
  if (input.git.link?.error) plan.problems.push(input.git.link.error);
  return { input, plan };
}

function safeReaddir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/** Relative paths of everything under a folder (at most MAX_DIR_ENTRIES + 1), lstat'ed into `look`. */
function listTree(dir: string, look: (p: string) => FsEntry, skip: ReadonlySet<string>): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const name of safeReaddir(d)) {
      if (out.length > MAX_DIR_ENTRIES) return;
      const abs = path.join(d, name);
      if (skip.has(abs)) continue;
      const r = rel ? `${rel}/${name}` : name;
      out.push(r);
      if (look(abs).kind === 'dir') walk(abs, r);
    }
  };
  walk(dir, '');
  return out;
}

/** Creates the plan's placeholders; returns what it created (parents first) so they can be undone. */
export function createPlaceholders(placeholders: Placeholder[]): Placeholder[] {
  const done: Placeholder[] = [];
  try {
    for (const p of placeholders) {
      if (p.kind === 'dir') fs.mkdirSync(p.path);
      else fs.writeFileSync(p.path, p.content ?? '', { flag: 'wx' });
      done.push(p);
      // Owned like the folder it is in (the workspace owner, whom the agent runs as), not by whoever runs the engine.
      const parent = fs.statSync(path.dirname(p.path));
      try { fs.lchownSync(p.path, parent.uid, parent.gid); } catch {}
    }
  } catch (e) {
    removePlaceholders(done);
    throw new Error(`cannot create the empty placeholder ${placeholders[done.length]?.path}: ${(e as Error).message}`);
  }
  return done;
}

/**
 * Removes placeholders that are still what the engine made (an empty folder, an empty file), innermost first.
 * Anything that gained content stays. Returns the paths left in place.
 */
export function removePlaceholders(placeholders: Placeholder[]): string[] {
  const kept: string[] = [];
  for (const p of [...placeholders].reverse()) {
    try {
      const st = fs.lstatSync(p.path);
      if (p.kind === 'dir' && st.isDirectory()) fs.rmdirSync(p.path);
      else if (p.kind === 'file' && st.isFile() && holdsOnly(p.path, st.size, p.content ?? '')) fs.unlinkSync(p.path);
      else kept.push(p.path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') kept.push(p.path);
    }
  }
  return kept;
}

/** Whether a file of this size holds exactly `content` (read only when the size matches). */
function holdsOnly(file: string, size: number, content: string): boolean {
  if (size !== Buffer.byteLength(content)) return false;
  return size === 0 || fs.readFileSync(file, 'utf8') === content;
}

/**
 * A digest of a protected path's content: files by content, folders by names, kinds, link targets and contents.
 * `skip`: folders left out (git folders mounted of their own); `shallow`: only the names directly inside.
 */
export function digestPath(p: string, opts: { skip?: ReadonlySet<string>; shallow?: boolean } = {}): string {
  const h = crypto.createHash('sha256');
  let count = 0;
  const add = (abs: string, rel: string) => {
    if (++count > MAX_DIR_ENTRIES || (rel !== '' && opts.skip?.has(abs))) return;
    if (opts.shallow && rel.includes('/')) return;
    let st: fs.Stats;
    try { st = fs.lstatSync(abs); } catch { h.update(`missing ${rel}\n`); return; }
    if (st.isSymbolicLink()) {
      let to = '';
      try { to = fs.readlinkSync(abs); } catch {}
      h.update(`link ${rel} ${to}\n`);
    } else if (st.isDirectory()) {
      h.update(`dir ${rel}\n`);
      if (opts.shallow && rel !== '') return;
      for (const n of safeReaddir(abs).sort()) add(path.join(abs, n), rel ? `${rel}/${n}` : n);
    } else if (st.isFile()) {
      h.update(`file ${rel} ${st.size}\n`);
      try { h.update(fs.readFileSync(abs)); } catch {}
    } else h.update(`other ${rel}\n`);
  };
  add(p, '');
  return h.digest('hex').slice(0, 32);
}

/** The label payload for a started cage: what is protected, the placeholders made, and the digests at start. */
export function protectionRecord(input: ProtectInput, plan: ProtectPlan, created: Placeholder[]): WorkspaceProtection {
  const rec: WorkspaceProtection = { enabled: true, protected: plan.protected, writable: plan.writable, placeholders: created, baseline: {}, gitDirs: gitDirMounts(plan) };
  for (const p of plan.protected) if (p.why !== WHY_POLICY) rec.baseline[p.path] = digestProtected(input.workspace, rec, p.path);
  return rec;
}

function gitDirMounts(plan: ProtectPlan): string[] {
  return plan.mounts.filter((m) => m.role === 'gitdir').map((m) => m.source);
}

/** The digest of one protected path (ProtectedPath.path) now, as the record's baseline was taken. */
export function digestProtected(workspace: string, rec: WorkspaceProtection, shown: string): string {
  const p = rec.protected.find((x) => x.path === shown);
  const abs = path.isAbsolute(shown) ? shown : path.join(workspace, ...shown.split('/'));
  return digestPath(abs, { skip: new Set(rec.gitDirs ?? []), shallow: p?.why === WHY_WORKTREES });
}

/** Protected paths whose digest differs from the one recorded at start. */
export function changedSinceStart(workspace: string, rec: WorkspaceProtection): string[] {
  return rec.protected.filter((p) => rec.baseline[p.path] !== undefined && digestProtected(workspace, rec, p.path) !== rec.baseline[p.path]).map((p) => p.path);
}

/** Where the workspace appears inside the agent: the same path, or /workspace for paths that are not POSIX. */
export function workspaceInContainerFor(workspace: string): string {
  return path.posix.isAbsolute(workspace) && !workspace.includes(':') ? workspace : '/workspace';
}

export interface PreparedWorkspace {
  /** Docker HostConfig.Mounts entries. */
  mounts: Array<{ Type: 'bind'; Source: string; Target: string; ReadOnly: boolean }>;
  workspaceInContainer: string;
  record: WorkspaceProtection;
  notes: string[];
}

/**
 * Plans and prepares the agent's mounts: refuses (throws, naming each path and the fix) when a protected path
 * cannot be protected, creates the placeholders, records the digests. `protect: false` (tests of the extension's
 * own defences only) keeps just the policy read-only.
 */
export function prepareWorkspace(opts: { workspace: string; policyPath: string; policyText?: string; home?: string; protect: boolean }): PreparedWorkspace {
  const workspaceInContainer = workspaceInContainerFor(opts.workspace);
  let rules: ProtectInput['rules'];
  if (opts.policyText !== undefined && opts.protect) {
    const r = parseWorkspaceRules(opts.policyText);
    if (r.errors.length) {
      const e = r.errors[0];
      throw new Error(`the policy's workspace section cannot be read (${opts.policyPath} line ${e.pos.line}, column ${e.pos.col}: ${e.message}), so it is not clear which workspace paths to protect. Fix the policy and start again.`);
    }
    rules = r.rules;
  }
  const base = { workspace: opts.workspace, workspaceInContainer, policyPath: opts.policyPath, home: opts.home, rules };
  let input: ProtectInput;
  let plan: ProtectPlan;
  if (opts.protect) ({ input, plan } = scanAndPlan(base));
  else {
    // Only the policy, as before workspace protection existed.
    input = { ...base, git: { dotGit: 'missing', dirs: [], checkoutLinks: [] }, rootNames: [] };
    const policyOnly = protectTargets(input).filter((t) => t.policy);
    const fsView = new Map<string, FsEntry>();
    for (const t of policyOnly) fsView.set(t.path, lstat(t.path));
    plan = planProtection(input, policyOnly, fsView);
  }
  if (plan.problems.length) {
    throw new Error(`the workspace cannot be protected as it is:\n- ${plan.problems.join('\n- ')}`);
  }
  const created = createPlaceholders(plan.placeholders);
  const record = protectionRecord(input, plan, created);
  record.enabled = opts.protect;
  record.rules = rulesRecord(rules);
  return {
    mounts: plan.mounts.map((m) => ({ Type: 'bind', Source: m.source, Target: m.target, ReadOnly: m.readOnly })),
    workspaceInContainer,
    record,
    notes: plan.notes,
  };
}

/**
 * Git inside the cage works on a workspace another user owns (the host user, while the agent is root or node):
 * safe.directory given as command-line config through the environment, so .git/config (read-only) stays as is.
 * Inside the cage the repositories are the workspace's; git's ownership check guards against other users'
 * repositories, and there are none in there.
 */
export function gitSafeDirectoryEnv(env: Record<string, string>): Record<string, string> {
  const n = Number(env.GIT_CONFIG_COUNT ?? 0);
  const i = Number.isInteger(n) && n >= 0 ? n : 0;
  return { ...env, GIT_CONFIG_COUNT: String(i + 1), [`GIT_CONFIG_KEY_${i}`]: 'safe.directory', [`GIT_CONFIG_VALUE_${i}`]: '*' };
}
