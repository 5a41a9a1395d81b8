// Upstream connections: a keep-alive pool of raw TCP/TLS sockets for the HTTP relay (with TLS session
// resumption), and raw tunnels. Names resolve through resolve.ts (every address checked); with an upstream
// proxy, connections go through chain.ts.
import * as net from 'node:net';
import * as tls from 'node:tls';
import { CIPHERS, STREAM_HWM } from './certs';
import { connectViaProxy, type ProxyUrl } from './chain';
import { readInto, type ChunkHandler } from './readbuf';
import { checkedLookup, resolveChecked, type Resolver } from './resolve';

/** Receives the events of a pooled upstream socket while it serves one exchange. */
export interface UpOwner {
  onUpData(d: Buffer): void;
  /** The socket ended or closed (or failed: err set). */
  onUpClose(err?: NodeJS.ErrnoException): void;
}

/**
 * Where the chunks of a TLS upstream socket that reads into the shared buffer go; set by the UpConn that
 * takes the socket (until then, bytes are unsolicited and end the connection).
 */
const SINK = Symbol('caged.upstreamSink');
interface SinkSlot {
  fn?: ChunkHandler;
}

/** A pooled upstream connection. One permanent listener set per socket; `owner` routes its events. */
export class UpConn {
  owner: UpOwner | undefined;
  idleSince = 0;
  /** Served at least one exchange before the current one. */
  reused = false;
  dead = false;

  constructor(
    readonly sock: net.Socket,
    readonly key: string,
    private readonly pool: UpstreamPool,
  ) {
    // `d` may be a view of the shared read buffer (readbuf.ts); the owner copies what it keeps.
    const onData = (d: Buffer) => {
      if (this.owner) this.owner.onUpData(d);
      else this.destroy(); // unsolicited bytes on an idle connection: never reuse it
    };
    const slot = (sock as unknown as Record<symbol, SinkSlot | undefined>)[SINK];
    if (slot) slot.fn = onData;
    else sock.on('data', onData);
    sock.resume(); // sockets from connectViaProxy arrive paused
    const gone = (err?: NodeJS.ErrnoException) => {
      if (this.dead) return;
      this.dead = true;
      this.pool.forget(this);
      const o = this.owner;
      this.owner = undefined;
      o?.onUpClose(err);
    };
    sock.on('error', (e: NodeJS.ErrnoException) => {
      gone(e);
      sock.destroy();
    });
    sock.on('end', () => {
      gone();
      sock.end();
    });
    sock.on('close', () => gone());
  }

  write(b: Buffer | string): boolean {
    return this.sock.write(b);
  }

  destroy(): void {
    this.dead = true;
    this.owner = undefined;
    this.pool.forget(this);
    this.sock.destroy();
  }
}

export interface UpstreamOptions {
  resolver: Resolver;
  /** Extra PEM CA certificates trusted for upstream TLS (added to the system roots). */
  upstreamCaPem?: string;
  upstreamProxy?: ProxyUrl;
  /** Idle pooled connections older than this are closed. Default 15 s. */
  idleMs?: number;
  connectTimeoutMs?: number;
}

const MAX_IDLE_PER_KEY = 256;
const HTTP1 = ['http/1.1'];
/** Connections to one key being opened at once (see acquire). */
const MAX_CONNECTING_PER_KEY = 6;
/** A connect taking longer than this no longer counts toward MAX_CONNECTING_PER_KEY. */
const SLOW_CONNECT_MS = 1000;

/** The pool's key: requests and preconnects for the same scheme, address check, host and port meet here. */
function poolKey(secure: boolean, host: string, port: number, allowPrivate: boolean): string {
  return `${secure ? 's' : 'p'}${allowPrivate ? 1 : 0}|${host}|${port}`;
}

/** What a request waiting for an upstream connection gets when the pool closes. */
function shuttingDown(): NodeJS.ErrnoException {
  return Object.assign(new Error('the proxy is shutting down'), { code: 'ECAGEDCLOSED' });
}

