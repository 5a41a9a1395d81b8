// The policy in force: loading it (at start, on SIGHUP, on reload(text)), its hash and generation, the decision
// for a request under it (with a message that says why everything is blocked while no valid policy is loaded),
// and the per-connection memo of the last decision.
import * as fs from 'node:fs';
import { decide, decideTcp, parsePolicy, withTemporaryAllows } from '../policy';
import type { Decision, Policy, Rule } from '../policy/types';
import { policyHash } from '../shared/policyHash';
import type { EventLog } from './events';

export interface ReloadResult {
  ok: boolean;
  /** sha256 of the policy text now in force (null: none). */
  hash: string | null;
  message?: string;
}

export class PolicyState {
  /** Bumped by every (re)load, valid or not: memoised decisions and their messages start over. */
  gen = 0;
  /** policyHash() of the text in force; null while none is. */
  hash: string | null = null;
  /** The file's policy with the temporary allows (temporary.ts) added: what decides. */
  private policy: Policy | undefined;
  private filePolicy: Policy | undefined;
  private temporary: Rule[] = [];
  /** Called after every (re)load and every change of the temporary allows: held requests are decided again. */
  onChange: (() => void) | undefined;
  private noPolicyWhy = 'no policy has been loaded yet';
  /** Hears every valid policy put in force (the raw TCP listeners follow its ports, tcp.ts). */
  onLoaded: ((p: Policy) => void) | undefined;

  /** Reads `file` on every reload() without text; without a file, `text` (tests) is the policy. */
  constructor(
    private readonly log: EventLog,
    private readonly file: string | undefined,
    private text: string | undefined,
  ) {}

  /** A valid policy is in force (the last good one, when a reload failed). */
  get valid(): boolean {
    return this.policy !== undefined;
  }

  /** Loads `text`, or re-reads the file (or the text given at start). An invalid policy leaves the last good one in force. */
  reload(text?: string): ReloadResult {
    if (text !== undefined) {
      this.text = text;
      return this.apply(text, undefined);
    }
    if (this.file) {
      let content: string | undefined;
      let why: string | undefined;
      try {
        content = fs.readFileSync(this.file, 'utf8');
      } catch (e) {
        why = `cannot read the policy file ${this.file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`;
      }
      return this.apply(content, why);
    }
    return this.apply(this.text, this.text === undefined ? 'no policy file was given' : undefined);
  }

  private apply(text: string | undefined, missingWhy: string | undefined): ReloadResult {
    this.gen++;
    const log = this.log;
    const keep = this.policy !== undefined;
    if (text === undefined) {
      const message = missingWhy ?? 'the policy file is missing';
      if (!keep) this.noPolicyWhy = message;
      log.emit({ time: log.now(), type: 'policy-error', error: 'missing', message, keptPrevious: keep });
      log.flush();
      return { ok: false, hash: this.hash, message };
    }
    const r = parsePolicy(text);
    if (!r.policy) {
      const first = r.errors[0];
      const message = first ? first.message : 'the policy is invalid';
      if (!keep) this.noPolicyWhy = `the policy file is invalid: ${message}${first?.pos?.line ? ` (line ${first.pos.line}, column ${first.pos.col})` : ''}`;
      log.emit({ time: log.now(), type: 'policy-error', error: 'invalid', message, line: first?.pos?.line || undefined, col: first?.pos?.col || undefined, keptPrevious: keep });
      log.flush();
      return { ok: false, hash: this.hash, message };
    }
    this.filePolicy = r.policy;
    this.policy = withTemporaryAllows(r.policy, this.temporary);
    this.hash = policyHash(text);
    log.emit({ time: log.now(), type: 'policy-loaded', hash: this.hash, allow: r.policy.allow.length, deny: r.policy.deny.length });
    log.flush();
    this.onLoaded?.(r.policy);
    this.onChange?.();
    return { ok: true, hash: this.hash };
  }

  /** Replaces the temporary allows (rules made by policy/ask.ts temporaryRule); decisions start over. */
  setTemporary(rules: Rule[]): void {
    this.temporary = rules;
    this.gen++;
    if (this.filePolicy) this.policy = withTemporaryAllows(this.filePolicy, rules);
    this.onChange?.();
  }

  /** The decision for a request (method and path) or, without them, for a CONNECT (host level). */
  decide(host: string, port: number, method?: string, path?: string, policy: Policy | undefined = this.policy): Decision {
    const d = decide({ host, port, method, path }, policy);
    if (!this.policy && d.reason === 'policy-invalid') {
      d.message = `No valid policy is in force, so everything is blocked: ${this.noPolicyWhy}.`;
    }
    return d;
  }

  /** The decision for a raw TCP connection to host:port (policy/decide.ts decideTcp). */
  decideTcp(host: string, port: number): Decision {
    return this.policy ? decideTcp(host, port, this.policy) : this.decide(host, port);
  }

  /** The policy in force, if any (temporary allows included). */
  get current(): Policy | undefined {
    return this.policy;
  }
}

/**
 * The last decision of one connection. A keep-alive client usually repeats the same request line: the decision
 * is reused while host, port, method, target and the policy in force (its generation) are all unchanged.
 */
export class DecisionMemo {
  private gen = -1;
  private host = '';
  private port = 0;
  private method = '';
  private target = '';
  private d: Decision | undefined;

  decide(state: PolicyState, host: string, port: number, method: string, target: string): Decision {
    if (this.d !== undefined && this.gen === state.gen && this.method === method && this.target === target && this.host === host && this.port === port) return this.d;
    this.d = state.decide(host, port, method, target);
    this.gen = state.gen;
    this.host = host;
    this.port = port;
    this.method = method;
    this.target = target;
    return this.d;
  }
}
