// Status bar: the cage state and a blocked-count badge; clicking it opens the sidebar.
import * as vscode from 'vscode';
import type { Controller } from './controller';
import { proxyPolicyWarning } from './logic/pushReport';

export class CageStatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('cagedAgent.status', vscode.StatusBarAlignment.Left, 50);
  private readonly sub: vscode.Disposable;
  private healthy: boolean | undefined;

  constructor(private readonly ctl: Controller) {
    this.item.name = 'Caged Agent';
    this.item.command = 'workbench.view.extension.cagedAgent';
    this.sub = ctl.changes.on(['cages', 'stats', 'blocks'], () => this.update());
    this.update();
    this.item.show();
  }

  update(): void {
    const ctl = this.ctl.session;
    const cage = ctl.activeCage();
    const blocked = ctl.blocks.size;
    // The walkthrough's "Start a caged agent" step completes when the cage is healthy, not when the command runs.
    const healthy = !!cage && cage.state === 'healthy';
    if (healthy !== this.healthy) {
      this.healthy = healthy;
      void vscode.commands.executeCommand('setContext', 'cagedAgent.cageHealthy', healthy);
    }
    const waiting = ctl.pending.waiting(Date.now());
    const badge = (waiting ? ` $(watch) ${waiting} waiting` : '') + (blocked ? ` $(circle-slash) ${blocked}` : '');
    if (ctl.starting) {
      this.item.text = '$(loading~spin) Caged: starting';
      this.item.tooltip = 'Caged Agent is starting the cage';
      this.item.backgroundColor = undefined;
    } else if (cage) {
      // What the proxy runs, when it is not the saved file: it refused it, has none, or did not confirm it.
      const policy = proxyPolicyWarning(this.ctl.policy.proxyVerdict);
      const ok = cage.state === 'healthy' && !policy;
      this.item.text = `$(shield) Caged: ${cage.state}${policy ? ` $(warning) ${policy.text}` : ''}${badge}`;
      const s = ctl.stats.get(cage.id);
      this.item.tooltip = `Cage ${cage.id} — ${cage.state}${policy ? `\n${policy.tooltip}` : ''}\n${s?.allowed ?? 0} allowed, ${s?.blocked ?? 0} blocked requests\n${blocked} blocked host(s)${waiting ? `\n${waiting} request(s) waiting for your answer` : ''}`;
      this.item.backgroundColor = ok ? undefined : new vscode.ThemeColor('statusBarItem.warningBackground');
    } else if (ctl.dockerError) {
      this.item.text = '$(shield) Caged: no Docker';
      this.item.tooltip = ctl.dockerError;
      this.item.backgroundColor = new vscode.ThemeColor('statusBarItem.warningBackground');
    } else {
      this.item.text = `$(shield) Caged: off${badge}`;
      this.item.tooltip = 'No caged agent runs for this workspace — run "Caged Agent: Start Caged Agent"';
      this.item.backgroundColor = undefined;
    }
  }

  dispose(): void {
    this.sub.dispose();
    this.item.dispose();
  }
}