type AcquireCallback = (err: NodeJS.ErrnoException | null, c?: UpConn) => void;

interface KeyState {
  key: string;
  secure: boolean;
  host: string;
  port: number;
  allowPrivate: boolean;
  /** Requests waiting for a connection, first come first served. */
  waiters: AcquireCallback[];
  /** Connects under way (for waiters, or ahead of a request). */
  connecting: number;
}

/** Upstream servers whose latest TLS session is kept for resumption (an entry is ~1-2 KB: it holds the leaf). */
const MAX_SESSIONS = 256;

/**
 * The latest TLS session (TLS 1.3 ticket or TLS 1.2 session) of each upstream server name and port, least
 * recently stored first out. A new connection to a server already seen resumes: no certificate chain is
 * sent or verified again (Node still checks the host name against the certificate kept in the session),
 * and the server skips its signature. A server that declines the ticket simply runs a full handshake.
 */
export class SessionCache {
  private readonly map = new Map<string, Buffer>();
  constructor(private readonly max = MAX_SESSIONS) {}

  get(key: string): Buffer | undefined {
    return this.map.get(key);
  }

  set(key: string, session: Buffer): void {
    this.map.delete(key);
    this.map.set(key, session);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value as string);
  }

  delete(key: string): void {
    this.map.delete(key);
  }

  get size(): number {
    return this.map.size;
  }
}

export class UpstreamPool {
  readonly secureContext: tls.SecureContext;
  readonly sessions = new SessionCache();
  private readonly idle = new Map<string, UpConn[]>();
  /** Keys with requests waiting for a connection or connects under way. */
  private readonly pending = new Map<string, KeyState>();
  private readonly lookups: ReturnType<typeof checkedLookup>[];
  private readonly sweep: NodeJS.Timeout;
  private readonly idleMs: number;
  private closed = false;
  private lastKey = { secure: false, host: '', port: 0, allowPrivate: false, key: '' };

  constructor(private readonly o: UpstreamOptions) {
    const ca = [...tls.rootCertificates];
    if (o.upstreamCaPem) ca.push(o.upstreamCaPem);
    // One context, built once: passing `ca` per connection would re-parse ~150 roots every time.
    this.secureContext = tls.createSecureContext({ ca, ciphers: CIPHERS });
    this.lookups = [checkedLookup(o.resolver, false), checkedLookup(o.resolver, true)];
    this.idleMs = o.idleMs ?? 15000;
    this.sweep = setInterval(() => this.sweepIdle(), Math.max(1000, this.idleMs / 3));
    this.sweep.unref();
  }

  private sweepIdle(): void {
    const cutoff = Date.now() - this.idleMs;
    for (const list of this.idle.values()) {
      for (const c of list.filter((x) => x.idleSince < cutoff)) c.destroy();
    }
  }

  /**
   * A connection for (secure, host, port), checked against private addresses unless allowPrivate.
   * Calls back synchronously when an idle pooled connection is available. Otherwise the request waits for
   * the first connection of that key to become free: one it opened itself, one opened earlier (at CONNECT,
   * or for another request that got served meanwhile), or one another exchange released. At most
   * MAX_CONNECTING_PER_KEY connections to one key are being opened at a time, so a burst of short requests
   * reuses connections as they free up instead of paying a TLS handshake each, and the connections opened
   * after the first can resume its TLS session. Waits are short: a connect in progress ends in one
   * handshake, another starts as soon as one ends while requests are still waiting, and a connect still
   * under way after SLOW_CONNECT_MS stops counting, so a stalled server does not queue requests behind its
   * timeouts.
   */
  acquire(secure: boolean, host: string, port: number, allowPrivate: boolean, cb: AcquireCallback): void {
    // A keep-alive client asks for the same key request after request: reuse the last key string.
    const k = this.lastKey;
    if (k.secure !== secure || k.host !== host || k.port !== port || k.allowPrivate !== allowPrivate) {
      this.lastKey = { secure, host, port, allowPrivate, key: poolKey(secure, host, port, allowPrivate) };
    }
    const key = this.lastKey.key;
    const list = this.idle.get(key);
    if (list) {
      while (list.length > 0) {
        const c = list.pop()!;
        if (c.dead || c.sock.destroyed) continue;
        c.reused = true;
        return cb(null, c);
      }
    }
    if (this.closed) return cb(shuttingDown());
    const st = this.keyState(key, secure, host, port, allowPrivate);
    st.waiters.push(cb);
    this.fill(st);
  }

