// The extension's state: which cage belongs to this workspace, its events, the blocks seen, the policy file.
// VS Code wiring only; Docker work goes through the engine, policy work through src/policy.
import * as vscode from 'vscode';
import * as path from 'node:path';
import { CageEngine } from '../engine';
import type { CageInfo, EventSubscription, PolicyPushResult, StartStep, UpOptions } from '../engine/api';
import type { DecisionEvent, ProxyEvent } from '../policy/events';
import { addAllow, decide, DEFAULT_POLICY_PATH, parsePolicy, parseWorkspaceRules, starterPolicy, updateEntry } from '../policy';
import { policyHash } from '../shared/policyHash';
import { rulesDiffer, rulesRecord } from '../engine/protect';
import type { AllowSpec, ParseResult } from '../policy/types';
import { BlockStore, type BlockGroup } from './logic/blocks';
import { fixChoices, type FixChoice } from './logic/fixes';
import { presetById, type AgentPreset } from './logic/presets';
import type { SettingChange } from './logic/settingsGuard';
import type { BoundaryBreak, BoundaryAnswer } from './protectWatch';
import { askBoundaryBroken } from './protectWatch';
import { askSettingChange, type SettingChangeAnswer } from './settingsGuard';
import { readSettings } from './settings';

export interface CageStats {
  allowed: number;
  blocked: number;
}

export interface StartArgs {
  preset?: string;
  image?: string;
  command?: string;
  /** Don't open the agent terminal (tests). */
  noTerminal?: boolean;
  /** Don't ask anything; use settings/defaults. */
  quiet?: boolean;
}

/** The decisions the extension asks the user for; tests replace them (no human in an extension-host test). */
export interface Prompts {
  settingChange(changes: SettingChange[]): Promise<SettingChangeAnswer>;
  boundaryBroken(b: BoundaryBreak): Promise<BoundaryAnswer>;
}

export class Controller implements vscode.Disposable {
  readonly blocks = new BlockStore();
  readonly stats = new Map<string, CageStats>();
  cages: CageInfo[] = [];
  /** The cage of this workspace, when one runs. */
  activeCageId: string | undefined;
  dockerError: string | undefined;
  policyParse: ParseResult | undefined;
  starting = false;
  prompts: Prompts = { settingChange: askSettingChange, boundaryBroken: askBoundaryBroken };
  /** The arguments of the last start (a restart uses them again). */
  lastStart: StartArgs | undefined;
  /** While a cage runs: the policy file and terminal command it uses, whatever the settings say meanwhile. */
  private pinned: { policyPath?: string; agentCommand?: string } | undefined;

  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChange = this.changed.event;
  private readonly blockEmitter = new vscode.EventEmitter<{ event: DecisionEvent; isNew: boolean }>();
  readonly onDidBlock = this.blockEmitter.event;
  private readonly policyEmitter = new vscode.EventEmitter<void>();
  readonly onDidChangePolicy = this.policyEmitter.event;
  private readonly attachEmitter = new vscode.EventEmitter<{ cageId: string; started: boolean }>();
  /** A cage of this workspace became active: started here, or found again (after a reload, or started elsewhere). */
  readonly onDidAttach = this.attachEmitter.event;
  private readonly policyTargetEmitter = new vscode.EventEmitter<void>();
  /** The policy file the extension follows changed (watchers must follow). */
  readonly onDidChangePolicyTarget = this.policyTargetEmitter.event;

