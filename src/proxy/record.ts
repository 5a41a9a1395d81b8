// The canonical decision line (smokescreen's "canonical log line"): every request that reached a decision gets
// exactly one event, and every decision event of the proxy is written by recordDecision() — requests inside
// intercepted sessions and on plain connections (conn.ts), CONNECTs (connect.ts, intercept.ts, tunnel.ts).
//
// "Exactly one" is held in one place: whatever owes an event is a Pending (one request, or one CONNECT), and
// recordDecision() writes only for a Pending not yet recorded. A request inside a blocked CONNECT also marks
// the CONNECT recorded: its event carries the CONNECT's block, with the method and path the editor needs.
import { performance } from 'node:perf_hooks';
import { entryKey, ruleLabel } from '../policy';
import { isProbeHost } from '../policy/events';
import type { Via } from '../policy/events';
import type { ReasonCode, Rule } from '../policy/types';
import { redact } from './dlp';
import type { EventLog } from './events';
import { display } from './target';

/** A request or a CONNECT that owes one decision event. */
export interface Pending {
  /** Set by recordDecision(); once set, nothing more is written for it. */
  recorded: boolean;
  /** performance.now() when its head was parsed: the event's `ms` counts from here. */
  t0: number;
  /** How it arrived, when not through the proxy settings (the event's `via`). */
  readonly via?: Via;
}

/** How events name a rule; made once per rule (rules are immutable once loaded). */
interface RuleNames {
  label: string;
  key: string;
}

export class DecisionRecorder {
  private readonly names = new WeakMap<Rule, RuleNames>();

  constructor(private readonly log: EventLog) {}

  /**
   * Writes the decision event of `p`, unless it has one. Allowed requests passed the data-loss guard (host,
   * path and query included); what a block shows of the request may hold a credential, so it is redacted.
   * `proto` names a request that was a stream of an HTTP/2 session (h2.ts).
   */
  recordDecision(p: Pending, type: 'allow' | 'block', host: string, port: number, method: string, path: string, reason: ReasonCode, rule: Rule | undefined, status?: number, detail?: string, proto?: 'h2'): void {
    if (p.recorded) return;
    p.recorded = true;
    let shown = display(host);
    if (type === 'block') {
      shown = redact(shown);
      path = redact(path);
      method = redact(method);
      if (detail !== undefined) detail = redact(detail);
    }
    const n = rule ? this.namesOf(rule) : undefined;
    this.log.decision(this.log.now(), type, shown, port, method, path, reason, n ? n.label : null, status, Math.round((performance.now() - p.t0) * 100) / 100, detail, n?.key, isProbeHost(host), p.via, proto);
  }

  /** The decision event of a CONNECT itself (method CONNECT, no path). */
  recordConnect(c: Pending & { host: string; port: number }, type: 'allow' | 'block', reason: ReasonCode, rule: Rule | undefined, status?: number, detail?: string): void {
    this.recordDecision(c, type, c.host, c.port, 'CONNECT', '', reason, rule, status, detail);
  }

  private namesOf(rule: Rule): RuleNames {
    let n = this.names.get(rule);
    if (n === undefined) this.names.set(rule, (n = { label: ruleLabel(rule), key: entryKey(rule) }));
    return n;
  }
}
