// "Ask instead of fail", the pure part: the policy keys `onUnknown` and `askTimeout`, which decisions may be
// held for an answer, temporary allows and denies (what the engine gives the proxy: never in the policy file)
// as rules the decision function understands, and the durations the command line and the editor accept.
import { HTTP_METHODS } from './entry';
import { parseHostPattern } from './hostPattern';
import { compileGlob } from './path';
import type { Policy, ReasonCode, Rule } from './types';
import { describe, rangeOf, type Ctx, type Range } from './yamlNodes';

export const DEFAULT_ASK_TIMEOUT = 60;
export const MAX_ASK_TIMEOUT = 600;

export interface AskSettings {
  onUnknown?: 'ask' | 'deny';
  askTimeout?: number;
}

/** Reads `onUnknown: ask | deny` or `askTimeout: SECONDS` (1-600) into `out`; errors carry the value's position. */
export function parseAskSetting(ctx: Ctx, out: AskSettings, name: 'onUnknown' | 'askTimeout', value: any, keyRange: Range): void {
  const where = rangeOf(value) ?? keyRange;
  const v = value && typeof value === 'object' && 'value' in value ? value.value : undefined;
  if (name === 'onUnknown') {
    if (v === 'ask' || v === 'deny') out.onUnknown = v;
    else ctx.error(`onUnknown must be "ask" (hold a request no rule matches and ask) or "deny" (block it at once), not ${describe(value)}`, where);
    return;
  }
  if (typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= MAX_ASK_TIMEOUT) out.askTimeout = v;
  else ctx.error(`askTimeout must be a whole number of seconds from 1 to ${MAX_ASK_TIMEOUT} (how long a held request waits for an answer), not ${describe(value)}`, where);
}

/** The policy holds requests no rule matches and asks. */
export function asks(policy: Policy | undefined): boolean {
  return policy?.onUnknown === 'ask';
}

/** Seconds a held request waits under `policy`. */
export function askTimeoutOf(policy: Policy | undefined): number {
  return policy?.askTimeout ?? DEFAULT_ASK_TIMEOUT;
}

/**
 * Only a request that NO rule matches may be held: an explicit deny, a method or path a rule refuses, a private
 * address, a detected secret, an SNI mismatch, an invalid policy all block at once.
 */
export function isAskable(reason: ReasonCode): boolean {
  return reason === 'no-matching-rule' || reason === 'ip-literal';
}

/** A temporary allow or deny, as the engine keeps it and the proxy enforces it. */
export interface TemporaryEntry {
  /** Chosen by the engine; names the entry for revoke. */
  id: string;
  kind: 'allow' | 'deny';
  /** A host pattern as a policy writes it ("api.example.com", "*.example.com", "host:8443"). */
  host: string;
  methods?: string[];
  paths?: string[];
  private?: boolean;
  /** Epoch ms when it ends; absent: until the cage stops. */
  expires?: number;
  /** Epoch ms when it was given. */
  created: number;
}

/**
 * The rule a temporary entry stands for (list "allow": a temporary deny only refuses what would otherwise be
 * held, so it is matched like an allow, in a table of its own). Plain-words error for a bad entry.
 */
export function temporaryRule(e: TemporaryEntry, index: number): Rule | { error: string } {
  if (!e || typeof e !== 'object' || typeof e.id !== 'string' || !e.id || (e.kind !== 'allow' && e.kind !== 'deny') || typeof e.host !== 'string') return { error: 'a temporary entry needs an id, a kind (allow or deny) and a host' };
  if (e.expires !== undefined && !Number.isFinite(e.expires)) return { error: `temporary entry ${e.id}: expires must be a time in milliseconds` };
  const p = parseHostPattern(e.host, { list: 'allow' });
  if ('error' in p) return { error: `temporary entry ${e.id}: ${p.error}` };
  let methods: string[] | undefined;
  if (e.methods !== undefined) {
    if (!Array.isArray(e.methods) || e.methods.length === 0) return { error: `temporary entry ${e.id}: methods must be a non-empty list` };
    methods = [];
    for (const m of e.methods) {
      const up = String(m).toUpperCase();
      if (!HTTP_METHODS.has(up)) return { error: `temporary entry ${e.id}: ${JSON.stringify(m)} is not an HTTP method` };
      if (!methods.includes(up)) methods.push(up);
    }
  }
  let paths: string[] | undefined;
  if (e.paths !== undefined) {
    if (!Array.isArray(e.paths) || e.paths.length === 0) return { error: `temporary entry ${e.id}: paths must be a non-empty list` };
    paths = [];
    for (const g of e.paths) {
      const c = compileGlob(String(g).trim());
      if ('error' in c) return { error: `temporary entry ${e.id}: ${c.error}` };
      if (!paths.includes(c.glob)) paths.push(c.glob);
    }
  }
  const rule: Rule = {
    list: 'allow',
    index,
    hostText: p.text,
    host: p.host,
    kind: p.kind,
    intercept: true,
    private: e.private === true,
    disabled: false,
    pos: { line: 0, col: 0, endLine: 0, endCol: 0 },
    temporary: e.expires === undefined ? { id: e.id } : { id: e.id, expires: e.expires },
  };
  if (p.port !== undefined) rule.port = p.port;
  if (methods) rule.methods = methods;
  if (paths) rule.paths = paths;
  return rule;
}

