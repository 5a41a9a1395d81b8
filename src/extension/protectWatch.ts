// Detection behind the read-only mounts: while a cage runs, the protected paths are watched on the host. A change
// there is checked against the agent's own mount table (engine.checkProtection):
// - a protection that is gone (a program here replaced the file, which makes Docker drop the mount, or an engine
//   that ignores nested mounts) pauses the agent and asks: restart the cage (the mounts are made anew) or resume;
// - content that changed while the mounts held, and not by this editor, is reported once per path;
// - a git repository that appears somewhere in the workspace is reported once: git here would obey its config.
// A periodic check catches what the file watcher misses.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { CageInfo } from '../engine/api';
import { digestProtected } from '../engine/protect-scan';
import type { Controller } from './controller';
import { errorText } from './logic/errors';

export interface BoundaryBreak {
  cageId: string;
  /** Protected paths the agent can now change (workspace-relative or absolute). */
  paths: string[];
}

export type BoundaryAnswer = 'restart' | 'resume' | undefined;

export interface ProtectionAlert {
  cageId: string;
  path: string;
  kind: 'broken' | 'changed' | 'repository';
  at: string;
}

const RESTART = 'Restart the cage';
const RESUME = 'Resume without the protection';

export async function askBoundaryBroken(b: BoundaryBreak): Promise<BoundaryAnswer> {
  const pick = await vscode.window.showWarningMessage(
    `Caged Agent: the agent could now change ${b.paths.join(', ')} — the agent is paused`,
    {
      modal: true,
      detail:
        'Its read-only mount is gone: a program on this machine replaced the file or folder while the cage ran (git does so for .git/config on "git config" or "git push -u"), and Docker drops the mount of what was replaced. ' +
        'Restarting the cage mounts it read-only again (the agent\u2019s processes end). Resuming leaves it writable for the agent until the next start.',
    },
    RESTART,
    RESUME,
  );
  return pick === RESTART ? 'restart' : pick === RESUME ? 'resume' : undefined;
}

/**
 * `.git` entries (folders or files) below the workspace root, as deep as VS Code's git looks for repositories by
 * itself (and one more), node_modules left out: workspace-relative paths.
 */
export function findRepositories(workspace: string, depth = 2): string[] {
  const out: string[] = [];
  const walk = (dir: string, rel: string, d: number) => {
    let ents: fs.Dirent[] = [];
    try { ents = fs.readdirSync(dir, { withFileTypes: true }); } catch { return; }
    for (const e of ents) {
      if (e.name === 'node_modules' || (rel === '' && e.name === '.git')) continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.name === '.git' && rel !== '') out.push(r);
      else if (e.isDirectory() && d < depth && e.name !== '.git') walk(path.join(dir, e.name), r, d + 1);
    }
  };
  walk(workspace, '', 0);
  return out;
}

export class ProtectionWatch implements vscode.Disposable {
  readonly alerts: ProtectionAlert[] = [];
  private watchers: vscode.Disposable[] = [];
  private readonly disposables: vscode.Disposable[] = [];
  private watching: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private poll: NodeJS.Timeout | undefined;
  private checking = false;
  private again = false;
  /** Digests of protected paths as this editor last saved into them: changes the editor made are not reported. */
  private readonly accepted = new Map<string, string>();
  /** Repositories inside the workspace (other than its own) when the watch began: not reported. */
  private knownRepos = new Set<string>();

  constructor(private readonly ctl: Controller, private readonly pollMs = 10_000) {
    this.disposables.push(
      ctl.changes.on(['cages'], () => this.follow()),
      vscode.workspace.onDidSaveTextDocument((d) => this.saved(d.uri)),
    );
  }

  /** The editor saved a file (the user's edit, or a settings write): its protected path as it is now is accepted. */
  private saved(uri: vscode.Uri): void {
    const folder = this.ctl.workspaceFolder();
    const cage = this.ctl.activeCage();
    if (!folder || !cage?.protection || uri.scheme !== 'file') return;
    const rel = path.relative(folder.uri.fsPath, uri.fsPath).split(path.sep).join('/');
    for (const p of cage.protection.protected) {
      if (rel === p.path || rel.startsWith(p.path + '/')) this.accepted.set(`${cage.id}:${p.path}`, digestProtected(cage.workspace, cage.protection, p.path));
    }
  }

  private alerted(cageId: string, p: string, kind: ProtectionAlert['kind']): boolean {
    return this.alerts.some((a) => a.cageId === cageId && a.path === p && a.kind === kind);
  }

  private alert(cageId: string, p: string, kind: ProtectionAlert['kind']): void {
    this.alerts.push({ cageId, path: p, kind, at: new Date().toISOString() });
    this.ctl.log.warn(`workspace boundary (${kind}): ${p}`);
  }

  /** Watches the active cage's protected paths (or stops watching when none runs). */
  private follow(): void {
    const cage = this.ctl.activeCage();
    const id = cage?.protection?.enabled && cage.state !== 'stopped' ? cage.id : undefined;
    if (id === this.watching) return;
    this.unwatch();
    if (!id || !cage) return;
    this.watching = id;
    this.knownRepos = new Set(findRepositories(cage.workspace));
    this.watch(cage);
  }

