// "Newly blocked host" notifications: batched and rate-limited (one per interval, never one per request),
// with buttons that allow the host or open the details.
import * as vscode from 'vscode';
import type { Controller } from './controller';
import type { BlockGroup } from './logic/blocks';
import { blockKey, describeSeen, reasonWords } from './logic/blocks';
import { looksInternal } from './logic/fixes';
import { NotifyThrottle } from './logic/throttle';
import { askInternal } from './commands/allowHost';
import { readSettings } from './settings';

export class BlockNotifier implements vscode.Disposable {
  private readonly throttle: NotifyThrottle<BlockGroup>;
  private timer: NodeJS.Timeout | undefined;
  private readonly sub: vscode.Disposable;
  private readonly configSub: vscode.Disposable;

  constructor(private readonly ctl: Controller) {
    this.throttle = new NotifyThrottle<BlockGroup>({ batchMs: 800, minIntervalMs: this.intervalMs() });
    this.sub = ctl.session.onDidBlock(({ event, isNew }) => {
      if (!isNew) return;
      const settings = readSettings(ctl.workspaceFolder()?.uri);
      if (settings.notifications === 'off') return;
      const g = ctl.session.blocks.get(blockKey(event.host, event.port));
      if (!g) return;
      this.throttle.push(g.key, g, Date.now());
      this.arm();
    });
    // The interval setting applies without a window reload.
    this.configSub = vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('cagedAgent.notificationIntervalSeconds')) this.throttle.setMinInterval(this.intervalMs());
    });
  }

  private intervalMs(): number {
    return Math.max(0, readSettings(this.ctl.workspaceFolder()?.uri).notificationIntervalSeconds) * 1000;
  }

  private arm(): void {
    if (this.timer) return;
    const due = this.throttle.due();
    if (due === undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const batch = this.throttle.flush(Date.now());
      if (batch) void this.show(batch.items.filter((g) => this.ctl.session.blocks.get(g.key)));
      this.arm();
    }, Math.max(0, due - Date.now()));
  }

  private async show(groups: BlockGroup[]): Promise<void> {
    if (groups.length === 0) return;
    if (groups.length === 1) {
      const g = groups[0];
      const choice = this.ctl.fixesFor(g)[0];
      const seen = describeSeen(g);
      const buttons = choice ? [choice.title, 'Details'] : ['Details'];
      const picked = await vscode.window.showWarningMessage(
        `Caged agent blocked ${g.host}${g.port === 443 || g.port === 80 ? '' : `:${g.port}`}${seen ? ` (${seen})` : ''}: ${reasonWords(g.reason)} (${g.reason}).`,
        ...buttons,
      );
      if (choice && picked === choice.title) {
        // A name under no public top-level domain: ask what Add Host asks, so the retry is not refused as private.
        let optInPrivate: boolean | undefined = false;
        if (choice.action === 'add' && looksInternal(g.host)) optInPrivate = await askInternal(g.host);
        if (optInPrivate === undefined) return;
        await vscode.commands.executeCommand('cagedAgent.applyFix', { fix: choice, block: this.ctl.blockedOf(g), optInPrivate });
      }
      else if (picked === 'Details') await vscode.commands.executeCommand('cagedAgent.showBlocked', g.key);
      return;
    }
    const names = groups.map((g) => g.host);
    const shown = names.slice(0, 3).join(', ') + (names.length > 3 ? ` and ${names.length - 3} more` : '');
    const picked = await vscode.window.showWarningMessage(`Caged agent blocked ${groups.length} new hosts: ${shown}.`, 'Review…');
    if (picked) await vscode.commands.executeCommand('cagedAgent.showBlocked');
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.sub.dispose();
    this.configSub.dispose();
  }
}
