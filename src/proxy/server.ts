// The egress proxy: an explicit HTTP forward proxy (absolute-form requests and CONNECT) that decides every
// request with the policy, intercepts TLS with leaf certificates minted under the cage CA, tunnels
// `intercept: false` hosts after checking the ClientHello's server name, refuses private addresses, injects
// credentials, scans for leaked secrets and prints one JSON event per decision.
//
// This file is the listener (accept, track sockets, close) and the wiring of the parts, one file per layer:
//   conn.ts         one client connection: the HTTP/1.1 exchanges (plain, or inside a CONNECT)
//   connect.ts      CONNECT → planConnect() → reject | tunnel.ts | intercept.ts
//   gate.ts         the final verdict of a request or a CONNECT (pure)
//   policyState.ts  the policy in force, reloads, decisions and their memo
//   record.ts       the one decision event per request
//   h2.ts           the streams of an intercepted HTTP/2 session; h2upstream.ts its upstream sessions, alpn.ts
//                   what each upstream speaks
//   upstream.ts     checked resolution, the upstream pool, tunnels; certs.ts the leaf cache
// startProxy() runs it in-process (tests, benchmarks); main.ts is the command-line wrapper.
import * as net from 'node:net';
import type { Writable } from 'node:stream';
import type { ProxyEvent } from '../policy/events';
import { LeafMinter } from '../pki/leaf';
import { CertCache } from './certs';
import { ClientConn } from './conn';
import { handleConnect } from './connect';
import type { Core } from './core';
import { EventLog } from './events';
import { handleControl, listenControl, type ControlReply, type ControlRequest } from './control';
import { HoldQueue } from './hold';
import { Temporaries } from './temporary';
import * as crypto from 'node:crypto';
import { PolicyState, type ReloadResult } from './policyState';
import { DecisionRecorder } from './record';
import { display } from './target';
import { parseProxyUrl } from './chain';
import { systemResolver, type Resolver } from './resolve';
import { startTransparent, type TransparentListeners, type TransparentOptions } from './transparent';
import { UpstreamPool } from './upstream';
import { AlpnCache } from './alpn';
import { H2Upstreams } from './h2upstream';
import type * as http2 from 'node:http2';

export type { ReloadResult } from './policyState';

export interface ProxyOptions {
  /** Policy file path (read at start and on reload()). */
  policyFile?: string;
  /** Policy text, when there is no file (tests). reload(text) replaces it. */
  policyText?: string;
  caCertPem: string;
  caKeyPem: string;
  /** Listen address; default 127.0.0.1 and an ephemeral port. */
  host?: string;
  port?: number;
  /** Extra CA certificate(s) (PEM) trusted for upstream TLS besides the system roots. */
  upstreamCaPem?: string;
  /** http://host:port of a proxy to send all upstream traffic through. */
  upstreamProxy?: string;
  /** Name resolution for upstream connections (every result is checked). Default: dns.lookup. */
  resolver?: Resolver;
  /** Where JSON event lines go; default process.stdout, null for none. */
  events?: Writable | null;
  /** Called with every event object (in-process consumers, tests). */
  onEvent?: (e: ProxyEvent) => void;
  /** Where CAGED_SECRET_<NAME> values are read from; default process.env. */
  env?: NodeJS.ProcessEnv;
  /** How many leading bytes of a request body the data-loss guard scans. Default 64 KiB. */
  dlpBodyBytes?: number;
  /** Leaf contexts kept in the LRU. Default 2000. */
  certCacheSize?: number;
  /** Client keep-alive idle timeout (ms). Default 75 s. */
  keepAliveTimeoutMs?: number;
  /** A unix socket path for the control channel (control.ts); none by default. */
  controlSocket?: string;
  /** Transparent capture (transparent.ts): TLS by SNI, HTTP by Host, and the cage's DNS. Default off. */
  transparent?: TransparentOptions;
}

export interface RunningProxy {
  address: { host: string; port: number };
  /** http://HOST:PORT, ready to use as a proxy URL. */
  url: string;
  reload(text?: string): ReloadResult;
  /** The control channel in-process (what the socket carries). */
  control(req: ControlRequest): ControlReply;
  close(graceMs?: number): Promise<void>;
  /** The transparent listeners, when started. */
  transparent?: { tlsPort: number; httpPort: number; dns: Array<{ address: string; port: number }>; tcpPorts(): number[] };
  /** connections: client connections being served; sockets: accepted sockets still open (any state). */
  stats(): { connections: number; sockets: number; certsMinted: number; certsCached: number; policyHash: string | null; held: number };
}

