// The proxy's event contract: one JSON object per line on stdout. Pure types plus a tolerant parser,
// shared by the proxy (writer), the engine (reader of the container log) and the editor.
import type { ReasonCode } from './types';

/** How a request reached the proxy, other than through the proxy settings (DecisionEvent.via). */
export type Via = 'transparent' | 'tcp';

export interface DecisionEvent {
  time: string; // ISO 8601
  type: 'allow' | 'block';
  host: string;
  port: number;
  /** Upper-case method; "CONNECT" for a tunnel decision. */
  method: string;
  /** Normalised path without the query string ("" for a CONNECT-level decision). */
  path: string;
  reason: ReasonCode;
  /** The rule that decided, as "allow[3]" / "deny[0]", or null: for people (it shifts when entries move). */
  rule: string | null;
  /**
   * The same rule as data: entryKey() of the entry (ruleId.ts), e.g. "allow api.github.com * *"; absent when
   * `rule` is null. To find the rule in a (possibly newer) parse of the file, compare it with entryKey() of
   * that parse's entries; never parse it.
   */
  ruleKey?: string;
  /** Extra detail safe to show (never a secret): e.g. the DLP pattern name. */
  detail?: string;
  /** HTTP status returned to the client (allow: upstream status when known). */
  status?: number;
  /** Milliseconds spent deciding + serving (allow) or deciding (block). */
  ms?: number;
  /**
   * How the request arrived when not through the proxy settings (absent: HTTP_PROXY / CONNECT to the explicit
   * proxy): `transparent`, a client that ignores the proxy variables caught on 80/443 (transparent capture);
   * `tcp`, a raw TCP connection to a rule's (or a watched) port.
   */
  via?: Via;
  /**
   * The request went to a name under PROBE_SUFFIX: the cage's own self-check (Verify Cage), not the agent's
   * work. The editor shows no notification, Problem or Blocked entry for it.
   */
  probe?: true;
  /** The request was a stream of an HTTP/2 session ("h2"); absent for HTTP/1.x. */
  proto?: 'h2';
}

/** Names under this reserved suffix (RFC 6761 .invalid: never resolvable) are the cage's self-check probes. */
export const PROBE_SUFFIX = '.caged-agent.invalid';

export function isProbeHost(host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  return h.endsWith(PROBE_SUFFIX) || h === PROBE_SUFFIX.slice(1);
}

export interface PolicyLoadedEvent {
  time: string;
  type: 'policy-loaded';
  /** sha256 of the policy text, hex. */
  hash: string;
  allow: number;
  deny: number;
}

export interface PolicyErrorEvent {
  time: string;
  type: 'policy-error';
  /** "missing" | "invalid" */
  error: string;
  message: string;
  line?: number;
  col?: number;
  /** true when the last good policy stays in force; false when the proxy now denies everything. */
  keptPrevious: boolean;
}

export interface LifecycleEvent {
  time: string;
  type: 'listening' | 'shutdown' | 'error';
  message?: string;
  address?: string;
}

/**
 * Requests to host:port are held for an answer (onUnknown: ask). Written once when the first one is held, then
 * at most once a second while more arrive (`count` grows); `resolved` ends it. Each held request still gets its
 * own decision event when it is released or refused.
 */
export interface PendingEvent {
  time: string;
  type: 'pending';
  host: string;
  port: number;
  /** The first held request's method and normalised path (what the narrowest rule is built from). */
  method: string;
  path: string;
  /** Requests waiting now. */
  count: number;
  /** ISO time when the first request was held. */
  since: string;
  /** ISO time when the oldest waiting request gives up (403 "no-decision"). */
  until: string;
}

export interface ResolvedEvent {
  time: string;
  type: 'resolved';
  host: string;
  port: number;
  /** allowed: released under a rule; denied: refused by an answer or a temporary deny; timeout: nobody answered; gone: the clients left. */
  outcome: 'allowed' | 'denied' | 'timeout' | 'gone';
  /** Requests this outcome answered. */
  count: number;
}

export type ProxyEvent = DecisionEvent | PolicyLoadedEvent | PolicyErrorEvent | LifecycleEvent | PendingEvent | ResolvedEvent;

const TYPES = new Set(['allow', 'block', 'policy-loaded', 'policy-error', 'listening', 'shutdown', 'error', 'pending', 'resolved']);

/** Parses one log line; returns undefined for anything that is not a proxy event. Never throws. */
export function parseEventLine(line: string): ProxyEvent | undefined {
  const s = line.trim();
  if (!s.startsWith('{')) return undefined;
  try {
    const o = JSON.parse(s);
    if (o && typeof o === 'object' && typeof o.type === 'string' && TYPES.has(o.type)) return o as ProxyEvent;
  } catch {}
  return undefined;
}
