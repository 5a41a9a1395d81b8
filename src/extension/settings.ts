// Typed access to the cagedAgent.* settings.
import * as vscode from 'vscode';
import { DEFAULT_POLICY_PATH } from '../policy';

export type NotifyMode = 'newHosts' | 'off';

export interface Settings {
  agentPreset: string;
  agentImage: string;
  agentCommand: string;
  proxyBaseImage: string;
  policyPath: string;
  upstreamProxy: string;
  upstreamCaFile: string;
  notifications: NotifyMode;
  notificationIntervalSeconds: number;
  openTerminalOnStart: boolean;
}

export function readSettings(scope?: vscode.ConfigurationScope): Settings {
  const c = vscode.workspace.getConfiguration('cagedAgent', scope);
  return {
    agentPreset: c.get<string>('agentPreset', ''),
    agentImage: c.get<string>('agentImage', ''),
    agentCommand: c.get<string>('agentCommand', ''),
    proxyBaseImage: c.get<string>('proxyBaseImage', 'node:20-alpine'),
    policyPath: c.get<string>('policyPath', DEFAULT_POLICY_PATH),
    upstreamProxy: c.get<string>('upstreamProxy', ''),
    upstreamCaFile: c.get<string>('upstreamCaFile', ''),
    notifications: c.get<NotifyMode>('notifications', 'newHosts'),
    notificationIntervalSeconds: c.get<number>('notificationIntervalSeconds', 10),
    openTerminalOnStart: c.get<boolean>('openTerminalOnStart', true),
  };
}
