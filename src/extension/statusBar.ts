// Status bar: the cage state and a blocked-count badge; clicking it opens the sidebar.
import * as vscode from 'vscode';
import type { Controller } from './controller';

export class CageStatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('cagedAgent.status', vscode.StatusBarAlignment.Left, 50);
  private readonly sub: vscode.Disposable;

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
    const waiting = ctl.pending.waiting(Date.now());
    const badge = (waiting ? ` $(watch) ${waiting} waiting` : '') + (blocked ? ` $(circle-slash) ${blocked}` : '');
    if (ctl.starting) {
      this.item.text = '$(loading~spin) Caged: starting';
      this.item.tooltip = 'Caged Agent is starting the cage';
      this.item.backgroundColor = undefined;
    } else if (cage) {
      const ok = cage.state === 'healthy';
      this.item.text = `$(shield) Caged: ${cage.state}${badge}`;
      const s = ctl.stats.get(cage.id);
      this.item.tooltip = `Cage ${cage.id} — ${cage.state}\n${s?.allowed ?? 0} allowed, ${s?.blocked ?? 0} blocked requests\n${blocked} blocked host(s)${waiting ? `\n${waiting} request(s) waiting for your answer` : ''}`;
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
