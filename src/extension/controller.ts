// The extension's parts, wired: the running cage (cageSession.ts), the policy file (policyFile.ts), the secrets
// (secrets.ts) and the coalesced change notifications the views and diagnostics follow (changes.ts). What needs
// more than one part lives here: a start (policy, secrets and settings in, the cage out), a restart, the fixes
// for a block under the current policy. VS Code wiring only; Docker work goes through the engine, policy work
// through src/policy, domain logic through extension/logic.
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { CageEngine } from '../engine';
import type { CageInfo, StartStep, UpOptions } from '../engine/api';
import { addAllow, updateEntry } from '../policy';
import type { AllowSpec, ParseResult } from '../policy/types';
import { CageSession, type PinnedSettings, type StartArgs } from './cageSession';
import { Changes } from './changes';
import type { BlockGroup } from './logic/blocks';
import { heldKey, narrowestSpec, type HeldAction, type HeldGroup } from './logic/pending';
import { errorText } from './logic/errors';
import { fixChoices, stillBlocked, type BlockedLike, type FixChoice, type FixPayload } from './logic/fixes';
import { presetById } from './logic/presets';
import type { SettingChange } from './logic/settingsGuard';
import { PolicyFile } from './policyFile';
import type { BoundaryAnswer, BoundaryBreak } from './protectWatch';
import { askBoundaryBroken } from './protectWatch';
import { AgentSecrets } from './secrets';
import { askSettingChange, type SettingChangeAnswer } from './settingsGuard';
import { readSettings } from './settings';

export type { CageStats, StartArgs } from './cageSession';

/** The decisions the extension asks the user for; tests replace them (no human in an extension-host test). */
export interface Prompts {
  settingChange(changes: SettingChange[]): Promise<SettingChangeAnswer>;
  boundaryBroken(b: BoundaryBreak): Promise<BoundaryAnswer>;
}

