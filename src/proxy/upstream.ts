// Upstream connections: checked DNS resolution (every resolved address is classified; private, loopback and
// link-local addresses are refused unless the rule opts in; the socket connects to the address that was
// checked), pooled keep-alive agents, raw tunnels, and chaining through an optional upstream HTTP proxy.
import * as dns from 'node:dns';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { classifyAddress } from '../policy/host';

export interface ResolvedAddress {
  address: string;
  family: number;
}

/** Resolves a host name to all its addresses. The default uses the system resolver (dns.lookup). */
export type Resolver = (host: string) => Promise<ResolvedAddress[]>;

export const systemResolver: Resolver = (host) => dns.promises.lookup(host, { all: true, verbatim: true });

export class PrivateAddressError extends Error {
  readonly code = 'ECAGEDPRIVATE';
  constructor(
    readonly host: string,
    readonly address: string,
    readonly addressClass: string,
  ) {
    super(`${host} resolves to ${address} (${addressClass})`);
  }
}

export function isPrivateAddressError(e: unknown): e is PrivateAddressError {
  return !!e && (e as { code?: string }).code === 'ECAGEDPRIVATE';
}

/** Resolves and checks every address; throws PrivateAddressError unless allowPrivate. */
export async function resolveChecked(resolver: Resolver, host: string, allowPrivate: boolean): Promise<ResolvedAddress[]> {
  if (net.isIP(host)) return [{ address: host, family: net.isIP(host) }];
  const addrs = await resolver(host);
  if (!addrs || addrs.length === 0) {
    const e = new Error(`getaddrinfo ENOTFOUND ${host}`) as NodeJS.ErrnoException;
    e.code = 'ENOTFOUND';
    throw e;
  }
  if (!allowPrivate) {
    for (const a of addrs) {
      const cls = classifyAddress(a.address);
      if (cls !== 'public') throw new PrivateAddressError(host, a.address, cls);
    }
  }
  return addrs;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | ResolvedAddress[], family?: number) => void;

/** A net.connect `lookup` function that only ever hands out checked addresses. */
function checkedLookup(resolver: Resolver, allowPrivate: boolean) {
  return (hostname: string, options: { all?: boolean; family?: number } | number, callback: LookupCallback): void => {
    const opts = typeof options === 'object' && options ? options : {};
    resolveChecked(resolver, hostname, allowPrivate).then(
      (addrs) => {
        let list = addrs;
        if (opts.family === 4 || opts.family === 6) {
          list = addrs.filter((a) => a.family === opts.family);
          if (list.length === 0) list = addrs;
        }
        if (opts.all) callback(null, list);
        else callback(null, list[0].address, list[0].family);
      },
      (err) => callback(err, ''),
    );
  };
}

export interface ProxyUrl {
  host: string;
  port: number;
}

export function parseProxyUrl(s: string): ProxyUrl {
  const u = new URL(s);
  if (u.protocol !== 'http:') throw new Error('the upstream proxy must be an http:// URL');
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 80) };
}

