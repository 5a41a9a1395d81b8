// The secrets the policy's `auth:` rules name, kept in VS Code's SecretStorage (never in settings or the
// workspace) and handed to the engine at start, which gives them to the proxy only. Asks for a missing one.
import * as vscode from 'vscode';
import type { ParseResult } from '../policy/types';

export function secretKey(name: string): string {
  return `cagedAgent.secret.${name}`;
}

export class AgentSecrets {
  constructor(
    private readonly storage: vscode.SecretStorage,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  store(name: string, value: string): Thenable<void> {
    return this.storage.store(secretKey(name), value);
  }

  /** Secrets the policy's auth rules name, read from SecretStorage (asked for when missing). */
  async collect(parse: ParseResult | undefined): Promise<Record<string, string>> {
    const names = new Set<string>();
    for (const r of parse?.policy?.allow ?? []) if (r.auth) names.add(r.auth.secret);
    const out: Record<string, string> = {};
    for (const name of names) {
      let value = await this.storage.get(secretKey(name));
      if (!value) {
        value = await vscode.window.showInputBox({
          title: `Caged Agent: secret "${name}"`,
          prompt: `The policy injects the secret "${name}". Enter its value (kept in VS Code's secret storage, given only to the proxy).`,
          password: true,
          ignoreFocusOut: true,
        });
        if (value) await this.store(name, value);
      }
      if (value) out[name] = value;
      else this.log.warn(`secret "${name}" not set: requests needing it will be blocked (secret-missing)`);
    }
    return out;
  }
}