export class Controller implements vscode.Disposable {
  readonly changes = new Changes();
  readonly session: CageSession;
  readonly policy: PolicyFile;
  readonly secrets: AgentSecrets;
  prompts: Prompts = { settingChange: askSettingChange, boundaryBroken: askBoundaryBroken };
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    readonly context: vscode.ExtensionContext,
    readonly engine: CageEngine,
    readonly log: vscode.LogOutputChannel,
  ) {
    this.session = new CageSession(engine, log, this.changes, () => this.workspaceFolder(), () => this.policy?.parse?.policy);
    this.policy = new PolicyFile({
      engine,
      log,
      changes: this.changes,
      folder: () => this.workspaceFolder(),
      cage: () => {
        const s = this.session;
        if (!s.activeCageId) return undefined;
        const info = s.activeCage();
        return { id: s.activeCageId, info, policyPath: s.pinned?.policyPath ?? info?.policyPath };
      },
      saved: (policy) => this.session.pruneBlocks(policy),
    });
    this.secrets = new AgentSecrets(context.secrets, log);
    this.disposables.push(
      this.changes,
      this.session,
      this.policy,
      this.session.onDidDetach(() => {
        this.policy.proxyVerdict = undefined;
        this.policy.targetChanged();
      }),
      this.session.onDidProxyPolicy((v) => this.policy.proxySays(v)),
    );
  }

  // What the views, commands and the extension-host tests read.
  get cages(): CageInfo[] { return this.session.cages; }
  get activeCageId(): string | undefined { return this.session.activeCageId; }
  get policyParse(): ParseResult | undefined { return this.policy.parse; }
  activeCage(): CageInfo | undefined { return this.session.activeCage(); }
  policyUri(): vscode.Uri | undefined { return this.policy.uri(); }

  workspaceFolder(): vscode.WorkspaceFolder | undefined {
    return vscode.workspace.workspaceFolders?.[0];
  }

  /** Settings the running cage keeps (see SettingsGuard); a policy path here was applied by the user. */
  pinSettings(values: PinnedSettings): void {
    const before = this.policyUri()?.toString();
    this.session.pin(values);
    if (this.policyUri()?.toString() !== before) this.policy.targetChanged();
  }

  /** Adds an allow entry (comment-preserving edit through the policy engine), saves the file, reloads the proxy. */
  async allow(spec: AllowSpec): Promise<boolean> {
    return this.policy.edit((text) => addAllow(text, spec).text, `allow ${spec.host}`);
  }

  /** Applies a quick-fix choice: add an allow entry, or update the entry a private-address block names. */
  async applyFix(fix: FixChoice): Promise<boolean> {
    if (fix.action === 'add') return this.allow(fix.spec);
    return this.policy.edit((text) => updateEntry(text, fix.list, fix.index, fix.spec).text, `${fix.list}[${fix.index}] ${fix.spec.host}: private: true`);
  }

  /**
   * Answers the requests held for a host (the notification, the Blocked Requests view, "More…"): once, for an
   * hour, for the session or deny go to the proxy through the engine (acknowledged); always writes the narrowest
   * rule (or `spec`) into the policy file, and the push releases the waiting requests.
   */
  async answerHeld(g: Pick<HeldGroup, 'host' | 'port' | 'method' | 'path'>, action: HeldAction, spec?: AllowSpec): Promise<{ ok: boolean; message: string }> {
    if (action === 'always') {
      const s = spec ?? narrowestSpec(g);
      if (!s) return { ok: false, message: `${g.host} is not a host a rule can name` };
      const ok = await this.allow(s);
      return { ok, message: ok ? `allowed ${s.host}${s.methods ? ` ${s.methods.join(',')}` : ''}${s.paths ? ` ${s.paths.join(' ')}` : ''} in the policy file` : 'the policy file was not changed' };
    }
    const cageId = this.activeCageId;
    if (!cageId) return { ok: false, message: 'no cage runs for this workspace' };
    const scope = action === 'hour' ? { scope: 'for' as const, forMs: 3600_000 } : action === 'session' || action === 'deny' ? { scope: 'session' as const } : { scope: 'once' as const };
    const r = await this.engine.answer(cageId, {
      host: spec?.host ?? g.host,
      port: g.port,
      decision: action === 'deny' ? 'deny' : 'allow',
      ...scope,
      methods: spec?.methods,
      paths: spec?.paths,
      private: spec?.private,
    });
    if (r.entry) this.session.temporaries = [...this.session.temporaries.filter((e) => e.id !== r.entry!.id), r.entry];
    if (r.ok && r.answered) this.session.pending.delete(heldKey(g.host, g.port));
    this.changes.mark('blocks', 'stats');
    return r;
  }

  /** Ends a temporary allow or deny of the active cage. */
  async revokeTemporary(id: string): Promise<{ ok: boolean; message: string }> {
    const cageId = this.activeCageId;
    if (!cageId) return { ok: false, message: 'no cage runs for this workspace' };
    const r = await this.engine.revoke(cageId, id);
    if (r.ok) this.session.temporaries = this.session.temporaries.filter((e) => e.id !== id);
    this.changes.mark('blocks');
    return r;
  }

  /**
   * Applies a fix picked some time after it was offered, decided again under the policy of now: 'already' when
   * the policy lets the request through already, 'gone' when the fix no longer fits (the rule it would change is
   * gone), else the fix as the current policy has it (the entry it changes found again).
   */
  async applyFixFor(p: FixPayload): Promise<'applied' | 'already' | 'gone' | 'failed'> {
    const policy = this.policy.parse?.policy;
    if (policy && !stillBlocked(p.block, policy)) return 'already';
    const fresh = fixChoices(p.block, policy).find((c) => c.title === p.fix.title && c.action === p.fix.action);
    if (!fresh) return 'gone';
    const fix: FixChoice = p.optInPrivate && fresh.action === 'add' ? { ...fresh, spec: { ...fresh.spec, private: true } } : fresh;
    return (await this.applyFix(fix)) ? 'applied' : 'failed';
  }

  /** The block a group stands for, as the fixes see it. */
  blockedOf(g: BlockGroup): BlockedLike {
    const e = g.last;
    return { host: g.host, port: g.port, method: e.method, path: e.path, reason: g.reason, rule: e.rule, ruleKey: e.ruleKey };
  }

  /** The fix choices for a block group under the current policy. */
  fixesFor(g: BlockGroup): FixChoice[] {
    return fixChoices(this.blockedOf(g), this.policy.parse?.policy);
  }

  /** Finds running cages (after a window reload too) and reattaches to this workspace's. */
  refreshCages(): Promise<void> {
    return this.session.refresh();
  }

  async start(args: StartArgs, progress?: (step: StartStep, message: string) => void, signal?: AbortSignal): Promise<CageInfo> {
    const folder = this.workspaceFolder();
    if (!folder) throw new Error('Open a folder first: the cage mounts the workspace folder into the agent.');
    const settings = readSettings(folder.uri);
    const preset = presetById(args.preset ?? settings.agentPreset);
    await this.policy.ensure(preset);
    const parse = await this.policy.refresh({ push: false });
    if (parse && !parse.policy) {
      const first = parse.errors[0];
      throw new Error(`The policy file has errors (line ${first?.pos.line}: ${first?.message}). Fix it and start again.`);
    }
    const secrets = await this.secrets.collect(parse);
    const upstreamCaPem = settings.upstreamCaFile ? await readTextFile(resolveIn(folder, settings.upstreamCaFile)) : undefined;
    const opts: UpOptions = {
      workspace: folder.uri.fsPath,
      policyPath: this.policyUri()?.fsPath,
      ...this.startImages(args),
      // The preset's programs, unless the user gave the command (then it is theirs to know).
      requires: preset && !args.command && !settings.agentCommand && preset.requires.length ? { programs: preset.requires, for: `the ${preset.label} preset ("${preset.command}")` } : undefined,
      upstreamProxy: settings.upstreamProxy || undefined,
      upstreamCaPem,
      secrets,
      onProgress: (step, message) => {
        this.log.info(`[start] ${step}: ${message}`);
        progress?.(step, message);
      },
      signal,
    };
    this.policy.cageHas(undefined);
    const cage = await this.session.start(opts, args);
    this.policy.cageHas(await this.policy.readText());
    return cage;
  }

  /** The images a start uses: the start's own, the settings, the preset's (undefined: the engine decides, the devcontainer first). */
  startImages(args: StartArgs = {}): { agentImage?: string; proxyBaseImage?: string } {
    const settings = readSettings(this.workspaceFolder()?.uri);
    const preset = presetById(args.preset ?? settings.agentPreset);
    return { agentImage: args.image || settings.agentImage || preset?.image || undefined, proxyBaseImage: settings.proxyBaseImage || undefined };
  }

  async stop(cageId?: string): Promise<void> {
    await this.session.stop(cageId);
  }

  /** Stops and starts the workspace's cage again with the last start's arguments (the mounts are made anew). */
  async restart(): Promise<CageInfo> {
    const args = { ...(this.session.lastStart ?? {}), quiet: true, noTerminal: true };
    await this.stop();
    return this.start(args);
  }

  agentCommand(args: StartArgs = {}): string {
    const settings = readSettings(this.workspaceFolder()?.uri);
    if (args.command !== undefined) return args.command;
    const pinned = this.session.pinned?.agentCommand;
    const command = this.activeCageId && pinned !== undefined ? pinned : settings.agentCommand;
    if (command) return command;
    return presetById(args.preset ?? settings.agentPreset)?.command ?? '';
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
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
