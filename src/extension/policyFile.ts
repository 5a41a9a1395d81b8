// The policy file the extension follows: where it is (the setting, or the file the running cage was started
// with), its text (the open editor's buffer when there is one), its parse, comment-keeping edits, and the push of
// a saved text to the running cage. Refreshes are serialized and coalesced: the triggers of one save (the save
// itself, the file watcher, the edit command that saved) become one run that parses a changed text once and
// pushes a text the cage does not have yet once; the other triggers find nothing to do.
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { CageEngine } from '../engine';
import type { CageInfo, PolicyPushResult } from '../engine/api';
import { rulesDiffer, rulesRecord } from '../engine/protect';
import { DEFAULT_POLICY_PATH, parsePolicy, parseWorkspaceRules, starterPolicy } from '../policy';
import type { ParseResult, Policy } from '../policy/types';
import type { Changes } from './changes';
import { errorText } from './logic/errors';
import type { AgentPreset } from './logic/presets';
import { pushFailureReport } from './logic/pushReport';
import { readSettings } from './settings';

export interface PolicyFileDeps {
  engine: CageEngine;
  log: vscode.LogOutputChannel;
  changes: Changes;
  folder(): vscode.WorkspaceFolder | undefined;
  /** The running cage of this workspace, and the policy file it keeps using whatever the settings say. */
  cage(): { info: CageInfo | undefined; id: string; policyPath?: string } | undefined;
  /** A refresh that follows a save or a change on disk: the saved policy is the one that counts now. */
  saved(policy: Policy): void;
}

export class PolicyFile implements vscode.Disposable {
  /** The last parse (undefined: no policy file). */
  parse: ParseResult | undefined;
  private parsed: { uri: string; text: string | undefined } | undefined;
  /** The text the running cage's proxy has (confirmed by the proxy, or what it started with); undefined: not known. */
  private cageText: string | undefined;
  private rulesNoted: string | undefined;
  private running: Promise<unknown> = Promise.resolve();
  private next: { push: boolean; done: Promise<ParseResult | undefined> } | undefined;
  /**
   * What the proxy of the running cage runs, as far as its last answer says: the last push's verdict, or a
   * policy-loaded / policy-error event it logged (a push from the CLI too). undefined: nothing known yet.
   */
  proxyVerdict: PolicyPushResult | undefined;
  /** The push an edit() caused (undefined: nothing was pushed: no cage runs, or the proxy had the text). */
  lastEditPush: PolicyPushResult | undefined;
  private readonly targetEmitter = new vscode.EventEmitter<void>();
  /** The policy file the extension follows changed (watchers must follow). */
  readonly onDidChangeTarget = this.targetEmitter.event;

  constructor(private readonly d: PolicyFileDeps) {}

  uri(): vscode.Uri | undefined {
    const folder = this.d.folder();
    if (!folder) return undefined;
    const p = this.d.cage()?.policyPath || readSettings(folder.uri).policyPath || DEFAULT_POLICY_PATH;
    return path.isAbsolute(p) ? vscode.Uri.file(p) : vscode.Uri.joinPath(folder.uri, p);
  }

  targetChanged(): void {
    this.targetEmitter.fire();
    this.d.changes.mark('policy');
  }

  isDocument(doc: vscode.TextDocument): boolean {
    const uri = this.uri();
    return !!uri && doc.uri.toString() === uri.toString();
  }

  /** The policy text: the open editor's buffer when there is one, else the file; undefined when missing. */
  async readText(): Promise<string | undefined> {
    const uri = this.uri();
    if (!uri) return undefined;
    this.d.changes.count('policy.reads');
    const open = vscode.workspace.textDocuments.find((doc) => doc.uri.toString() === uri.toString());
    if (open) return open.getText();
    try {
      return new TextDecoder().decode(await vscode.workspace.fs.readFile(uri));
    } catch {
      return undefined;
    }
  }

  /** What the running cage has now (after a start: the text it was started with; a newly found cage: unknown). */
  cageHas(text: string | undefined): void {
    this.cageText = text;
  }

  /**
   * Re-reads the policy and publishes a changed parse; `push` (default: a save or a change on disk) also prunes
   * the blocks it cures and sends it to the running cage when the cage does not have it. Calls made while a
   * refresh waits to run join it; calls made while one runs get one more run after it.
   */
  refresh(opts: { push?: boolean } = {}): Promise<ParseResult | undefined> {
    const push = opts.push !== false;
    if (this.next) {
      this.next.push ||= push;
      return this.next.done;
    }
    const next = { push, done: undefined as unknown as Promise<ParseResult | undefined> };
    this.next = next;
    next.done = this.running.then(() => {
      if (this.next === next) this.next = undefined;
      return this.refreshNow(next.push);
    });
    this.running = next.done.catch(() => undefined);
    return next.done;
  }

  private async refreshNow(push: boolean): Promise<ParseResult | undefined> {
    const uri = this.uri()?.toString() ?? '';
    const text = await this.readText();
    if (!this.parsed || this.parsed.uri !== uri || this.parsed.text !== text) {
      this.parsed = { uri, text };
      this.parse = text === undefined ? undefined : parsePolicy(text);
      this.d.changes.count('policy.parses');
      this.d.changes.mark('policy');
    }
    const policy = this.parse?.policy;
    if (!push || text === undefined || !policy) return this.parse;
    // Blocks go once the policy that allows them is saved (not while the edit is still unsaved).
    this.d.saved(policy);
    if (this.d.cage() && text !== this.cageText) await this.push(text);
    return this.parse;
  }