  private subscription: EventSubscription | undefined;
  private recheck: NodeJS.Timeout | undefined;
  private subscribedCage: string | undefined;
  private lastPushedHash: string | undefined;
  private inFlight: { hash: string; done: Promise<unknown> } | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    readonly context: vscode.ExtensionContext,
    readonly engine: CageEngine,
    readonly log: vscode.LogOutputChannel,
  ) {
    this.disposables.push(this.changed, this.blockEmitter, this.policyEmitter, this.attachEmitter, this.policyTargetEmitter);
  }

  // ---- workspace & policy file ------------------------------------------------------------------

  workspaceFolder(): vscode.WorkspaceFolder | undefined {
    return vscode.workspace.workspaceFolders?.[0];
  }

  policyUri(): vscode.Uri | undefined {
    const folder = this.workspaceFolder();
    if (!folder) return undefined;
    const pinned = this.activeCageId ? this.pinned?.policyPath ?? this.activeCage()?.policyPath : undefined;
    const p = pinned || readSettings(folder.uri).policyPath || DEFAULT_POLICY_PATH;
    return path.isAbsolute(p) ? vscode.Uri.file(p) : vscode.Uri.joinPath(folder.uri, p);
  }

  /** Settings the running cage keeps (see SettingsGuard); a policy path here was applied by the user. */
  pinSettings(values: { policyPath?: string; agentCommand?: string }): void {
    const before = this.policyUri()?.toString();
    this.pinned = { ...this.pinned, ...values };
    if (this.policyUri()?.toString() !== before) this.policyTargetChanged();
  }

  policyTargetChanged(): void {
    this.policyTargetEmitter.fire();
  }

  isPolicyDocument(doc: vscode.TextDocument): boolean {
    const uri = this.policyUri();
    return !!uri && doc.uri.toString() === uri.toString();
  }

  /** The policy text: the open editor's buffer when there is one, else the file; undefined when missing. */
  async readPolicyText(): Promise<string | undefined> {
    const uri = this.policyUri();
    if (!uri) return undefined;
    const open = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri.toString());
    if (open) return open.getText();
    try {
      return new TextDecoder().decode(await vscode.workspace.fs.readFile(uri));
    } catch {
      return undefined;
    }
  }

  /** Re-parses the policy file, publishes the result, and pushes it to the running cage when it changed. */
  async refreshPolicy(opts: { push?: boolean } = {}): Promise<ParseResult | undefined> {
    const text = await this.readPolicyText();
    this.policyParse = text === undefined ? undefined : parsePolicy(text);
    // Blocks disappear once the policy that allows them is saved (not while the edit is still unsaved).
    if (opts.push !== false) this.pruneAllowedBlocks();
    this.policyEmitter.fire();
    this.changed.fire();
    if (opts.push !== false && text !== undefined && this.policyParse?.policy && this.activeCageId) {
      const hash = policyHash(text);
      // A save and the edit that caused it both land here: share one push of the same text.
      if (this.inFlight?.hash === hash) await this.inFlight.done;
      else if (hash !== this.lastPushedHash) {
        const done = this.pushPolicy(text);
        this.inFlight = { hash, done };
        try {
          await done;
        } finally {
          if (this.inFlight?.done === done) this.inFlight = undefined;
        }
      }
    }
    return this.policyParse;
  }

  /** Sends the policy text to the proxy and reports the proxy's answer. */
  async pushPolicy(text: string): Promise<PolicyPushResult | undefined> {
    const id = this.activeCageId;
    if (!id) return undefined;
    try {
      const r = await this.engine.pushPolicy(id, text);
      if (r.ok) {
        this.lastPushedHash = policyHash(text);
        this.log.info(`policy reloaded by the proxy: ${r.message}`);
        this.noteWorkspaceRules(text);
      } else {
        this.log.warn(`proxy kept its previous policy: ${r.message}`);
        void vscode.window.showWarningMessage(`Caged Agent: the proxy rejected the policy — ${r.message}`);
      }
      return r;
    } catch (e) {
      const msg = errorText(e);
      this.log.error(`policy push failed: ${msg}`);
      void vscode.window.showErrorMessage(`Caged Agent: could not reload the proxy — ${msg}`);
      return { ok: false, message: msg };
    }
  }

  private rulesNoted: string | undefined;

  /** The network rules apply at once; the workspace section only at the next start: say so, once per text. */
  private noteWorkspaceRules(text: string): void {
    const rec = this.activeCage()?.protection;
    const r = parseWorkspaceRules(text);
    if (!rec?.enabled || r.errors.length || !rulesDiffer(rec, r.rules)) return;
    const key = JSON.stringify(rulesRecord(r.rules));
    if (this.rulesNoted === key) return;
    this.rulesNoted = key;
    void vscode.window.showInformationMessage("Caged Agent: the policy's workspace section (protect / writable) takes effect at the next start of the cage; the network rules apply now.");
  }

  /**
   * Adds an allow entry (comment-preserving edit through the policy engine), saves the file, reloads the proxy.
   * Creates a starter policy when the file does not exist.
   */
  async allow(spec: AllowSpec): Promise<boolean> {
    return this.editPolicy((text) => addAllow(text, spec).text, `allow ${spec.host}`);
  }

  /** Applies a quick-fix choice: add an allow entry, or update the entry a private-address block names. */
  async applyFix(fix: FixChoice): Promise<boolean> {
    if (fix.action === 'add') return this.allow(fix.spec);
    return this.editPolicy((text) => updateEntry(text, fix.list, fix.index, fix.spec).text, `${fix.list}[${fix.index}] ${fix.spec.host}: private: true`);
  }

  /** The fix choices for a block group under the current policy. */
  fixesFor(g: BlockGroup): FixChoice[] {
    const e = g.last;
    return fixChoices({ host: g.host, port: g.port, method: e.method, path: e.path, reason: g.reason, rule: e.rule }, this.policyParse?.policy);
  }

  /** Applies a text transform to the policy file as an undoable editor edit, saves, reloads the proxy. */
  async editPolicy(transform: (text: string) => string, what: string): Promise<boolean> {
    const uri = this.policyUri();
    if (!uri) {
      void vscode.window.showErrorMessage('Caged Agent: open a folder first — the policy lives in the workspace.');
      return false;
    }
    const existing = await this.readPolicyText();
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
    this.log.info(`policy edited: ${what}`);
    await this.refreshPolicy();
    return true;
  }

  /** Creates the policy file from the starter template (with a preset's hosts) when it does not exist. */
  async ensurePolicyFile(preset?: AgentPreset): Promise<vscode.Uri | undefined> {
    const uri = this.policyUri();
    if (!uri) return undefined;
    if ((await this.readPolicyText()) !== undefined) return uri;
    const text = starterPolicy({ title: preset ? `${preset.label} in a Caged Agent` : undefined, hosts: preset?.hosts });
    await vscode.workspace.fs.createDirectory(vscode.Uri.joinPath(uri, '..'));
    await vscode.workspace.fs.writeFile(uri, new TextEncoder().encode(text));
    this.log.info(`created ${uri.fsPath}`);
    await this.refreshPolicy({ push: false });
    return uri;
  }

  // ---- cages ------------------------------------------------------------------------------------

  /** Finds running cages (after a window reload too) and reattaches to this workspace's. */
  async refreshCages(): Promise<void> {
    try {
      this.cages = await this.engine.list();
      this.dockerError = undefined;
    } catch (e) {
      this.cages = [];
      this.dockerError = errorText(e);
    }
    // Docker's first health check runs a few seconds after start: look again soon while a cage is starting.
    if (this.cages.some((c) => c.state === 'starting') && !this.recheck) {
      this.recheck = setTimeout(() => {
        this.recheck = undefined;
        void this.refreshCages();
      }, 1000);
    }
    const ws = this.workspaceFolder()?.uri.fsPath;
    const mine = this.cages.find((c) => ws && samePath(c.workspace, ws) && c.state !== 'stopped');
    if (mine && !this.starting) {
      const attached = this.activeCageId !== mine.id;
      this.activeCageId = mine.id;
      this.subscribe(mine.id);
      if (attached) this.attachEmitter.fire({ cageId: mine.id, started: false });
    } else if (!mine && !this.starting) {
      if (this.activeCageId) {
        this.pinned = undefined;
        this.policyTargetChanged();
      }
      this.activeCageId = undefined;
      this.unsubscribe();
    }
    this.changed.fire();
  }

  activeCage(): CageInfo | undefined {
    return this.cages.find((c) => c.id === this.activeCageId);
  }

  async start(args: StartArgs, progress?: (step: StartStep, message: string) => void, signal?: AbortSignal): Promise<CageInfo> {
    const folder = this.workspaceFolder();
    if (!folder) throw new Error('Open a folder first: the cage mounts the workspace folder into the agent.');
    const settings = readSettings(folder.uri);
    const preset = presetById(args.preset ?? settings.agentPreset);
    await this.ensurePolicyFile(preset);
    const parse = await this.refreshPolicy({ push: false });
    if (parse && !parse.policy) {
      const first = parse.errors[0];
      throw new Error(`The policy file has errors (line ${first?.pos.line}: ${first?.message}). Fix it and start again.`);
    }
    const secrets = await this.collectSecrets(parse);
    const upstreamCaPem = settings.upstreamCaFile ? await readTextFile(resolveIn(folder, settings.upstreamCaFile)) : undefined;
    const opts: UpOptions = {
      workspace: folder.uri.fsPath,
      policyPath: this.policyUri()?.fsPath,
      agentImage: args.image || settings.agentImage || preset?.image || undefined,
      proxyBaseImage: settings.proxyBaseImage || undefined,
      upstreamProxy: settings.upstreamProxy || undefined,
      upstreamCaPem,
      secrets,
      onProgress: (step, message) => {
        this.log.info(`[start] ${step}: ${message}`);
        progress?.(step, message);
      },
      signal,
    };
    this.starting = true;
    this.lastStart = args;
    this.changed.fire();
    try {
      const cage = await this.engine.up(opts);
      this.activeCageId = cage.id;
      this.pinned = undefined;
      this.cages = [...this.cages.filter((c) => c.id !== cage.id), cage];
      this.attachEmitter.fire({ cageId: cage.id, started: true });
      this.lastPushedHash = undefined;
      this.subscribe(cage.id);
      const text = await this.readPolicyText();
      if (text !== undefined) this.lastPushedHash = policyHash(text);
      return cage;
    } finally {
      this.starting = false;
      await this.refreshCages();
    }
  }

  async stop(cageId?: string): Promise<void> {
    const id = cageId ?? this.activeCageId;
    if (!id) return;
    if (id === this.activeCageId) this.unsubscribe();
    await this.engine.down(id);
    if (id === this.activeCageId) {
      this.activeCageId = undefined;
      this.pinned = undefined;
      this.policyTargetChanged();
    }
    this.stats.delete(id);
    await this.refreshCages();
  }

  /** Stops and starts the workspace's cage again with the last start's arguments (the mounts are made anew). */
  async restart(): Promise<CageInfo> {
    const args = { ...(this.lastStart ?? {}), quiet: true, noTerminal: true };
    await this.stop();
    return this.start(args);
  }

  agentCommand(args: StartArgs = {}): string {
    const settings = readSettings(this.workspaceFolder()?.uri);
    if (args.command !== undefined) return args.command;
    const command = this.activeCageId && this.pinned?.agentCommand !== undefined ? this.pinned.agentCommand : settings.agentCommand;
    if (command) return command;
    return presetById(args.preset ?? settings.agentPreset)?.command ?? '';
  }

  // ---- events -----------------------------------------------------------------------------------

  private subscribe(cageId: string): void {
    if (this.subscribedCage === cageId && this.subscription) return;
    this.unsubscribe();
    this.subscribedCage = cageId;
    this.engine.events(cageId, (e) => this.onProxyEvent(cageId, e)).then(
      (sub) => {
        if (this.subscribedCage === cageId && !this.subscription) this.subscription = sub;
        else sub.stop();
      },
      (e) => {
        if (this.subscribedCage === cageId) this.subscribedCage = undefined;
        this.log.error(`cannot follow the proxy's events: ${errorText(e)}`);
      },
    );
  }

  private unsubscribe(): void {
    this.subscription?.stop();
    this.subscription = undefined;
    this.subscribedCage = undefined;
  }

  /** Entry point for every proxy event (also used by tests through the cagedAgent._injectEvent command). */
  onProxyEvent(cageId: string, e: ProxyEvent): void {
    const s = this.stats.get(cageId) ?? { allowed: 0, blocked: 0 };
    this.stats.set(cageId, s);
    switch (e.type) {
      case 'allow':
        s.allowed++;
        this.log.trace(`allow ${e.method} ${e.host}:${e.port}${e.path} (${e.rule ?? '-'})`);
        break;
      case 'block': {
        s.blocked++;
        this.log.warn(`block ${e.method} ${e.host}:${e.port}${e.path} — ${e.reason}${e.detail ? ` (${e.detail})` : ''}`);
        const { isNew } = this.blocks.add(e);
        this.blockEmitter.fire({ event: e, isNew });
        break;
      }
      case 'policy-loaded':
        this.log.info(`proxy loaded policy ${e.hash.slice(0, 12)} (${e.allow} allow, ${e.deny} deny)`);
        break;
      case 'policy-error':
        this.log.error(`proxy policy error: ${e.message}${e.line ? ` (line ${e.line})` : ''}${e.keptPrevious ? ' — previous policy kept' : ' — denying everything'}`);
        break;
      default:
        this.log.info(`proxy ${e.type}${e.message ? `: ${e.message}` : ''}`);
    }
    this.changed.fire();
  }

  /** Drops block groups that the current policy now allows (after a quick fix, the diagnostic disappears). */
  private pruneAllowedBlocks(): void {
    const policy = this.policyParse?.policy;
    if (!policy) return;
    const dropped = this.blocks.prune((g) => {
      const e = g.last;
      const d = decide({ host: e.host, port: e.port, method: e.method === 'CONNECT' ? undefined : e.method, path: e.method === 'CONNECT' ? undefined : e.path || '/' }, policy);
      if (d.action !== 'allow') return true;
      // A private-address block is cured once the matching rule opts in; other reasons decided outside the
      // policy (DLP, missing secret, SNI) stay until the user dismisses them.
      if (g.reason === 'private-address') return !d.rule?.private;
      return !['no-matching-rule', 'denied-by-rule', 'method-not-allowed', 'path-not-allowed', 'ip-literal', 'policy-invalid'].includes(g.reason);
    });
    if (dropped.length) this.log.info(`now allowed: ${dropped.join(', ')}`);
  }

  // ---- secrets ----------------------------------------------------------------------------------

  /** Secrets the policy's auth rules name, read from SecretStorage (asked for when missing). */
  private async collectSecrets(parse: ParseResult | undefined): Promise<Record<string, string>> {
    const names = new Set<string>();
    for (const r of parse?.policy?.allow ?? []) if (r.auth) names.add(r.auth.secret);
    const out: Record<string, string> = {};
    for (const name of names) {
      let value = await this.context.secrets.get(secretKey(name));
      if (!value) {
        value = await vscode.window.showInputBox({
          title: `Caged Agent: secret "${name}"`,
          prompt: `The policy injects the secret "${name}". Enter its value (kept in VS Code's secret storage, given only to the proxy).`,
          password: true,
          ignoreFocusOut: true,
        });
        if (value) await this.context.secrets.store(secretKey(name), value);
      }
      if (value) out[name] = value;
      else this.log.warn(`secret "${name}" not set: requests needing it will be blocked (secret-missing)`);
    }
    return out;
  }

  dispose(): void {
    if (this.recheck) clearTimeout(this.recheck);
    this.unsubscribe();
    for (const d of this.disposables) d.dispose();
  }
}

export function secretKey(name: string): string {
  return `cagedAgent.secret.${name}`;
}

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function samePath(a: string, b: string): boolean {
  return path.resolve(a) === path.resolve(b);
}

function resolveIn(folder: vscode.WorkspaceFolder, p: string): vscode.Uri {
  return path.isAbsolute(p) ? vscode.Uri.file(p) : vscode.Uri.joinPath(folder.uri, p);
}

async function readTextFile(uri: vscode.Uri): Promise<string> {
  try {
    return new TextDecoder().decode(await vscode.workspace.fs.readFile(uri));
  } catch (e) {
    throw new Error(`Cannot read the upstream CA file ${uri.fsPath}: ${errorText(e)}`);
  }
}