  /**
   * Opens a connection ahead of the first request (e.g. while the client's TLS handshake with the proxy
   * runs), unless one is idle or already being opened. A failure goes to a request waiting by then, if any.
   */
  preconnect(secure: boolean, host: string, port: number, allowPrivate: boolean): void {
    if (this.closed) return;
    const key = poolKey(secure, host, port, allowPrivate);
    if ((this.idle.get(key)?.length ?? 0) > 0 || (this.pending.get(key)?.connecting ?? 0) > 0) return;
    this.open(this.keyState(key, secure, host, port, allowPrivate));
  }

  private keyState(key: string, secure: boolean, host: string, port: number, allowPrivate: boolean): KeyState {
    let st = this.pending.get(key);
    if (!st) this.pending.set(key, (st = { key, secure, host, port, allowPrivate, waiters: [], connecting: 0 }));
    return st;
  }

  /** Starts connects while requests wait and fewer than MAX_CONNECTING_PER_KEY are under way. */
  private fill(st: KeyState): void {
    while (!this.closed && st.connecting < Math.min(MAX_CONNECTING_PER_KEY, st.waiters.length)) this.open(st);
  }

  private open(st: KeyState): void {
    st.connecting++;
    let counted = true;
    const uncount = () => {
      if (!counted) return false;
      counted = false;
      st.connecting--;
      return true;
    };
    // A connect still under way after SLOW_CONNECT_MS (a stalled server, a lost SYN) stops counting toward
    // the limit: requests waiting behind it get connects of their own instead of waiting out its timeout.
    const slow = setTimeout(() => uncount() && this.fill(st), SLOW_CONNECT_MS);
    slow.unref();
    this.connect(st.secure, st.host, st.port, st.allowPrivate).then(
      (sock) => {
        clearTimeout(slow);
        uncount();
        const c = new UpConn(sock, st.key, this);
        const w = st.waiters.shift();
        if (w) w(null, c);
        else this.release(c);
        this.settle(st);
      },
      (err: NodeJS.ErrnoException) => {
        clearTimeout(slow);
        uncount();
        // Each waiting request gets its own attempt: the first one gets this failure, the next a new connect.
        st.waiters.shift()?.(err);
        this.settle(st);
      },
    );
  }

  /** After a connect ended: more connects for requests still waiting, or forget the key. */
  private settle(st: KeyState): void {
    this.fill(st);
    if (st.connecting === 0 && st.waiters.length === 0 && this.pending.get(st.key) === st) this.pending.delete(st.key);
  }

  /** Back to the pool after a complete exchange: to the first request waiting for this key, or idle. */
  release(c: UpConn): void {
    c.owner = undefined;
    if (c.dead || this.closed || c.sock.destroyed) return c.destroy();
    // A relay may have paused reading for back-pressure; an idle pooled socket must notice a close.
    if (c.sock.isPaused()) c.sock.resume();
    // (Keep-alive traffic in steady state never waits: skip the lookup when nobody does.)
    const w = this.pending.size > 0 ? this.pending.get(c.key)?.waiters.shift() : undefined;
    if (w) {
      c.reused = true;
      return w(null, c);
    }
    let list = this.idle.get(c.key);
    if (!list) this.idle.set(c.key, (list = []));
    if (list.length >= MAX_IDLE_PER_KEY) return c.destroy();
    c.idleSince = Date.now();
    list.push(c);
  }

  forget(c: UpConn): void {
    const list = this.idle.get(c.key);
    if (!list) return;
    const i = list.indexOf(c);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.idle.delete(c.key);
  }