  private watch(cage: CageInfo): void {
    const folder = this.ctl.workspaceFolder();
    if (!folder) return;
    const on = (w: vscode.FileSystemWatcher, fn: (u: vscode.Uri) => void) => {
      w.onDidChange(fn);
      w.onDidCreate(fn);
      w.onDidDelete(fn);
      this.watchers.push(w);
    };
    for (const p of cage.protection!.protected) {
      if (path.isAbsolute(p.path)) continue;
      on(vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(folder, p.path)), () => this.schedule());
      if (p.kind === 'dir') on(vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(folder, `${p.path}/**`)), () => this.schedule());
    }
    // A new repository anywhere in the workspace: git on this machine (VS Code's git opens it by itself) obeys it.
    const repos = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(folder, '**/.git'), false, true, true);
    repos.onDidCreate((u) => this.newRepository(cage.id, path.relative(folder.uri.fsPath, u.fsPath).split(path.sep).join('/')));
    this.watchers.push(repos);
    this.poll = setInterval(() => this.schedule(), this.pollMs);
  }

  private unwatch(): void {
    for (const w of this.watchers) w.dispose();
    this.watchers = [];
    this.watching = undefined;
    if (this.poll) clearInterval(this.poll);
    if (this.timer) clearTimeout(this.timer);
    this.poll = this.timer = undefined;
  }

  private newRepository(cageId: string, rel: string): void {
    if (rel === '.git' || rel.startsWith('.git/') || this.alerted(cageId, rel, 'repository')) return;
    this.alert(cageId, rel, 'repository');
    void vscode.window.showWarningMessage(
      `Caged Agent: a git repository appeared at ${rel} while the agent was running. Git on this machine obeys its config and hooks (VS Code's git opens it by itself): look at ${rel}/config or delete it before running git there.`,
    );
  }

  /** Runs a check soon (events come in bursts). */
  schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.check();
    }, 300);
  }

  /** Checks the active cage's protection now; one check at a time. */
  async check(): Promise<void> {
    const id = this.watching;
    if (!id) return;
    if (this.checking) {
      this.again = true;
      return;
    }
    this.checking = true;
    try {
      const st = await this.ctl.engine.checkProtection(id);
      const broken = [...(st.mounts?.missing ?? []), ...(st.mounts?.writable ?? [])].map((m) => st.mountPaths[m] ?? m).filter((p) => !this.alerted(id, p, 'broken'));
      if (broken.length) {
        for (const p of broken) this.alert(id, p, 'broken');
        await this.broken({ cageId: id, paths: broken });
        return;
      }
      const ws = this.ctl.activeCage()?.workspace;
      // The file watcher reports a new folder, not what the agent put inside it: look for new repositories too.
      if (ws) for (const r of findRepositories(ws)) if (!this.knownRepos.has(r)) this.newRepository(id, r);
      for (const p of st.changed) {
        if (this.alerted(id, p, 'changed') || this.alerted(id, p, 'broken')) continue;
        if (ws && this.accepted.get(`${id}:${p}`) === digestProtected(ws, st.protection, p)) continue;
        this.alert(id, p, 'changed');
        void vscode.window.showWarningMessage(`Caged Agent: ${p} changed while the agent was running; the workspace boundary may be broken (its read-only mount is still in place, so check what on this machine changed it).`, 'Verify Cage').then((pick) => {
          if (pick) void vscode.commands.executeCommand('cagedAgent.verify', id);
        });
      }
    } catch (e) {
      // Paused, stopping or gone: the next change of state re-attaches.
      this.ctl.log.trace(`protection check skipped: ${errorText(e)}`);
    } finally {
      this.checking = false;
      if (this.again) {
        this.again = false;
        this.schedule();
      }
    }
  }

  private async broken(b: BoundaryBreak): Promise<void> {
    try {
      await this.ctl.engine.pauseAgent(b.cageId);
      this.ctl.log.warn(`agent of cage ${b.cageId} paused: it could change ${b.paths.join(', ')}`);
    } catch (e) {
      this.ctl.log.error(`could not pause the agent: ${errorText(e)}`);
    }
    await this.ctl.refreshCages();
    const answer = await this.ctl.prompts.boundaryBroken(b);
    if (answer === 'restart') {
      try {
        await this.ctl.restart();
      } catch (e) {
        void vscode.window.showErrorMessage(`Caged Agent: the restart failed: ${errorText(e)}`);
      }
    } else {
      // Resume (or the dialog was dismissed): the user decides, the agent goes on.
      await this.ctl.engine.resumeAgent(b.cageId).catch(() => {});
      if (answer === undefined) void vscode.window.showWarningMessage(`Caged Agent: the agent can change ${b.paths.join(', ')} until the cage restarts.`);
      await this.ctl.refreshCages();
    }
  }

  dispose(): void {
    this.unwatch();
    for (const d of this.disposables) d.dispose();
  }
}
