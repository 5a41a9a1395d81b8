// The running cage of this workspace: which cages the engine has (found again after a window reload), which one
// is this workspace's, its start and stop, its proxy's events (routed to the request counts and the blocked
// requests), and the settings it keeps while it runs.
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { CageEngine } from '../engine';
import type { CageInfo, EventSubscription, PolicyPushResult, UpOptions } from '../engine/api';
import { verdictOf } from '../engine/push';
import type { DecisionEvent, ProxyEvent } from '../policy/events';
import type { Policy } from '../policy/types';
import type { Changes } from './changes';
import { BlockStore } from './logic/blocks';
import { PendingStore, type HeldGroup } from './logic/pending';
import type { TemporaryEntry } from '../policy';
import { errorText } from './logic/errors';
import { stillBlocked } from './logic/fixes';

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

/** Settings the running cage keeps (see SettingsGuard); a policy path here was applied by the user. */
export interface PinnedSettings {
  policyPath?: string;
  agentCommand?: string;
}

export class CageSession implements vscode.Disposable {
  readonly blocks = new BlockStore();
  /** Requests the proxy holds for an answer (onUnknown: ask), by host:port. */
  readonly pending = new PendingStore();
  /** The temporary allows and denies of the active cage, as last read from its proxy or given here. */
  temporaries: TemporaryEntry[] = [];
  readonly stats = new Map<string, CageStats>();
  cages: CageInfo[] = [];
  /** The cage of this workspace, when one runs. */
  activeCageId: string | undefined;
  dockerError: string | undefined;
  starting = false;
  /** The arguments of the last start (a restart uses them again). */
  lastStart: StartArgs | undefined;
  /** While a cage runs: the policy file and terminal command it uses, whatever the settings say meanwhile. */
  pinned: PinnedSettings | undefined;

  private readonly blockEmitter = new vscode.EventEmitter<{ event: DecisionEvent; isNew: boolean }>();
  readonly onDidBlock = this.blockEmitter.event;
  private readonly holdEmitter = new vscode.EventEmitter<HeldGroup>();
  /** A host:port got its first held request (the notification asks). */
  readonly onDidHold = this.holdEmitter.event;
  private readonly attachEmitter = new vscode.EventEmitter<{ cageId: string; started: boolean }>();
  /** A cage of this workspace became active: started here, or found again (after a reload, or started elsewhere). */
  readonly onDidAttach = this.attachEmitter.event;
  private readonly detachEmitter = new vscode.EventEmitter<void>();
  /** This workspace's cage is gone (stopped here or elsewhere): what it pinned no longer holds. */
  readonly onDidDetach = this.detachEmitter.event;

  private readonly policyEmitter = new vscode.EventEmitter<PolicyPushResult>();
  /** The proxy said which policy it runs (a policy-loaded or policy-error event). */
  readonly onDidProxyPolicy = this.policyEmitter.event;

  private subscription: EventSubscription | undefined;
  private subscribedCage: string | undefined;
  private recheck: NodeJS.Timeout | undefined;

  constructor(
    readonly engine: CageEngine,
    private readonly log: vscode.LogOutputChannel,
    private readonly changes: Changes,
    private readonly folder: () => vscode.WorkspaceFolder | undefined,
    /** The policy the file holds now (replayed blocks it cures are not restored). */
    private readonly currentPolicy: () => Policy | undefined = () => undefined,
  ) {}

  activeCage(): CageInfo | undefined {
    return this.cages.find((c) => c.id === this.activeCageId);
  }