  /**
   * A TLS connection to host:port (checked) offering `alpn` (e.g. [h2, http/1.1]), for h2upstream.ts: a plain
   * socket (no shared read buffer), since node:http2 reads it itself. Its session ticket is kept as for the pool's.
   */
  connectTls(host: string, port: number, allowPrivate: boolean, alpn: string[]): Promise<tls.TLSSocket> {
    return this.connect(true, host, port, allowPrivate, alpn) as Promise<tls.TLSSocket>;
  }

  /** Takes a TLS connection that settled on HTTP/1.1 (connectTls) into the pool, for the next request to its key. */
  adopt(sock: net.Socket, host: string, port: number, allowPrivate: boolean): void {
    this.release(new UpConn(sock, poolKey(true, host, port, allowPrivate), this));
  }

  private async connect(secure: boolean, host: string, port: number, allowPrivate: boolean, alpn: string[] = HTTP1): Promise<net.Socket> {
    const raw = this.o.upstreamProxy ? await this.viaProxy(host, port, allowPrivate) : undefined;
    const timeoutMs = this.o.connectTimeoutMs ?? 15000;
    return new Promise((resolve, reject) => {
      let sock: net.Socket;
      const servername = net.isIP(host) ? undefined : host;
      // Sessions are only ever offered to the server name (and port) they came from.
      const sessionKey = `${host}|${port}`;
      if (secure) {
        const session = this.sessions.get(sessionKey);
        sock = raw
          ? tls.connect({ socket: raw, servername, session, secureContext: this.secureContext, ALPNProtocols: alpn, highWaterMark: STREAM_HWM } as tls.ConnectionOptions)
          : tls.connect({ host, port, servername, session, secureContext: this.secureContext, ALPNProtocols: alpn, highWaterMark: STREAM_HWM, lookup: this.lookups[allowPrivate ? 1 : 0] as any } as tls.ConnectionOptions);
        // Every ticket the server sends replaces the last one: the newest is the one most likely accepted.
        sock.on('session', (s: Buffer) => this.sessions.set(sessionKey, s));
        const slot: SinkSlot = {};
        if (alpn.length === 1 && readInto(sock, (d) => (slot.fn ? slot.fn(d) : sock.destroy()))) (sock as unknown as Record<symbol, SinkSlot>)[SINK] = slot;
      } else sock = raw ?? net.connect({ host, port, lookup: this.lookups[allowPrivate ? 1 : 0] as any });
      const ready = secure ? 'secureConnect' : 'connect';
      const timer = setTimeout(() => fail(Object.assign(new Error(`connect to ${host}:${port} timed out`), { code: 'ETIMEDOUT' })), timeoutMs);
      const fail = (e: Error) => {
        clearTimeout(timer);
        sock.destroy();
        // A handshake that failed never offers that session again.
        if (secure) this.sessions.delete(sessionKey);
        reject(e);
      };
      sock.once('error', fail);
      const ok = () => {
        clearTimeout(timer);
        sock.removeListener('error', fail);
        sock.setNoDelay(true);
        resolve(sock);
      };
      if (raw && !secure) ok();
      else sock.once(ready, ok);
    });
  }

  private async viaProxy(host: string, port: number, allowPrivate: boolean): Promise<net.Socket> {
    await resolveChecked(this.o.resolver, host, allowPrivate);
    return connectViaProxy(this.o.upstreamProxy!, host, port, this.o.connectTimeoutMs ?? 15000);
  }

  /** A raw TCP connection to host:port (checked), or a CONNECT tunnel through the upstream proxy. */
  async openTunnel(host: string, port: number, allowPrivate: boolean): Promise<net.Socket> {
    return this.connect(false, host, port, allowPrivate);
  }

  destroy(): void {
    this.closed = true;
    clearInterval(this.sweep);
    for (const st of [...this.pending.values()]) {
      for (const w of st.waiters.splice(0)) w(shuttingDown());
    }
    this.pending.clear();
    for (const list of [...this.idle.values()]) for (const c of [...list]) c.destroy();
    this.idle.clear();
  }
}
