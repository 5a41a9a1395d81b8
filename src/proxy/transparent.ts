// Transparent capture: clients that ignore the proxy variables. The cage's DNS (dns.ts) answers every name with
// the proxy's own address, so such a client connects straight to the proxy, on the port it meant:
//   443  TLS: the ClientHello's server name (SNI) is the target, and from there it is a CONNECT to SNI:443 in
//        all but name (connect.ts: the same plan, interception or tunnel, 403 inside, events); no SNI: refused
//        with a block event, since nothing then says where the client meant to go;
//   80   plain HTTP: each request's Host header is its target (conn.ts, as a proxy request would be).
// Nothing here decides: the same gate, the same interception, the same events as the explicit proxy.
import * as net from 'node:net';
import { performance } from 'node:perf_hooks';
import { ClientConn } from './conn';
import { handleConnect } from './connect';
import type { ConnCtx, Core } from './core';
import { startDns, type DnsServer } from './dns';
import { readClientHello } from './handshake';
import { display } from './target';
import { TcpCapture } from './tcp';

/** A client connected to the transparent TLS port: route it by the server name of its ClientHello. */
export function acceptTls(core: Core, sock: net.Socket, port: number): void {
  sock.on('error', () => sock.destroy());
  const t0 = performance.now();
  readClientHello(sock, Buffer.alloc(0), (buf, hello) => {
    if (hello.state === 'ok' && hello.sni) return handleConnect(core, sock, buf, `${display(hello.sni)}:${port}`, t0, 'transparent');
    if (buf.length === 0) return sock.destroy(); // closed (or silent) before a byte: nothing to record
    // No server name (or not TLS): the only name known is the proxy's own address, which the event names.
    const ctx: ConnCtx = { host: sock.localAddress ?? '', port, secure: true, t0, recorded: false, via: 'transparent' };
    core.decisions.recordConnect(ctx, 'block', 'sni-mismatch', undefined, undefined, hello.state === 'ok' ? 'no-sni' : hello.state === 'not-tls' ? 'not-tls' : 'bad-client-hello');
    sock.destroy();
  });
}

/** A client connected to the transparent plain-HTTP port: each request is routed by its Host header. */
export function acceptHttp(core: Core, sock: net.Socket, port: number): void {
  new ClientConn(core, sock, { host: '', port, secure: false, t0: 0, recorded: false, via: 'transparent', byHost: true });
}

export interface TransparentOptions {
  /** Where the TLS and HTTP listeners bind (default every address) and their ports (default 443, 80). */
  host?: string;
  tlsPort?: number;
  httpPort?: number;
  /** DNS responders: one per address of the proxy (each answers with its own address); port default 53. */
  dns?: Array<{ host: string; port?: number }>;
  /** Ports watched for raw TCP attempts without a rule (tcp.ts WATCHED_TCP_PORTS by default). */
  watchedTcpPorts?: number[];
}

export interface TransparentListeners {
  tlsPort: number;
  httpPort: number;
  dns: Array<{ address: string; port: number }>;
  /** The raw TCP listeners (tcp.ts). */
  tcp: TcpCapture;
  close(): Promise<void>;
}

/** Starts the transparent listeners; `track` hears every accepted socket (the proxy closes them at shutdown). */
export async function startTransparent(core: Core, o: TransparentOptions, track: (s: net.Socket) => void): Promise<TransparentListeners> {
  const host = o.host ?? '0.0.0.0';
  const tcp = new TcpCapture(core, host, track, o.watchedTcpPorts);
  const servers: net.Server[] = [];
  const dns: DnsServer[] = [];
  const listen = async (port: number, onSock: (s: net.Socket) => void): Promise<number> => {
    const server = net.createServer({ allowHalfOpen: true, noDelay: true } as net.ServerOpts, (s) => {
      track(s);
      onSock(s);
    });
    servers.push(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.removeListener('error', reject);
        resolve();
      });
    });
    server.on('error', (e) => core.error(String(e)));
    return (server.address() as net.AddressInfo).port;
  };
  const close = async () => {
    core.policy.onLoaded = undefined;
    tcp.close();
    for (const s of servers) s.close();
    await Promise.all(dns.map((d) => d.close()));
  };
  try {
    // A captured connection is for the port it came to (the client connected to "the host" on it).
    const tlsPort = await listen(o.tlsPort ?? 443, (s) => acceptTls(core, s, tlsPort));
    const httpPort = await listen(o.httpPort ?? 80, (s) => acceptHttp(core, s, httpPort));
    for (const d of o.dns ?? []) dns.push(await startDns(d.host, d.port ?? 53, tcp.noteLookup));
    core.policy.onLoaded = (p) => void tcp.sync(p);
    await tcp.sync(core.policy.current);
    return { tlsPort, httpPort, dns: dns.map((d) => ({ address: d.address, port: d.port })), tcp, close };
  } catch (e) {
    await close();
    throw e;
  }
}