  /** Sends the policy text to the running cage's proxy and reports the proxy's answer. */
  private async push(text: string): Promise<PolicyPushResult | undefined> {
    const r = await this.pushNow(text);
    if (r) {
      this.lastEditPush = r;
      this.proxySays(r);
    }
    return r;
  }

  /** The proxy's latest verdict (a push's answer or its own policy event): the status bar shows what it runs. */
  proxySays(r: PolicyPushResult): void {
    this.proxyVerdict = r;
    this.d.changes.mark('cages');
  }

  private async pushNow(text: string): Promise<PolicyPushResult | undefined> {
    const cage = this.d.cage();
    if (!cage) return undefined;
    this.d.changes.count('policy.pushes');
    try {
      const r = await this.d.engine.pushPolicy(cage.id, text);
      if (r.ok) {
        this.cageText = text;
        this.d.log.info(`policy reloaded by the proxy: ${r.message}`);
        this.noteWorkspaceRules(cage.info, text);
      } else {
        // Refused, the proxy has its previous policy or none; unanswered, nobody knows: a save of the same text pushes again.
        this.cageText = r.inForce === 'unknown' ? undefined : this.cageText;
        const say = pushFailureReport(r);
        this.d.log.warn(say.log);
        void vscode.window.showWarningMessage(say.notice);
      }
      return r;
    } catch (e) {
      const msg = errorText(e);
      this.d.log.error(`policy push failed: ${msg}`);
      void vscode.window.showErrorMessage(`Caged Agent: could not reload the proxy — ${msg}`);
      return { ok: false, inForce: 'unknown', message: msg };
    }
  }

  /** The network rules apply at once; the workspace section only at the next start: say so, once per text. */
  private noteWorkspaceRules(cage: CageInfo | undefined, text: string): void {
    const rec = cage?.protection;
    const r = parseWorkspaceRules(text);
    if (!rec?.enabled || r.errors.length || !rulesDiffer(rec, r.rules)) return;
    const key = JSON.stringify(rulesRecord(r.rules));
    if (this.rulesNoted === key) return;
    this.rulesNoted = key;
    void vscode.window.showInformationMessage("Caged Agent: the policy's workspace section (protect / writable) takes effect at the next start of the cage; the network rules apply now.");
  }

  /** Applies a text transform to the policy file as an undoable editor edit, saves, reloads the proxy. */
  async edit(transform: (text: string) => string, what: string): Promise<boolean> {
    const uri = this.uri();
    if (!uri) {
      void vscode.window.showErrorMessage('Caged Agent: open a folder first — the policy lives in the workspace.');
      return false;
    }
    const existing = await this.readText();
    let next: string;
    try {
      next = transform(existing ?? '');
    } catch (e) {
      void vscode.window.showErrorMessage(`Caged Agent: cannot ${what}: ${errorText(e)}`);
      return false;
    }
    if (existing === undefined) {
      await vscode.workspace.fs.createDirectory(vscode.Uri.joinPath(uri, '..'));
      await vscode.workspace.fs.writeFile(uri, new TextEncoder().encode(next));
    } else if (next !== existing) {
      const doc = await vscode.workspace.openTextDocument(uri);
      const edit = new vscode.WorkspaceEdit();
      edit.replace(uri, new vscode.Range(doc.positionAt(0), doc.positionAt(doc.getText().length)), next);
      if (!(await vscode.workspace.applyEdit(edit))) {
        void vscode.window.showErrorMessage(`Caged Agent: the editor refused the edit (${what}).`);
        return false;
      }
      await doc.save();
    }
    this.d.log.info(`policy edited: ${what}`);
    this.lastEditPush = undefined;
    await this.refresh();
    return true;
  }

  /** Creates the policy file from the starter template (with a preset's hosts) when it does not exist. */
  async ensure(preset?: AgentPreset): Promise<vscode.Uri | undefined> {
    const uri = this.uri();
    if (!uri) return undefined;
    if ((await this.readText()) !== undefined) return uri;
    const text = starterPolicy({ title: preset ? `${preset.label} in a Caged Agent` : undefined, hosts: preset?.hosts });
    await vscode.workspace.fs.createDirectory(vscode.Uri.joinPath(uri, '..'));
    await vscode.workspace.fs.writeFile(uri, new TextEncoder().encode(text));
    this.d.log.info(`created ${uri.fsPath}`);
    // Never silently: say where the starter policy is, with a way to open it.
    void vscode.window.showInformationMessage(`Caged Agent: created a starter policy (default deny) at ${vscode.workspace.asRelativePath(uri)}.`, 'Open Policy').then((p) => {
      if (p) void vscode.commands.executeCommand('cagedAgent.openPolicy');
    });
    await this.refresh({ push: false });
    return uri;
  }

  dispose(): void {
    this.targetEmitter.dispose();
  }
}
