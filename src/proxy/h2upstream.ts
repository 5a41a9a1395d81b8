// Upstream HTTP/2 sessions for intercepted h2 streams (h2.ts): one node:http2 client session per pool key (host,
// port, address check), carrying many streams, over a TLS connection from the upstream pool (upstream.ts: the
// checked, resolved address is the one connected to; the server is verified against the system roots and the
// proxy's upstream CA; the server name is the host). A session that gets GOAWAY, fails or closes is forgotten and
// the next stream opens a new one. Each handshake tells the ALPN cache (alpn.ts) what the upstream speaks; one
// that settles on HTTP/1.1 goes to the HTTP/1.1 pool instead.
import * as http2 from 'node:http2';
import type * as tls from 'node:tls';
import { AlpnCache, alpnKey, type UpstreamProto } from './alpn';
import { MAX_HEAD } from './http1';
import type { UpstreamPool } from './upstream';

const H2_AND_HTTP1 = ['h2', 'http/1.1'];

/** What the proxy's client sessions accept from upstream servers. */
const CLIENT_SETTINGS: http2.ClientSessionOptions = {
  maxHeaderListPairs: 256,
  maxSessionMemory: 32, // MB
  settings: { enablePush: false, maxHeaderListSize: 2 * MAX_HEAD, initialWindowSize: 1024 * 1024 },
};

/** An idle session (no streams) is closed after this long. */
const IDLE_MS = 30000;

export class H2Upstreams {
  private readonly sessions = new Map<string, http2.ClientHttp2Session>();
  private readonly opening = new Map<string, Promise<http2.ClientHttp2Session | undefined>>();
  private closed = false;

  constructor(
    private readonly pool: UpstreamPool,
    readonly alpn: AlpnCache,
  ) {}

  /** What host:port speaks, when known. */
  known(host: string, port: number, allowPrivate: boolean): UpstreamProto | undefined {
    return this.alpn.get(alpnKey(host, port, allowPrivate));
  }

  /**
   * Learns what host:port speaks by connecting (offering h2 and http/1.1), keeping the connection: an h2 session
   * here, an HTTP/1.1 connection in the pool. Resolves 'http/1.1' (offer the agent http/1.1 only) on any failure: the
   * request that follows gets the failure in its own answer.
   */
  async probe(host: string, port: number, allowPrivate: boolean): Promise<UpstreamProto> {
    try {
      return (await this.session(host, port, allowPrivate)) ? 'h2' : 'http/1.1';
    } catch {
      return 'http/1.1';
    }
  }

  /** The session for host:port (an open one, or a new one); undefined when the upstream settled on HTTP/1.1. */
  session(host: string, port: number, allowPrivate: boolean): Promise<http2.ClientHttp2Session | undefined> {
    const key = alpnKey(host, port, allowPrivate);
    const s = this.sessions.get(key);
    if (s && !s.closed && !s.destroyed) return Promise.resolve(s);
    let p = this.opening.get(key);
    if (!p) {
      p = this.open(key, host, port, allowPrivate).finally(() => this.opening.delete(key));
      this.opening.set(key, p);
    }
    return p;
  }

  private async open(key: string, host: string, port: number, allowPrivate: boolean): Promise<http2.ClientHttp2Session | undefined> {
    if (this.closed) throw Object.assign(new Error('the proxy is shutting down'), { code: 'ECAGEDCLOSED' });
    const sock: tls.TLSSocket = await this.pool.connectTls(host, port, allowPrivate, H2_AND_HTTP1);
    if (sock.alpnProtocol !== 'h2') {
      this.alpn.set(key, 'http/1.1');
      this.pool.adopt(sock, host, port, allowPrivate);
      return undefined;
    }
    this.alpn.set(key, 'h2');
    const session = http2.connect(`https://${host}:${port}`, { ...CLIENT_SETTINGS, createConnection: () => sock });
    const forget = () => {
      if (this.sessions.get(key) === session) this.sessions.delete(key);
    };
    session.on('error', forget);
    session.on('goaway', forget);
    session.on('close', forget);
    session.setTimeout(IDLE_MS, () => {
      forget();
      session.close();
    });
    this.sessions.set(key, session);
    return session;
  }

  destroy(): void {
    this.closed = true;
    for (const s of this.sessions.values()) s.destroy();
    this.sessions.clear();
  }
}