/** Opens a CONNECT tunnel through an HTTP proxy. */
export function connectViaProxy(proxy: ProxyUrl, host: string, port: number, timeoutMs = 15000): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: proxy.host, port: proxy.port });
    const authority = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    let buf: Buffer = Buffer.alloc(0);
    const fail = (e: Error) => {
      sock.destroy();
      reject(e);
    };
    const timer = setTimeout(() => fail(new Error('upstream proxy CONNECT timed out')), timeoutMs);
    sock.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    sock.once('connect', () => sock.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`));
    const onData = (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (buf.length > 16384) fail(new Error('upstream proxy sent an oversized CONNECT response'));
        return;
      }
      clearTimeout(timer);
      sock.removeListener('data', onData);
      sock.pause();
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(buf.toString('latin1', 0, Math.min(end, 64)));
      if (!status || status[1] !== '200') {
        const e = new Error(`upstream proxy refused CONNECT ${authority}: ${status ? status[1] : 'bad response'}`) as NodeJS.ErrnoException;
        e.code = 'ECAGEDUPSTREAMPROXY';
        return fail(e);
      }
      if (end + 4 < buf.length) sock.unshift(buf.subarray(end + 4));
      sock.removeAllListeners('error');
      resolve(sock);
    };
    sock.on('data', onData);
  });
}

export interface UpstreamOptions {
  resolver: Resolver;
  /** Extra PEM CA certificates trusted for upstream TLS (added to the system roots). */
  upstreamCaPem?: string;
  upstreamProxy?: ProxyUrl;
}

export interface UpstreamRequest {
  secure: boolean;
  /** Canonical host: a name, or an IP literal without brackets. */
  host: string;
  port: number;
  method: string;
  path: string;
  /** Flat [name, value, name, value, ...] list; must contain Host. */
  headers: string[];
  allowPrivate: boolean;
}

const AGENT_OPTS = { keepAlive: true, keepAliveMsecs: 15000, maxSockets: 512, maxFreeSockets: 256, scheduling: 'lifo' as const, timeout: 120000 };

export class Upstream {
  readonly secureContext: tls.SecureContext;
  private readonly http: http.Agent[];
  private readonly https: https.Agent[];
  private readonly lookups: ReturnType<typeof checkedLookup>[];

  constructor(private readonly o: UpstreamOptions) {
    const ca = [...tls.rootCertificates];
    if (o.upstreamCaPem) ca.push(o.upstreamCaPem);
    // One context, built once: passing `ca` per connection would re-parse ~150 roots every time.
    this.secureContext = tls.createSecureContext({ ca });
    this.lookups = [checkedLookup(o.resolver, false), checkedLookup(o.resolver, true)];
    const proxy = o.upstreamProxy;
    this.http = [0, 1].map((i) => new http.Agent({ ...AGENT_OPTS, lookup: this.lookups[i] } as http.AgentOptions));
    this.https = [0, 1].map((i) => {
      const agent = new https.Agent({ ...AGENT_OPTS, lookup: this.lookups[i], secureContext: this.secureContext } as https.AgentOptions);
      if (proxy) {
        const allowPrivate = i === 1;
        (agent as any).createConnection = (options: tls.ConnectionOptions & { host: string; port: number }, cb: (err: Error | null, s?: net.Socket) => void) => {
          resolveChecked(o.resolver, options.host, allowPrivate)
            .then(() => connectViaProxy(proxy, options.host, options.port))
            .then((raw) => {
              const s = tls.connect({ socket: raw, servername: options.servername, secureContext: this.secureContext, ALPNProtocols: ['http/1.1'] });
              cb(null, s);
            }, (err) => cb(err));
          return undefined;
        };
      }
      return agent;
    });
  }

  /**
   * Plain HTTP through an upstream proxy shares pooled sockets to the proxy across hosts, so the address
   * check must run per request: returns that check (await it before request()), or undefined when the
   * check happens at connection time anyway.
   */
  precheck(r: Pick<UpstreamRequest, 'secure' | 'host' | 'allowPrivate'>): Promise<unknown> | undefined {
    if (!this.o.upstreamProxy || r.secure) return undefined;
    return resolveChecked(this.o.resolver, r.host, r.allowPrivate);
  }

  /** Starts an upstream request. Errors (including PrivateAddressError) arrive as 'error' events. */
  request(r: UpstreamRequest): http.ClientRequest {
    const idx = r.allowPrivate ? 1 : 0;
    const proxy = this.o.upstreamProxy;
    if (proxy && !r.secure) {
      // Plain HTTP through the upstream proxy: absolute-form, after our own address check.
      const authority = `${r.host.includes(':') ? `[${r.host}]` : r.host}:${r.port}`;
      const req = http.request({
        host: proxy.host,
        port: proxy.port,
        method: r.method,
        path: `http://${authority}${r.path}`,
        headers: r.headers as unknown as http.OutgoingHttpHeaders,
        agent: this.http[idx],
        setHost: false,
      });
      return req;
    }
    const opts: https.RequestOptions = {
      host: r.host,
      port: r.port,
      method: r.method,
      path: r.path,
      headers: r.headers as unknown as http.OutgoingHttpHeaders,
      agent: r.secure ? this.https[idx] : this.http[idx],
      setHost: false,
    };
    if (r.secure) opts.servername = net.isIP(r.host) ? '' : r.host;
    return (r.secure ? https : http).request(opts);
  }

  /** A raw TCP connection to host:port (checked), or a CONNECT tunnel through the upstream proxy. */
  async openTunnel(host: string, port: number, allowPrivate: boolean, timeoutMs = 15000): Promise<net.Socket> {
    const proxy = this.o.upstreamProxy;
    if (proxy) {
      await resolveChecked(this.o.resolver, host, allowPrivate);
      return connectViaProxy(proxy, host, port, timeoutMs);
    }
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host, port, lookup: this.lookups[allowPrivate ? 1 : 0] as any });
      const timer = setTimeout(() => {
        sock.destroy();
        reject(Object.assign(new Error(`connect to ${host}:${port} timed out`), { code: 'ETIMEDOUT' }));
      }, timeoutMs);
      sock.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      sock.once('connect', () => {
        clearTimeout(timer);
        sock.removeAllListeners('error');
        resolve(sock);
      });
    });
  }

  destroy(): void {
    for (const a of [...this.http, ...this.https]) a.destroy();
  }
}