export async function startProxy(opts: ProxyOptions): Promise<RunningProxy> {
  const log = new EventLog(opts.events === undefined ? process.stdout : opts.events, opts.onEvent);
  const certs = new CertCache(new LeafMinter(opts.caCertPem, opts.caKeyPem), opts.certCacheSize ?? 2000);
  const pool = new UpstreamPool({
    resolver: opts.resolver ?? systemResolver,
    upstreamCaPem: opts.upstreamCaPem,
    upstreamProxy: opts.upstreamProxy ? parseProxyUrl(opts.upstreamProxy) : undefined,
  });
  const policy = new PolicyState(log, opts.policyFile, opts.policyText);
  const hold = new HoldQueue(log, () => policy.current);
  const temporaries = new Temporaries(policy);
  const controlDeps = { policy, hold, temporaries, boot: crypto.randomBytes(6).toString('hex') };
  const started = Date.now();
  const error = (message: string) => log.emit({ time: log.now(), type: 'error', message });

  const conns = new Set<ClientConn>();
  const h2Sessions = new Set<http2.ServerHttp2Session>();
  const h2 = new H2Upstreams(pool, new AlpnCache());
  const tunnels = new Set<net.Socket>();
  const keepAliveMs = opts.keepAliveTimeoutMs ?? 75000;
  let coarse = Date.now();
  const idleSweep = setInterval(
    () => {
      coarse = Date.now();
      for (const c of conns) c.sweep(coarse);
    },
    Math.min(Math.max(keepAliveMs / 8, 50), 5000),
  );
  idleSweep.unref();
  const core: Core = {
    policy,
    decisions: new DecisionRecorder(log),
    hold,
    temporaries,
    error,
    env: opts.env ?? process.env,
    dlpBytes: opts.dlpBodyBytes ?? 64 * 1024,
    pool,
    h2,
    h2Sessions,
    certs,
    keepAliveMs,
    coarseNow: () => coarse,
    conns,
    tunnels,
    healthBody: () => JSON.stringify({ ok: true, policy: policy.hash, policyValid: policy.valid, uptime: Math.round((Date.now() - started) / 1000) }),
    connect: (sock, head, authority, t0) => handleConnect(core, sock, head, authority, t0),
  };

  // ---------------------------------------------------------------- listener
  const sockets = new Set<net.Socket>(); // every accepted connection
  const track = (sock: net.Socket) => {
    sockets.add(sock);
    sock.once('close', () => sockets.delete(sock));
  };
  const server = net.createServer({ allowHalfOpen: true, noDelay: true } as net.ServerOpts, (sock) => {
    track(sock);
    new ClientConn(core, sock, undefined);
  });
  server.maxConnections = 20000;

  policy.reload();
  policy.onChange = () => hold.reevaluate();
  const controlServer = opts.controlSocket ? await listenControl(opts.controlSocket, controlDeps, error) : undefined;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  server.on('error', (e) => error(String(e)));
  let captured: TransparentListeners | undefined;
  try {
    if (opts.transparent) captured = await startTransparent(core, opts.transparent, track);
  } catch (e) {
    server.close();
    throw e;
  }
  const addr = server.address() as net.AddressInfo;
  const address = { host: addr.address, port: addr.port };
  const url = `http://${display(addr.address)}:${addr.port}`;
  log.emit({ time: log.now(), type: 'listening', address: `${display(addr.address)}:${addr.port}` });
  log.flush();

  let closing: Promise<void> | undefined;
  function close(graceMs = 5000): Promise<void> {
    closing ??= new Promise<void>((resolve) => {
      server.close();
      controlServer?.close();
      temporaries.close();
      hold.close();
      void captured?.close();
      for (const c of [...conns]) c.shutdown();
      for (const s of [...h2Sessions]) s.close(); // GOAWAY: streams in flight finish
      const timers: { poll?: NodeJS.Timeout; deadline?: NodeJS.Timeout } = {};
      const finish = () => {
        clearInterval(timers.poll);
        clearTimeout(timers.deadline);
        for (const c of [...conns]) c.close();
        for (const s of [...h2Sessions]) s.destroy();
        for (const s of sockets) s.destroy();
        clearInterval(idleSweep);
        pool.destroy();
        h2.destroy();
        log.emit({ time: log.now(), type: 'shutdown' });
        log.flush();
        resolve();
      };
      const busy = () => tunnels.size > 0 || h2Sessions.size > 0 || [...conns].some((c) => !c.idle);
      if (!busy()) return finish();
      timers.deadline = setTimeout(finish, graceMs);
      timers.poll = setInterval(() => {
        for (const c of [...conns]) if (c.idle) c.shutdown();
        if (!busy()) finish();
      }, 50);
    });
    return closing;
  }

  return {
    address,
    url,
    transparent: captured && { tlsPort: captured.tlsPort, httpPort: captured.httpPort, dns: captured.dns, tcpPorts: () => captured.tcp.ports },
    reload: (text?: string) => policy.reload(text),
    control: (req: ControlRequest) => handleControl(controlDeps, req),
    close,
    stats: () => ({ connections: conns.size, sockets: sockets.size, certsMinted: certs.minted, certsCached: certs.size, policyHash: policy.hash, held: hold.size }),
  };
}