/** The entries still in force at `now` (epoch ms). */
export function liveEntries(entries: readonly TemporaryEntry[], now: number): TemporaryEntry[] {
  return entries.filter((e) => e.expires === undefined || e.expires > now);
}

/** The earliest expiry among `entries` after `now`, or undefined. */
export function nextExpiry(entries: readonly TemporaryEntry[], now: number): number | undefined {
  let next: number | undefined;
  for (const e of entries) if (e.expires !== undefined && e.expires > now && (next === undefined || e.expires < next)) next = e.expires;
  return next;
}

/**
 * The policy in force with the temporary allows added after the file's own allow entries (deny entries of the
 * file still win: they are checked first). The file's policy object is never changed.
 */
export function withTemporaryAllows(policy: Policy, allows: Rule[]): Policy {
  if (allows.length === 0) return policy;
  return { ...policy, allow: [...policy.allow, ...allows.map((r, i) => ({ ...r, index: policy.allow.length + i }))] };
}

/** "30s", "15m", "1h", "2h30m", "90" (seconds) → milliseconds; undefined when it is not a duration (or is 0). */
export function parseDuration(text: string): number | undefined {
  const s = String(text).trim().toLowerCase();
  if (/^\d+$/.test(s)) return Number(s) > 0 ? Number(s) * 1000 : undefined;
  const m = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(s);
  if (!m || s === '') return undefined;
  const ms = ((Number(m[1] ?? 0) * 24 + Number(m[2] ?? 0)) * 60 + Number(m[3] ?? 0)) * 60_000 + Number(m[4] ?? 0) * 1000;
  return ms > 0 ? ms : undefined;
}

/** A time left in words for lists: "59 s", "14 min", "1 h 5 min". */
export function formatRemaining(ms: number): string {
  const s = Math.max(0, Math.ceil(ms / 1000));
  if (s < 60) return `${s} s`;
  const min = Math.ceil(s / 60);
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  return min % 60 ? `${h} h ${min % 60} min` : `${h} h`;
}

/** One group of held requests (one host:port), as the proxy reports it over the control channel. */
export interface PendingGroup {
  host: string;
  port: number;
  /** The first held request's method and normalised path. */
  method: string;
  path: string;
  count: number;
  /** Epoch ms when the first was held. */
  since: number;
  /** Epoch ms when its oldest request gives up. */
  until: number;
}

/** What the engine asks the proxy over its control channel (src/proxy/control.ts): one JSON line. */
export type ControlRequest =
  | { op: 'state' }
  | { op: 'add'; entries: TemporaryEntry[] }
  | { op: 'remove'; ids: string[] }
  | { op: 'once'; host: string; port?: number; methods?: string[]; paths?: string[]; private?: boolean }
  /** Refuses the waiting requests; `entries` (a temporary deny) are added first. */
  | { op: 'refuse'; host: string; port?: number; entries?: TemporaryEntry[] };

/** The proxy's acknowledgement: whether it took the decision, and what is in force now. */
export interface ControlReply {
  ok: boolean;
  /** Why the proxy did not take it. */
  error?: string;
  /** Random per proxy process: a new value means the proxy restarted (the engine then restores its temporaries). */
  boot: string;
  pending?: PendingGroup[];
  temporary?: TemporaryEntry[];
  /** Held requests an answer decided again (released, or refused by the policy). */
  released?: number;
  refused?: number;
  removed?: number;
}
