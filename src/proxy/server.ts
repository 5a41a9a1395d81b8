// The egress proxy core: an explicit HTTP forward proxy (absolute-form requests and CONNECT) that decides
// every request with the policy engine, intercepts TLS with leaf certificates minted under the cage CA,
// tunnels `intercept: false` hosts after checking the ClientHello's SNI, refuses private addresses,
// injects credentials, scans for leaked secrets and prints one JSON event per decision.
//
// startProxy() runs it in-process (tests, benchmarks); main.ts is the command-line wrapper.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Writable } from 'node:stream';
import { performance } from 'node:perf_hooks';
import { canonicalHost, classifyAddress, decide, parsePolicy, ruleLabel } from '../policy';
import type { Decision, Policy, ReasonCode, Rule } from '../policy/types';
import type { ProxyEvent } from '../policy/events';
import { LeafMinter } from '../pki/leaf';
import { CertCache, STREAM_HWM } from './certs';
import { ClientConn, secretInHost, type ConnCtx, type Core } from './conn';
import { redact } from './dlp';
import { EventLog } from './events';
import { endSoon } from './linger';
import { relay } from './readbuf';
import { parseClientHello, type ClientHelloResult } from './sni';
import { isPrivateAddressError, parseProxyUrl, systemResolver, UpstreamPool, type Resolver } from './upstream';
import { blockText, display, parseAuthority, textResponse } from './util';

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
}

export interface ReloadResult {
  ok: boolean;
  /** sha256 of the policy text now in force (null: none). */
  hash: string | null;
  message?: string;
}

export interface RunningProxy {
  address: { host: string; port: number };
  /** http://HOST:PORT, ready to use as a proxy URL. */
  url: string;
  reload(text?: string): ReloadResult;
  close(graceMs?: number): Promise<void>;
  /** connections: client connections being served; sockets: accepted sockets still open (any state). */
  stats(): { connections: number; sockets: number; certsMinted: number; certsCached: number; policyHash: string | null };
}

const BLOCK_HEADER = 'X-Caged-Agent-Block';
const HANDSHAKE_TIMEOUT_MS = 15000;
const ESTABLISHED = 'HTTP/1.1 200 Connection Established\r\n\r\n';

function destroySelf(this: net.Socket): void {
  this.destroy();
}

function round2(ms: number): number {
  return Math.round(ms * 100) / 100;
}

function rawResponse(socket: net.Socket, status: number, statusText: string, headers: Array<[string, string]>, body: string, stallMs: number): void {
  if (socket.destroyed || !socket.writable) return;
  endSoon(socket, stallMs, textResponse(status, statusText, headers, body, true));
}