  /** Finds running cages (after a window reload too) and reattaches to this workspace's. */
  async refresh(): Promise<void> {
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
        void this.refresh();
      }, 1000);
    }
    const ws = this.folder()?.uri.fsPath;
    const mine = this.cages.find((c) => ws && samePath(c.workspace, ws) && c.state !== 'stopped');
    if (mine && !this.starting) {
      const attached = this.activeCageId !== mine.id;
      this.activeCageId = mine.id;
      // Found again (a window reload, or started elsewhere): the blocks and counts since the cage started come
      // back from the proxy's log.
      this.subscribe(mine.id, attached ? createdSeconds(mine) : undefined);
      if (attached) {
        this.attachEmitter.fire({ cageId: mine.id, started: false });
        void this.refreshAsk();
      }
    } else if (!mine && !this.starting) {
      this.detach();
      this.unsubscribe();
    }
    this.changes.mark('cages');
  }

  private detach(): void {
    if (!this.activeCageId) return;
    this.activeCageId = undefined;
    this.pinned = undefined;
    this.pending.clear();
    this.temporaries = [];
    this.detachEmitter.fire();
  }

  /** Reads the held requests and the temporary entries from the active cage's proxy (after an attach, an answer). */
  async refreshAsk(): Promise<void> {
    const id = this.activeCageId;
    if (!id) return;
    try {
      const s = await this.engine.pending(id);
      if (this.activeCageId !== id) return;
      this.temporaries = s.temporary;
      this.changes.mark('blocks');
    } catch (e) {
      this.log.warn(`cannot read the held requests of cage ${id}: ${errorText(e)}`);
    }
  }

  /** Starts the workspace's cage through the engine and attaches to it. */
  async start(opts: UpOptions, args: StartArgs): Promise<CageInfo> {
    this.starting = true;
    this.lastStart = args;
    this.changes.mark('cages');
    try {
      const cage = await this.engine.up(opts);
      this.activeCageId = cage.id;
      this.pinned = undefined;
      this.cages = [...this.cages.filter((c) => c.id !== cage.id), cage];
      this.attachEmitter.fire({ cageId: cage.id, started: true });
      this.subscribe(cage.id);
      return cage;
    } finally {
      this.starting = false;
      await this.refresh();
    }
  }

  async stop(cageId?: string): Promise<void> {
    const id = cageId ?? this.activeCageId;
    if (!id) return;
    if (id === this.activeCageId) this.unsubscribe();
    await this.engine.down(id);
    if (id === this.activeCageId) this.detach();
    this.stats.delete(id);
    await this.refresh();
  }

  pin(values: PinnedSettings): void {
    this.pinned = { ...this.pinned, ...values };
  }

  /** Follows the cage's proxy events; with `since`, the ones logged since then first (replayed: no notification). */
  private subscribe(cageId: string, since?: number): void {
    if (this.subscribedCage === cageId && this.subscription) return;
    this.unsubscribe();
    this.subscribedCage = cageId;
    const replayBefore = since !== undefined ? new Date().toISOString() : undefined;
    const replayed = (e: ProxyEvent) => replayBefore !== undefined && e.time < replayBefore;
    this.engine.events(cageId, (e) => this.onProxyEvent(cageId, e, replayed(e)), { since }).then(
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
  onProxyEvent(cageId: string, e: ProxyEvent, replayed = false): void {
    // The cage's own self-check (Verify Cage): no count, notification, Problem or Blocked entry.
    if ((e.type === 'allow' || e.type === 'block') && e.probe) {
      this.log.trace(`probe ${e.type} ${e.host}:${e.port} (${e.reason})`);
      return;
    }
    const s = this.stats.get(cageId) ?? { allowed: 0, blocked: 0 };
    this.stats.set(cageId, s);
    switch (e.type) {
      case 'allow':
        s.allowed++;
        this.changes.mark('stats');
        this.log.trace(`allow ${e.method} ${e.host}:${e.port}${e.path} (${e.rule ?? '-'})`);
        break;
      case 'block': {
        s.blocked++;
        const policy = replayed ? this.currentPolicy() : undefined;
        if (policy && !stillBlocked(e, policy)) break;
        this.log.warn(`block ${e.method} ${e.host}:${e.port}${e.path} — ${e.reason}${e.detail ? ` (${e.detail})` : ''}`);
        const { isNew } = this.blocks.add(e);
        this.changes.mark('stats', 'blocks');
        // A block from before a reload was notified then: it comes back in the views, not as a new notification.
        this.blockEmitter.fire({ event: e, isNew: isNew && !replayed });
        break;
      }
      case 'policy-loaded':
        this.log.info(`proxy loaded policy ${e.hash.slice(0, 12)} (${e.allow} allow, ${e.deny} deny)`);
        this.policyEmitter.fire(verdictOf(e));
        break;
      case 'policy-error':
        this.log.error(`proxy policy error: ${e.message}${e.line ? ` (line ${e.line})` : ''}${e.keptPrevious ? ' — previous policy kept' : ' — denying everything'}`);
        this.policyEmitter.fire(verdictOf(e));
        break;
      case 'pending': {
        const { group, isNew } = this.pending.apply(e);
        if (isNew) this.log.info(`waiting for an answer: ${e.count} request${e.count === 1 ? '' : 's'} to ${e.host}:${e.port} (first ${e.method} ${e.path})`);
        this.changes.mark('stats', 'blocks');
        if (isNew && group) this.holdEmitter.fire(group);
        break;
      }
      case 'resolved':
        this.pending.apply(e);
        this.log.info(`held requests to ${e.host}:${e.port}: ${e.outcome} (${e.count})`);
        this.changes.mark('stats', 'blocks');
        break;
      default:
        this.log.info(`proxy ${e.type}${e.message ? `: ${e.message}` : ''}`);
        // A proxy that (re)started has no temporary entries in memory: reading its state gives them back.
        if (e.type === 'listening' && cageId === this.activeCageId) void this.refreshAsk();
    }
  }

  /** Drops the blocks `policy` now cures (after a quick fix, the diagnostic disappears). */
  pruneBlocks(policy: Policy): void {
    const dropped = this.blocks.prune((g) => stillBlocked(g.last, policy));
    if (!dropped.length) return;
    this.log.info(`now allowed: ${dropped.join(', ')}`);
    this.changes.mark('blocks');
  }

  dismissBlock(key: string): void {
    if (this.blocks.delete(key)) this.changes.mark('blocks');
  }

  dispose(): void {
    if (this.recheck) clearTimeout(this.recheck);
    this.unsubscribe();
    this.blockEmitter.dispose();
    this.holdEmitter.dispose();
    this.attachEmitter.dispose();
    this.detachEmitter.dispose();
    this.policyEmitter.dispose();
  }
}

function createdSeconds(c: CageInfo): number | undefined {
  const t = Date.parse(c.createdAt);
  return Number.isFinite(t) ? Math.floor(t / 1000) : undefined;
}

function samePath(a: string, b: string): boolean {
  return path.resolve(a) === path.resolve(b);
}
