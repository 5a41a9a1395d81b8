// Pure bookkeeping of blocked requests for the editor: grouped by host:port, with what was seen.
// No vscode import: unit-tested on its own.
import type { DecisionEvent, Via } from '../../policy/events';

export interface BlockGroup {
  /** "host:port" */
  key: string;
  host: string;
  port: number;
  count: number;
  firstSeen: number;
  lastSeen: number;
  /** Reason of the latest block. */
  reason: string;
  /** Method -> count */
  methods: Map<string, number>;
  /** Distinct paths seen, most recent first (bounded). */
  paths: string[];
  /** The latest block event, as seen. */
  last: DecisionEvent;
}

const MAX_PATHS = 20;
const MAX_GROUPS = 500;

export function blockKey(host: string, port: number): string {
  return `${host.toLowerCase()}:${port}`;
}

export class BlockStore {
  private readonly groups = new Map<string, BlockGroup>();

  /** Records a block event. Returns the group and whether the host:port is new. */
  add(e: DecisionEvent): { group: BlockGroup; isNew: boolean } {
    const key = blockKey(e.host, e.port);
    const t = Date.parse(e.time) || Date.now();
    let g = this.groups.get(key);
    const isNew = !g;
    if (!g) {
      if (this.groups.size >= MAX_GROUPS) this.evictOldest();
      g = { key, host: e.host.toLowerCase(), port: e.port, count: 0, firstSeen: t, lastSeen: t, reason: e.reason, methods: new Map(), paths: [], last: e };
      this.groups.set(key, g);
    }
    g.count++;
    g.lastSeen = Math.max(g.lastSeen, t);
    g.reason = e.reason;
    g.last = e;
    if (e.method) g.methods.set(e.method, (g.methods.get(e.method) ?? 0) + 1);
    if (e.path) {
      const i = g.paths.indexOf(e.path);
      if (i >= 0) g.paths.splice(i, 1);
      g.paths.unshift(e.path);
      if (g.paths.length > MAX_PATHS) g.paths.length = MAX_PATHS;
    }
    return { group: g, isNew };
  }

  get(key: string): BlockGroup | undefined {
    return this.groups.get(key);
  }

  /** Groups, most recently blocked first. */
  list(): BlockGroup[] {
    return [...this.groups.values()].sort((a, b) => b.lastSeen - a.lastSeen);
  }

  get size(): number {
    return this.groups.size;
  }

  totalBlocked(): number {
    let n = 0;
    for (const g of this.groups.values()) n += g.count;
    return n;
  }

  /** Drops groups for which `stillBlocked` says no (e.g. after the policy now allows them). Returns dropped keys. */
  prune(stillBlocked: (g: BlockGroup) => boolean): string[] {
    const dropped: string[] = [];
    for (const [k, g] of this.groups) {
      if (!stillBlocked(g)) {
        this.groups.delete(k);
        dropped.push(k);
      }
    }
    return dropped;
  }

  delete(key: string): boolean {
    return this.groups.delete(key);
  }

  clear(): void {
    this.groups.clear();
  }

  private evictOldest(): void {
    let oldest: BlockGroup | undefined;
    for (const g of this.groups.values()) if (!oldest || g.lastSeen < oldest.lastSeen) oldest = g;
    if (oldest) this.groups.delete(oldest.key);
  }
}

/** "GET /v1/x" style summary of what was seen, most frequent method first. */
export function describeSeen(g: BlockGroup): string {
  const methods = [...g.methods.entries()].sort((a, b) => b[1] - a[1]).map(([m]) => m);
  const m = methods[0] ?? '';
  const p = g.paths[0] ?? '';
  if (m === 'CONNECT' || (!p && m)) return m;
  return [m, p].filter(Boolean).join(' ');
}

function hhmm(t: number): string {
  const d = new Date(t);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

/** How the latest block arrived, when not through the proxy settings (the event's `via`), in words. */
export const VIA_WORDS: Record<Via, string> = {
  transparent: 'a client that ignores the proxy settings',
  tcp: 'raw TCP',
};

/**
 * The diagnostic text: "Caged agent blocked api.example.com:443 — GET /v1/x, 3 times, last at 12:01 (no-matching-rule)",
 * with how the latest one arrived when it did not use the proxy settings: "(no-matching-rule; a client that ignores …)".
 */
export function blockMessage(g: BlockGroup): string {
  const seen = describeSeen(g);
  const times = g.count === 1 ? 'once' : `${g.count} times`;
  const via = g.last.via ? `; ${VIA_WORDS[g.last.via]}` : '';
  return `Caged agent blocked ${g.host}:${g.port} — ${seen ? seen + ', ' : ''}${times}, last at ${hhmm(g.lastSeen)} (${g.reason}${via})`;
}

/** A reason code in words, for messages and screen readers (the code itself goes in details). */
export const REASON_WORDS: Record<string, string> = {
  allowed: 'allowed',
  'no-matching-rule': 'no rule allows it',
  'denied-by-rule': 'a deny rule matches it',
  'method-not-allowed': 'its rule does not allow this method',
  'path-not-allowed': 'its rule does not allow this path',
  'ip-literal': 'an IP address instead of a name',
  'bad-path': 'a malformed path',
  'policy-invalid': 'the policy file is invalid',
  'private-address': 'it resolves to a private address',
  'secret-detected': 'a secret was in the request',
  'secret-missing': 'the credential it needs is not set',
  'insecure-auth': 'a credential would go over plain HTTP',
  'method-refused': 'a method the proxy never forwards',
  'sni-mismatch': 'the TLS name differs from the requested host',
  'bad-request': 'a malformed request',
  'upstream-error': 'the upstream failed',
};

export function reasonWords(code: string): string {
  return REASON_WORDS[code] ?? code;
}
