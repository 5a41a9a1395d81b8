// What each upstream speaks (ALPN), so that an intercepted session offers the agent `h2` only when the upstream
// does: a bounded cache per pool key (scheme, address check, host, port) with a time to live, filled from
// upstream handshakes (h2upstream.ts). A miss costs one TLS connect to the checked address offering
// [h2, http/1.1], and that connection is kept: an h2 session for the first streams, or an HTTP/1.1 pooled
// connection for the first request.
export type UpstreamProto = 'h2' | 'http/1.1';

/** Entries kept, and how long one stands (a server may change what it offers, e.g. behind a new load balancer). */
const MAX_ENTRIES = 4096;
const TTL_MS = 10 * 60 * 1000;

export function alpnKey(host: string, port: number, allowPrivate: boolean): string {
  return `${allowPrivate ? 1 : 0}|${host}|${port}`;
}

export class AlpnCache {
  private readonly map = new Map<string, { proto: UpstreamProto; until: number }>();

  constructor(
    private readonly max = MAX_ENTRIES,
    private readonly ttlMs = TTL_MS,
  ) {}

  get(key: string, now = Date.now()): UpstreamProto | undefined {
    const e = this.map.get(key);
    if (!e) return undefined;
    if (e.until <= now) {
      this.map.delete(key);
      return undefined;
    }
    return e.proto;
  }

  set(key: string, proto: UpstreamProto, now = Date.now()): void {
    this.map.delete(key);
    this.map.set(key, { proto, until: now + this.ttlMs });
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value as string);
  }

  get size(): number {
    return this.map.size;
  }
}