export async function startProxy(opts: ProxyOptions): Promise<RunningProxy> {
  const log = new EventLog(opts.events === undefined ? process.stdout : opts.events, opts.onEvent);
  const minter = new LeafMinter(opts.caCertPem, opts.caKeyPem);
  const certs = new CertCache(minter, opts.certCacheSize ?? 2000);
  const pool = new UpstreamPool({
    resolver: opts.resolver ?? systemResolver,
    upstreamCaPem: opts.upstreamCaPem,
    upstreamProxy: opts.upstreamProxy ? parseProxyUrl(opts.upstreamProxy) : undefined,
  });
  const started = Date.now();

  // ---------------------------------------------------------------- policy state
  let policy: Policy | undefined;
  let policyHash: string | null = null;
  let noPolicyWhy = 'no policy has been loaded yet';
  let policyText = opts.policyText;
  let policyGen = 0;

  // ISO time for events, formatted at most once per millisecond.
  let lastMs = 0;
  let lastIso = '';
  const now = () => {
    const t = Date.now();
    if (t !== lastMs) {
      lastMs = t;
      lastIso = new Date(t).toISOString();
    }
    return lastIso;
  };

  function applyPolicy(text: string | undefined, missingWhy: string | undefined): ReloadResult {
    policyGen++; // every (re)load, valid or not: memoised decisions and their messages start over
    const keep = policy !== undefined;
    if (text === undefined) {
      const message = missingWhy ?? 'the policy file is missing';
      if (!keep) noPolicyWhy = message;
      log.emit({ time: now(), type: 'policy-error', error: 'missing', message, keptPrevious: keep });
      log.flush();
      return { ok: false, hash: policyHash, message };
    }
    const r = parsePolicy(text);
    if (!r.policy) {
      const first = r.errors[0];
      const message = first ? first.message : 'the policy is invalid';
      if (!keep) noPolicyWhy = `the policy file is invalid: ${message}${first?.pos?.line ? ` (line ${first.pos.line}, column ${first.pos.col})` : ''}`;
      log.emit({
        time: now(),
        type: 'policy-error',
        error: 'invalid',
        message,
        line: first?.pos?.line || undefined,
        col: first?.pos?.col || undefined,
        keptPrevious: keep,
      });
      log.flush();
      return { ok: false, hash: policyHash, message };
    }
    policy = r.policy;
    policyHash = crypto.createHash('sha256').update(text).digest('hex');
    log.emit({ time: now(), type: 'policy-loaded', hash: policyHash, allow: r.policy.allow.length, deny: r.policy.deny.length });
    log.flush();
    return { ok: true, hash: policyHash };
  }

  function reload(text?: string): ReloadResult {
    if (text !== undefined) {
      policyText = text;
      return applyPolicy(text, undefined);
    }
    if (opts.policyFile) {
      let content: string | undefined;
      let why: string | undefined;
      try {
        content = fs.readFileSync(opts.policyFile, 'utf8');
      } catch (e) {
        why = `cannot read the policy file ${opts.policyFile}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`;
      }
      return applyPolicy(content, why);
    }
    return applyPolicy(policyText, policyText === undefined ? 'no policy file was given' : undefined);
  }

  function decideNow(host: string, port: number, method?: string, path?: string): Decision {
    const d = decide({ host, port, method, path }, policy);
    if (!policy && d.reason === 'policy-invalid') {
      d.message = `No valid policy is in force, so everything is blocked: ${noPolicyWhy}.`;
    }
    return d;
  }

  // Rules are immutable once loaded: their labels are made once.
  const labels = new WeakMap<Rule, string>();
  const labelOf = (rule: Rule): string => {
    let l = labels.get(rule);
    if (l === undefined) labels.set(rule, (l = ruleLabel(rule)));
    return l;
  };

  // Allowed requests passed the data-loss guard (host, path and query included); what a block shows of the
  // request may hold a credential, so it is redacted.
  function event(type: 'allow' | 'block', host: string, port: number, method: string, path: string, reason: ReasonCode, rule: Rule | undefined, t0: number, status?: number, detail?: string): void {
    let shown = display(host);
    if (type === 'block') {
      shown = redact(shown);
      path = redact(path);
      if (detail !== undefined) detail = redact(detail);
    }
    log.decision(now(), type, shown, port, method, path, reason, rule ? labelOf(rule) : null, status, round2(performance.now() - t0), detail);
  }

  const conns = new Set<ClientConn>();
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
    decide: decideNow,
    policyGen: () => policyGen,
    event,
    error: (message) => log.emit({ time: now(), type: 'error', message }),
    env: opts.env ?? process.env,
    dlpBytes: opts.dlpBodyBytes ?? 64 * 1024,
    pool,
    keepAliveMs,
    coarseNow: () => coarse,
    conns,
    healthBody: () => JSON.stringify({ ok: true, policy: policyHash, policyValid: policy !== undefined, uptime: Math.round((Date.now() - started) / 1000) }),
    connect: onConnect,
  };

  // ---------------------------------------------------------------- CONNECT
  function onConnect(socket: net.Socket, head: Buffer, authority: string, t0: number): void {
    socket.on('error', destroySelf);
    const target = parseAuthority(authority, undefined);
    if (!target) {
      rawResponse(socket, 400, 'Bad Request', [[BLOCK_HEADER, 'bad-request']], `Caged Agent: the CONNECT target "${redact(authority.slice(0, 200))}" is not a valid host:port.\n`, keepAliveMs);
      event('block', authority.slice(0, 255), 0, 'CONNECT', '', 'bad-request', undefined, t0, 400, 'bad-connect-target');
      return;
    }
    const { host, port } = target;
    const d = decideNow(host, port);
    // A credential as a label of the name would leave in the DNS lookup, before any request: never connect.
    const hit = secretInHost(host);
    const rule = d.action === 'allow' && !hit ? d.rule : undefined;
    if (rule && !rule.intercept) return tunnel(socket, head, host, port, rule, t0);

    const ctx: ConnCtx = { host, port, secure: true };
    if (hit) {
      ctx.blocked = { reason: 'secret-detected', message: `The CONNECT host name carries what looks like a credential (${hit}); sending secrets out of the cage is blocked.`, detail: hit, rule: d.rule };
    } else if (!rule) {
      ctx.blocked = { reason: d.reason, message: d.message, rule: d.rule };
    } else if (net.isIP(host) && !(rule.private || rule.kind === 'ip')) {
      const cls = classifyAddress(host);
      if (cls !== 'public') {
        ctx.blocked = { reason: 'private-address', message: `${display(host)} is a ${cls} address; add "private: true" to ${ruleLabel(rule)} if the agent may reach it.`, detail: cls, rule };
      }
    }
    // A blocked tunnel is logged by the first request inside it (method and path known); if the client
    // never sends one (it rejected our certificate, sent no TLS, or hung up), log the CONNECT itself.
    socket.once('close', () => {
      const b = ctx.blocked;
      if (b && !b.logged) {
        b.logged = true;
        event('block', host, port, 'CONNECT', '', b.reason, b.rule, t0, 403, b.detail);
      }
    });
    socket.write(ESTABLISHED);
    // Open (or find) the upstream connection while the client does its TLS handshake with us.
    if (!ctx.blocked && rule) pool.preconnect(true, host, port, rule.private || rule.kind === 'ip');
    firstBytes(socket, head, (first) => {
      if (!first) return socket.destroy();
      if (first[0] === 0x16) return intercept(socket, first, ctx);
      if (first[0] >= 0x41 && first[0] <= 0x5a) {
        // Plain HTTP inside CONNECT (e.g. ws:// from a CONNECT-only client): relay it like any request.
        ctx.secure = false;
        new ClientConn(core, socket, ctx, first);
        socket.resume();
        return;
      }
      if (!ctx.blocked) event('block', host, port, 'CONNECT', '', 'bad-request', rule, t0, undefined, 'not-tls');
      socket.destroy(); // a blocked CONNECT is logged by the close handler
    });
  }

  function intercept(socket: net.Socket, first: Buffer, ctx: ConnCtx): void {
    const c = certs.get(ctx.host);
    if (!(c instanceof Promise)) return startTls(socket, first, ctx, c);
    c.then(
      (secureCtx) => {
        if (!socket.destroyed) startTls(socket, first, ctx, secureCtx);
      },
      (e) => {
        log.emit({ time: now(), type: 'error', message: `minting a certificate for ${ctx.host} failed: ${String(e)}` });
        socket.destroy();
      },
    );
  }

  function startTls(socket: net.Socket, first: Buffer, ctx: ConnCtx, secureCtx: tls.SecureContext): void {
    socket.unshift(first);
    const tlsSock = new tls.TLSSocket(socket, { isServer: true, secureContext: secureCtx, ALPNProtocols: ['http/1.1'], highWaterMark: STREAM_HWM } as tls.TLSSocketOptions);
    const timer = setTimeout(() => tlsSock.destroy(), HANDSHAKE_TIMEOUT_MS);
    tlsSock.once('secure', () => {
      clearTimeout(timer);
      const sni = (tlsSock as unknown as { servername?: string | false }).servername;
      if (sni && !ctx.blocked) {
        const c = canonicalHost(sni);
        if (!c || c.host !== ctx.host) {
          ctx.blocked = { reason: 'sni-mismatch', message: `The TLS server name (${sni.slice(0, 100)}) does not match the CONNECT host (${display(ctx.host)}).`, detail: 'sni-mismatch' };
        }
      }
    });
    tlsSock.once('close', () => {
      clearTimeout(timer);
      socket.destroy();
    });
    new ClientConn(core, tlsSock, ctx);
  }

  /** `intercept: false`: connect (checked), then relay bytes once the ClientHello names the same host. */
  function tunnel(socket: net.Socket, head: Buffer, host: string, port: number, rule: Rule, t0: number): void {
    const allowPrivate = rule.private || rule.kind === 'ip';
    if (!allowPrivate && net.isIP(host)) {
      const cls = classifyAddress(host);
      if (cls !== 'public') {
        const msg = `${display(host)} is a ${cls} address; add "private: true" to ${ruleLabel(rule)} if the agent may reach it.`;
        rawResponse(socket, 403, 'Forbidden', [[BLOCK_HEADER, 'private-address']], blockText(`CONNECT ${display(host)}:${port}`, 'private-address', msg), keepAliveMs);
        return event('block', host, port, 'CONNECT', '', 'private-address', rule, t0, 403, cls);
      }
    }
    pool.openTunnel(host, port, allowPrivate).then(
      (up) => {
        if (socket.destroyed) return up.destroy();
        tunnels.add(socket);
        socket.once('close', () => tunnels.delete(socket));
        up.on('error', () => socket.destroy());
        socket.on('close', () => up.destroy());
        up.on('close', () => socket.destroy());
        socket.write(ESTABLISHED);
        readClientHello(socket, head, (buf, result) => {
          let bad: string | undefined;
          if (result.state !== 'ok') bad = result.state === 'not-tls' ? 'not-tls' : 'bad-client-hello';
          else if (result.sni === undefined) {
            if (!net.isIP(host)) bad = 'no-sni';
          } else {
            const c = canonicalHost(result.sni);
            if (!c || c.host !== host) bad = 'sni-mismatch';
          }
          if (bad) {
            event('block', host, port, 'CONNECT', '', 'sni-mismatch', rule, t0, undefined, bad);
            socket.destroy();
            up.destroy();
            return;
          }
          event('allow', host, port, 'CONNECT', '', 'allowed', rule, t0, 200);
          up.write(buf);
          relay(socket, up);
        });
      },
      (err: NodeJS.ErrnoException) => {
        if (isPrivateAddressError(err)) {
          const msg = `${display(host)} resolves to a ${err.addressClass} address (${err.address}); connections to loopback, private and link-local addresses are refused unless the rule says "private: true" (${ruleLabel(rule)}).`;
          rawResponse(socket, 403, 'Forbidden', [[BLOCK_HEADER, 'private-address']], blockText(`CONNECT ${display(host)}:${port}`, 'private-address', msg), keepAliveMs);
          return event('block', host, port, 'CONNECT', '', 'private-address', rule, t0, 403, err.addressClass);
        }
        rawResponse(socket, 502, 'Bad Gateway', [['X-Caged-Agent-Error', 'upstream-error']], `Caged Agent could not reach ${display(host)}:${port}: ${err.code ?? err.message}\n`, keepAliveMs);
        event('allow', host, port, 'CONNECT', '', 'upstream-error', rule, t0, 502, err.code ?? 'ERROR');
      },
    );
  }

  /**
   * Reads what follows a CONNECT (first `head`, then the socket) until `take` returns a result for the bytes
   * buffered so far; a close or the handshake timeout gives `fail`. The socket is left paused.
   */
  function readStart<R>(socket: net.Socket, head: Buffer, take: (buf: Buffer) => R | undefined, fail: R, cb: (buf: Buffer, r: R) => void): void {
    let buf = head;
    if (buf.length) {
      const r = take(buf);
      if (r !== undefined) {
        socket.pause();
        return cb(buf, r);
      }
    }
    let done = false;
    const timer = setTimeout(() => finish(fail), HANDSHAKE_TIMEOUT_MS);
    const onData = (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      const r = take(buf);
      if (r !== undefined) finish(r);
    };
    const onClose = () => finish(fail);
    function finish(r: R) {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.pause();
      socket.removeListener('data', onData);
      socket.removeListener('close', onClose);
      socket.removeListener('end', onClose);
      cb(buf, r);
    }
    socket.on('data', onData);
    socket.once('close', onClose);
    // The listener allows half-open sockets: a client that sends FIN before its first bytes is done.
    socket.once('end', onClose);
    socket.resume();
  }

  /** The first bytes after CONNECT, or undefined when none came. */
  function firstBytes(socket: net.Socket, head: Buffer, cb: (b: Buffer | undefined) => void): void {
    readStart(socket, head, () => true, false, (buf, got) => cb(got ? buf : undefined));
  }

  /** Bytes up to a complete (or invalid) TLS ClientHello. */
  function readClientHello(socket: net.Socket, head: Buffer, cb: (buf: Buffer, r: ClientHelloResult) => void): void {
    readStart<ClientHelloResult>(socket, head, (b) => {
      const r = parseClientHello(b);
      return r.state === 'partial' ? undefined : r;
    }, { state: 'invalid' }, cb);
  }

  // ---------------------------------------------------------------- listener
  const sockets = new Set<net.Socket>(); // every accepted connection
  const tunnels = new Set<net.Socket>(); // client sides of raw tunnels in use
  function trackSocket(s: net.Socket): void {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  }

  const server = net.createServer({ allowHalfOpen: true, noDelay: true } as net.ServerOpts, (sock) => {
    trackSocket(sock);
    new ClientConn(core, sock, undefined);
  });
  server.maxConnections = 20000;

  reload();

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  server.on('error', (e) => log.emit({ time: now(), type: 'error', message: String(e) }));
  const addr = server.address() as net.AddressInfo;
  const address = { host: addr.address, port: addr.port };
  const url = `http://${display(addr.address)}:${addr.port}`;
  log.emit({ time: now(), type: 'listening', address: `${display(addr.address)}:${addr.port}` });
  log.flush();

  let closing: Promise<void> | undefined;
  function close(graceMs = 5000): Promise<void> {
    closing ??= new Promise<void>((resolve) => {
      server.close();
      for (const c of [...conns]) c.shutdown();
      const timers: { poll?: NodeJS.Timeout; deadline?: NodeJS.Timeout } = {};
      const finish = () => {
        clearInterval(timers.poll);
        clearTimeout(timers.deadline);
        for (const c of [...conns]) c.close();
        for (const s of sockets) s.destroy();
        clearInterval(idleSweep);
        pool.destroy();
        log.emit({ time: now(), type: 'shutdown' });
        log.flush();
        resolve();
      };
      const busy = () => tunnels.size > 0 || [...conns].some((c) => !c.idle);
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
    reload,
    close,
    stats: () => ({ connections: conns.size, sockets: sockets.size, certsMinted: certs.minted, certsCached: certs.size, policyHash }),
  };
}
