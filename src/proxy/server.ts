// The egress proxy core: an explicit HTTP forward proxy (absolute-form requests and CONNECT) that decides
// every request with the policy engine, intercepts TLS with leaf certificates minted under the cage CA,
// tunnels `intercept: false` hosts after checking the ClientHello's SNI, refuses private addresses,
// injects credentials, scans for leaked secrets and prints one JSON event per decision.
//
// startProxy() runs it in-process (tests, benchmarks); main.ts is the command-line wrapper.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Writable } from 'node:stream';
import { performance } from 'node:perf_hooks';
import { canonicalHost, classifyAddress, decide, parsePolicy, ruleLabel } from '../policy';
import type { Decision, Policy, ReasonCode, Rule } from '../policy/types';
import type { DecisionEvent, ProxyEvent } from '../policy/events';
import { LeafMinter } from '../pki/leaf';
import { CertCache } from './certs';
import { findSecret, findSecretInBuffer } from './dlp';
import { EventLog } from './events';
import { parseClientHello } from './sni';
import { isPrivateAddressError, parseProxyUrl, systemResolver, Upstream, type Resolver } from './upstream';

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
  stats(): { connections: number; certsMinted: number; certsCached: number; policyHash: string | null };
}

/** Per-connection state for connections that arrived through CONNECT (intercepted TLS or plain HTTP). */
interface ConnCtx {
  host: string; // canonical (IPv6 without brackets)
  port: number;
  secure: boolean;
  /** The CONNECT was blocked: every request inside gets this answer. */
  blocked?: { reason: ReasonCode; message: string; detail?: string };
}

const CTX = Symbol('caged-agent.conn');
type CtxSocket = net.Socket & { [CTX]?: ConnCtx };

// Hop-by-hop headers (RFC 9110 7.6.1) plus the ones we re-create ourselves.
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'upgrade', 'expect', 'http2-settings']);
const HOP_RESPONSE = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'transfer-encoding', 'trailer', 'upgrade']);

const BLOCK_HEADER = 'X-Caged-Agent-Block';
const HEALTH_PATH = '/__caged/health';
const HANDSHAKE_TIMEOUT_MS = 15000;

function display(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

function hostPort(host: string, port: number, secure: boolean): string {
  return (secure ? port === 443 : port === 80) ? display(host) : `${display(host)}:${port}`;
}

/** Path for events and messages: never the query string, bounded. */
function safePath(raw: string): string {
  let end = raw.length;
  const q = raw.indexOf('?');
  if (q >= 0) end = q;
  const h = raw.indexOf('#');
  if (h >= 0 && h < end) end = h;
  return end > 2048 ? raw.slice(0, 2048) : end === raw.length ? raw : raw.slice(0, end);
}

/** Splits "host:port" / "[v6]:port" / "host" (authority form) into canonical host and port. */
function parseAuthority(a: string, defaultPort: number | undefined): { host: string; port: number } | undefined {
  let hostText: string;
  let portText: string | undefined;
  if (a.startsWith('[')) {
    const close = a.indexOf(']');
    if (close < 0) return undefined;
    hostText = a.slice(0, close + 1);
    const rest = a.slice(close + 1);
    if (rest) {
      if (rest[0] !== ':') return undefined;
      portText = rest.slice(1);
    }
  } else {
    const c = a.lastIndexOf(':');
    if (c >= 0) {
      if (a.indexOf(':') !== c) return undefined; // bare IPv6 is not valid in an authority
      hostText = a.slice(0, c);
      portText = a.slice(c + 1);
    } else hostText = a;
  }
  if (a.includes('@')) return undefined;
  let port = defaultPort;
  if (portText !== undefined) {
    if (!/^\d{1,5}$/.test(portText)) return undefined;
    port = Number(portText);
  }
  if (port === undefined || port < 1 || port > 65535) return undefined;
  const c = canonicalHost(hostText);
  if (!c) return undefined;
  return { host: c.host, port };
}

function secretEnvName(name: string): string {
  return `CAGED_SECRET_${name.toUpperCase().replace(/[^A-Z0-9_]/g, '_')}`;
}

function blockText(what: string, reason: string, message: string): string {
  return (
    `Caged Agent blocked ${what}\n` +
    `Reason: ${reason}\n` +
    `${message}\n` +
    `This is the cage's network policy, not a network failure. The user can allow it from the editor ` +
    `(Caged Agent: Allow... on the block notification) or by editing .caged/policy.yaml.\n`
  );
}

function rawResponse(socket: net.Socket, status: number, statusText: string, headers: Array<[string, string]>, body: string): void {
  if (socket.destroyed || !socket.writable) return;
  let head = `HTTP/1.1 ${status} ${statusText}\r\n`;
  for (const [k, v] of headers) head += `${k}: ${v}\r\n`;
  head += `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n`;
  socket.end(head + body);
}

function round2(ms: number): number {
  return Math.round(ms * 100) / 100;
}

export async function startProxy(opts: ProxyOptions): Promise<RunningProxy> {
  const env = opts.env ?? process.env;
  const log = new EventLog(opts.events === undefined ? process.stdout : opts.events, opts.onEvent);
  const dlpBytes = opts.dlpBodyBytes ?? 64 * 1024;
  const minter = new LeafMinter(opts.caCertPem, opts.caKeyPem);
  const certs = new CertCache(minter, opts.certCacheSize ?? 2000);
  const upstream = new Upstream({
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

  const now = () => new Date().toISOString();

  function applyPolicy(text: string | undefined, missingWhy: string | undefined): ReloadResult {
    const keep = policy !== undefined;
    if (text === undefined) {
      const message = missingWhy ?? 'the policy file is missing';
      if (!keep) noPolicyWhy = message;
      log.emit({ time: now(), type: 'policy-error', error: 'missing', message, keptPrevious: keep });
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
      return { ok: false, hash: policyHash, message };
    }
    policy = r.policy;
    policyHash = crypto.createHash('sha256').update(text).digest('hex');
    log.emit({ time: now(), type: 'policy-loaded', hash: policyHash, allow: r.policy.allow.length, deny: r.policy.deny.length });
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

  // ---------------------------------------------------------------- events
  function decisionEvent(
    type: 'allow' | 'block',
    host: string,
    port: number,
    method: string,
    path: string,
    reason: ReasonCode,
    rule: Rule | undefined,
    t0: number,
    status?: number,
    detail?: string,
  ): void {
    const e: DecisionEvent = {
      time: now(),
      type,
      host: display(host),
      port,
      method,
      path,
      reason,
      rule: rule ? ruleLabel(rule) : null,
      status,
      ms: round2(performance.now() - t0),
    };
    if (detail !== undefined) e.detail = detail;
    log.emit(e);
  }

  /** A 403 for the agent, as an HTTP response (inside TLS when intercepting). */
  function sendBlock(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    host: string,
    port: number,
    secure: boolean,
    path: string,
    reason: ReasonCode,
    message: string,
    rule: Rule | undefined,
    t0: number,
    detail?: string,
    logIt = true,
  ): void {
    const method = req.method ?? 'GET';
    const body = blockText(`${method} ${secure ? 'https' : 'http'}://${hostPort(host, port, secure)}${path}`, reason, message);
    const headers: string[] = ['Content-Type', 'text/plain; charset=utf-8', 'Content-Length', String(Buffer.byteLength(body)), BLOCK_HEADER, reason, 'Cache-Control', 'no-store'];
    // Do not read (or wait for) the rest of an unread request body.
    if (!req.complete) headers.push('Connection', 'close');
    if (!res.headersSent) {
      res.writeHead(403, headers);
      res.end(method === 'HEAD' ? undefined : body);
    } else res.destroy();
    if (logIt) decisionEvent('block', host, port, method, path, reason, rule, t0, 403, detail);
  }

  // ---------------------------------------------------------------- HTTP requests (absolute-form or inside CONNECT)
  function onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const t0 = performance.now();
    const socket = req.socket as CtxSocket;
    const ctx = socket[CTX];
    const url = req.url ?? '';
    let host: string;
    let port: number;
    let secure: boolean;
    let target: string;
    if (ctx) {
      host = ctx.host;
      port = ctx.port;
      secure = ctx.secure;
      if (url.startsWith('/') || url === '*') target = url;
      else {
        const abs = parseAbsolute(url);
        if (!abs || abs.host !== host || abs.port !== port) {
          return sendBlock(req, res, host, port, secure, safePath(url), 'bad-request', 'The request target names a different host than the tunnel it was sent in.', undefined, t0, 'target-mismatch');
        }
        target = abs.path;
      }
      if (ctx.blocked) {
        // Already logged once at CONNECT time; answer inside the session so the agent can read why.
        return sendBlock(req, res, host, port, secure, safePath(target), ctx.blocked.reason, ctx.blocked.message, undefined, t0, ctx.blocked.detail, false);
      }
    } else {
      const abs = parseAbsolute(url);
      if (!abs) {
        if (url === HEALTH_PATH || url.startsWith(HEALTH_PATH + '?')) return health(res);
        const body = 'This is the Caged Agent egress proxy. Use it as an HTTP proxy (absolute-form requests or CONNECT).\n';
        res.writeHead(400, ['Content-Type', 'text/plain; charset=utf-8', 'Content-Length', String(body.length)]);
        res.end(body);
        return;
      }
      ({ host, port, secure } = abs);
      target = abs.path;
    }
    forward(req, res, host, port, secure, target, t0);
  }

  function parseAbsolute(url: string): { host: string; port: number; secure: boolean; path: string } | undefined {
    let secure: boolean;
    let rest: string;
    if (url.length > 7 && url.slice(0, 7).toLowerCase() === 'http://') {
      secure = false;
      rest = url.slice(7);
    } else if (url.length > 8 && url.slice(0, 8).toLowerCase() === 'https://') {
      secure = true;
      rest = url.slice(8);
    } else return undefined;
    let end = rest.length;
    for (let i = 0; i < rest.length; i++) {
      const c = rest.charCodeAt(i);
      if (c === 47 /* / */ || c === 63 /* ? */ || c === 35 /* # */) {
        end = i;
        break;
      }
    }
    const a = parseAuthority(rest.slice(0, end), secure ? 443 : 80);
    if (!a) return undefined;
    let path = rest.slice(end);
    if (path === '' || path[0] !== '/') path = '/' + path;
    return { host: a.host, port: a.port, secure, path };
  }

  function health(res: http.ServerResponse): void {
    const body = JSON.stringify({ ok: true, policy: policyHash, policyValid: policy !== undefined, uptime: Math.round((Date.now() - started) / 1000) });
    res.writeHead(200, ['Content-Type', 'application/json', 'Content-Length', String(Buffer.byteLength(body)), 'Cache-Control', 'no-store']);
    res.end(body);
  }

  /** Shared by plain requests and WebSocket upgrades: policy, host check, DLP, credentials, headers. */
  function prepare(
    req: http.IncomingMessage,
    host: string,
    port: number,
    secure: boolean,
    target: string,
    upgrade: boolean,
  ):
    | { ok: true; decision: Decision; rule: Rule; path: string; forwardPath: string; headers: string[]; allowPrivate: boolean }
    | { ok: false; reason: ReasonCode; message: string; rule?: Rule; path: string; detail?: string } {
    const method = req.method ?? 'GET';
    const d = decideNow(host, port, method, target);
    const path = d.normalizedPath ?? safePath(target);
    if (d.action !== 'allow' || !d.rule) return { ok: false, reason: d.reason, message: d.message, rule: d.rule, path };
    const rule = d.rule;

    // IP literals: an IP rule names the literal (opt-in); otherwise the rule must say private: true.
    const allowPrivate = rule.private || rule.kind === 'ip';
    if (!allowPrivate && net.isIP(host)) {
      const cls = classifyAddress(host);
      if (cls !== 'public') {
        return { ok: false, reason: 'private-address', message: `${display(host)} is a ${cls} address; add "private: true" to ${ruleLabel(rule)} if the agent may reach it.`, rule, path, detail: cls };
      }
    }

    // Headers: drop hop-by-hop ones (and whatever Connection lists), check Host, collect text for the DLP scan.
    const raw = req.rawHeaders;
    const out: string[] = [];
    let extraHop: Set<string> | undefined;
    const conn = req.headers.connection;
    if (conn) {
      for (const t of conn.split(',')) {
        const n = t.trim().toLowerCase();
        if (n && n !== 'close' && n !== 'keep-alive' && n !== 'upgrade') (extraHop ??= new Set()).add(n);
      }
    }
    let scan = target;
    let sawHost = false;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i];
      const lower = name.toLowerCase();
      if (HOP.has(lower) || extraHop?.has(lower)) continue;
      const value = raw[i + 1];
      if (lower === 'host') {
        if (sawHost) continue;
        sawHost = true;
        const h = parseAuthority(value, port);
        if (!h || h.host !== host) {
          return { ok: false, reason: 'bad-request', message: `The Host header (${value.slice(0, 100)}) does not match the host the request is sent to (${display(host)}).`, rule, path, detail: 'host-mismatch' };
        }
      } else if (lower === 'authorization' && rule.auth) continue; // replaced below, never scanned
      scan += '\n' + value;
      out.push(name, value);
    }
    if (!sawHost) out.push('Host', hostPort(host, port, secure));
    if (upgrade) out.push('Connection', 'Upgrade', 'Upgrade', req.headers.upgrade ?? 'websocket');

    // The data-loss guard runs before injection: the injected credential must not trip it.
    const hit = findSecret(scan);
    if (hit) {
      return { ok: false, reason: 'secret-detected', message: `The request carries what looks like a credential (${hit}) in its URL or headers; sending secrets out of the cage is blocked.`, rule, path, detail: hit };
    }
    if (rule.auth) {
      const envName = secretEnvName(rule.auth.secret);
      const secret = env[envName];
      if (!secret) {
        return { ok: false, reason: 'secret-missing', message: `${ruleLabel(rule)} injects the secret "${rule.auth.secret}", but it is not set (${envName} is empty in the proxy); set it in the editor's Caged Agent secrets.`, rule, path, detail: rule.auth.secret };
      }
      out.push('Authorization', `${rule.auth.scheme} ${secret}`);
    }
    return { ok: true, decision: d, rule, path, forwardPath: d.forwardPath ?? d.normalizedPath ?? target, headers: out, allowPrivate };
  }

  function forward(req: http.IncomingMessage, res: http.ServerResponse, host: string, port: number, secure: boolean, target: string, t0: number): void {
    const method = req.method ?? 'GET';
    const p = prepare(req, host, port, secure, target, false);
    if (!p.ok) return sendBlock(req, res, host, port, secure, p.path, p.reason, p.message, p.rule, t0, p.detail);

    const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
    if (!hasBody || dlpBytes <= 0) return send(req, res, host, port, secure, method, p, t0, undefined, true);

    // Body: hold back the first dlpBytes (or the whole body if shorter), scan it, then stream.
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (ended: boolean) => {
      if (done) return;
      done = true;
      req.removeListener('data', onData);
      req.removeListener('end', onEnd);
      req.removeListener('aborted', onAbort);
      if (!ended) req.pause();
      const prefix = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size);
      const hit = size > 0 ? findSecretInBuffer(prefix) : undefined;
      if (hit) {
        return sendBlock(req, res, host, port, secure, p.path, 'secret-detected', `The request body carries what looks like a credential (${hit}); sending secrets out of the cage is blocked.`, p.rule, t0, hit);
      }
      send(req, res, host, port, secure, method, p, t0, size > 0 ? prefix : undefined, ended);
    };
    const onData = (c: Buffer) => {
      chunks.push(c);
      size += c.length;
      if (size >= dlpBytes) finish(false);
    };
    const onEnd = () => finish(true);
    const onAbort = () => {
      done = true;
      res.destroy();
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('aborted', onAbort);
  }

  function send(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    host: string,
    port: number,
    secure: boolean,
    method: string,
    p: { rule: Rule; path: string; forwardPath: string; headers: string[]; allowPrivate: boolean },
    t0: number,
    prefix: Buffer | undefined,
    ended: boolean,
    retried = false,
  ): void {
    const pre = retried ? undefined : upstream.precheck({ secure, host, allowPrivate: p.allowPrivate });
    if (pre) {
      pre.then(
        () => send(req, res, host, port, secure, method, p, t0, prefix, ended, true),
        (err: NodeJS.ErrnoException) => {
          if (isPrivateAddressError(err)) {
            return sendBlock(req, res, host, port, secure, p.path, 'private-address', `${display(host)} resolves to a ${err.addressClass} address (${err.address}); connections to loopback, private and link-local addresses are refused unless the rule says "private: true" (${ruleLabel(p.rule)}).`, p.rule, t0, err.addressClass);
          }
          upstreamError(req, res, host, port, secure, method, p.path, p.rule, t0, err);
        },
      );
      return;
    }
    const upReq = upstream.request({ secure, host, port, method, path: p.forwardPath, headers: p.headers, allowPrivate: p.allowPrivate });
    let responded = false;
    upReq.on('response', (upRes) => {
      responded = true;
      const status = upRes.statusCode ?? 502;
      const raw = upRes.rawHeaders;
      const out: string[] = [];
      for (let i = 0; i < raw.length; i += 2) {
        if (!HOP_RESPONSE.has(raw[i].toLowerCase())) out.push(raw[i], raw[i + 1]);
      }
      if (res.destroyed) return upRes.destroy();
      res.writeHead(status, upRes.statusMessage, out);
      decisionEvent('allow', host, port, method, p.path, 'allowed', p.rule, t0, status);
      upRes.pipe(res);
      upRes.on('aborted', () => res.destroy());
    });
    upReq.on('error', (err: NodeJS.ErrnoException) => {
      if (responded) return res.destroy();
      // A pooled keep-alive socket the server had closed: retry once when nothing was streamed.
      if (!retried && (upReq as any).reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE') && ended) {
        return send(req, res, host, port, secure, method, p, t0, prefix, ended, true);
      }
      if (isPrivateAddressError(err)) {
        return sendBlock(req, res, host, port, secure, p.path, 'private-address', `${display(host)} resolves to a ${err.addressClass} address (${err.address}); connections to loopback, private and link-local addresses are refused unless the rule says "private: true" (${ruleLabel(p.rule)}).`, p.rule, t0, err.addressClass);
      }
      upstreamError(req, res, host, port, secure, method, p.path, p.rule, t0, err);
    });
    res.on('close', () => {
      if (!res.writableFinished) upReq.destroy();
    });
    if (prefix) upReq.write(prefix);
    if (ended) upReq.end();
    else {
      req.pipe(upReq);
      req.resume();
    }
  }

  function upstreamError(req: http.IncomingMessage, res: http.ServerResponse, host: string, port: number, secure: boolean, method: string, path: string, rule: Rule | undefined, t0: number, err: NodeJS.ErrnoException): void {
    const code = err.code ?? 'ERROR';
    if (!res.headersSent && !res.destroyed) {
      const body = `Caged Agent could not reach ${secure ? 'https' : 'http'}://${hostPort(host, port, secure)}${path}: ${code}${err.message && !err.message.includes(code) ? ` (${err.message})` : ''}\n`;
      res.writeHead(502, ['Content-Type', 'text/plain; charset=utf-8', 'Content-Length', String(Buffer.byteLength(body)), 'X-Caged-Agent-Error', 'upstream-error', ...(req.complete ? [] : ['Connection', 'close'])]);
      res.end(body);
    } else res.destroy();
    decisionEvent('allow', host, port, method, path, 'upstream-error', rule, t0, 502, code);
  }

  // ---------------------------------------------------------------- WebSocket (and other) upgrades
  function onUpgrade(req: http.IncomingMessage, sock: net.Socket, head: Buffer): void {
    const t0 = performance.now();
    const socket = sock as CtxSocket;
    socket.on('error', () => socket.destroy());
    const ctx = socket[CTX];
    const url = req.url ?? '';
    const method = req.method ?? 'GET';
    let host: string;
    let port: number;
    let secure: boolean;
    let target: string;
    if (ctx) {
      ({ host, port, secure } = ctx);
      target = url.startsWith('/') ? url : parseAbsolute(url)?.path ?? url;
    } else {
      const abs = parseAbsolute(url);
      if (!abs) return rawResponse(socket, 400, 'Bad Request', [], 'Upgrade requests must use absolute-form through this proxy.\n');
      ({ host, port, secure } = abs);
      target = abs.path;
    }
    const block = (reason: ReasonCode, message: string, rule: Rule | undefined, path: string, detail?: string, logIt = true) => {
      rawResponse(socket, 403, 'Forbidden', [[BLOCK_HEADER, reason]], blockText(`${method} ${secure ? 'wss' : 'ws'}://${hostPort(host, port, secure)}${path}`, reason, message));
      if (logIt) decisionEvent('block', host, port, method, path, reason, rule, t0, 403, detail);
    };
    if (ctx?.blocked) return block(ctx.blocked.reason, ctx.blocked.message, undefined, safePath(target), ctx.blocked.detail, false);
    const p = prepare(req, host, port, secure, target, true);
    if (!p.ok) return block(p.reason, p.message, p.rule, p.path, p.detail);

    const upReq = upstream.request({ secure, host, port, method, path: p.forwardPath, headers: p.headers, allowPrivate: p.allowPrivate });
    upReq.on('upgrade', (upRes, upSocket, upHead) => {
      let headText = `HTTP/1.1 ${upRes.statusCode} ${upRes.statusMessage ?? 'Switching Protocols'}\r\n`;
      const raw = upRes.rawHeaders;
      for (let i = 0; i < raw.length; i += 2) headText += `${raw[i]}: ${raw[i + 1]}\r\n`;
      socket.write(headText + '\r\n');
      if (upHead.length) socket.write(upHead);
      if (head.length) upSocket.write(head);
      decisionEvent('allow', host, port, method, p.path, 'allowed', p.rule, t0, upRes.statusCode);
      upSocket.setNoDelay(true);
      upSocket.on('error', () => socket.destroy());
      socket.on('close', () => upSocket.destroy());
      upSocket.on('close', () => socket.destroy());
      upSocket.pipe(socket);
      socket.pipe(upSocket);
    });
    upReq.on('response', (upRes) => {
      // The server declined the upgrade: relay its answer and close.
      let headText = `HTTP/1.1 ${upRes.statusCode} ${upRes.statusMessage ?? ''}\r\n`;
      const raw = upRes.rawHeaders;
      for (let i = 0; i < raw.length; i += 2) if (!HOP_RESPONSE.has(raw[i].toLowerCase())) headText += `${raw[i]}: ${raw[i + 1]}\r\n`;
      socket.write(headText + 'Connection: close\r\n\r\n');
      decisionEvent('allow', host, port, method, p.path, 'allowed', p.rule, t0, upRes.statusCode);
      upRes.pipe(socket);
    });
    upReq.on('error', (err: NodeJS.ErrnoException) => {
      if (isPrivateAddressError(err)) {
        return block('private-address', `${display(host)} resolves to a ${err.addressClass} address (${err.address}); add "private: true" to ${ruleLabel(p.rule)} if the agent may reach it.`, p.rule, p.path, err.addressClass);
      }
      rawResponse(socket, 502, 'Bad Gateway', [['X-Caged-Agent-Error', 'upstream-error']], `Caged Agent could not reach ${display(host)}:${port}: ${err.code ?? err.message}\n`);
      decisionEvent('allow', host, port, method, p.path, 'upstream-error', p.rule, t0, 502, err.code ?? 'ERROR');
    });
    upReq.end();
  }

  // ---------------------------------------------------------------- CONNECT
  function onConnect(req: http.IncomingMessage, sock: net.Socket, head: Buffer): void {
    const t0 = performance.now();
    const socket = sock as CtxSocket;
    trackSocket(socket);
    socket.on('error', () => socket.destroy());
    socket.setNoDelay(true);
    const url = req.url ?? '';
    const target = parseAuthority(url, undefined);
    if (!target) {
      rawResponse(socket, 400, 'Bad Request', [[BLOCK_HEADER, 'bad-request']], `Caged Agent: the CONNECT target "${url.slice(0, 200)}" is not a valid host:port.\n`);
      decisionEvent('block', url.slice(0, 255), 0, 'CONNECT', '', 'bad-request', undefined, t0, 400, 'bad-connect-target');
      return;
    }
    const { host, port } = target;
    const d = decideNow(host, port);
    const rule = d.action === 'allow' ? d.rule : undefined;
    if (rule && !rule.intercept) return tunnel(socket, head, host, port, rule, t0);

    const ctx: ConnCtx = { host, port, secure: true };
    if (!rule) {
      ctx.blocked = { reason: d.reason, message: d.message };
      decisionEvent('block', host, port, 'CONNECT', '', d.reason, d.rule, t0, 403);
    } else if (net.isIP(host) && !(rule.private || rule.kind === 'ip')) {
      const cls = classifyAddress(host);
      if (cls !== 'public') {
        ctx.blocked = { reason: 'private-address', message: `${display(host)} is a ${cls} address; add "private: true" to ${ruleLabel(rule)} if the agent may reach it.`, detail: cls };
        decisionEvent('block', host, port, 'CONNECT', '', 'private-address', rule, t0, 403, cls);
      }
    }
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    firstBytes(socket, head, HANDSHAKE_TIMEOUT_MS, (first) => {
      if (!first) return socket.destroy();
      if (first[0] === 0x16) return intercept(socket, first, ctx);
      if (first[0] >= 0x41 && first[0] <= 0x5a) {
        // Plain HTTP inside CONNECT (e.g. ws:// through a CONNECT-only client): parse it like any request.
        ctx.secure = false;
        socket[CTX] = ctx;
        socket.unshift(first);
        server.emit('connection', socket);
        socket.resume();
        return;
      }
      if (!ctx.blocked) decisionEvent('block', host, port, 'CONNECT', '', 'bad-request', rule, t0, undefined, 'not-tls');
      socket.destroy();
    });
  }

  function intercept(socket: CtxSocket, first: Buffer, ctx: ConnCtx): void {
    let secureCtx: tls.SecureContext;
    try {
      secureCtx = certs.get(ctx.host);
    } catch (e) {
      log.emit({ time: now(), type: 'error', message: `minting a certificate for ${ctx.host} failed: ${String(e)}` });
      return void socket.destroy();
    }
    socket.unshift(first);
    const tlsSock = new tls.TLSSocket(socket, { isServer: true, secureContext: secureCtx, ALPNProtocols: ['http/1.1'] }) as tls.TLSSocket & { [CTX]?: ConnCtx };
    tlsSock[CTX] = ctx;
    const timer = setTimeout(() => tlsSock.destroy(), HANDSHAKE_TIMEOUT_MS);
    tlsSock.once('close', () => clearTimeout(timer));
    tlsSock.on('error', () => {
      clearTimeout(timer);
      tlsSock.destroy();
      socket.destroy();
    });
    tlsSock.once('secure', () => {
      clearTimeout(timer);
      const sni = (tlsSock as unknown as { servername?: string | false }).servername;
      if (sni && !ctx.blocked) {
        const c = canonicalHost(sni);
        if (!c || c.host !== ctx.host) {
          ctx.blocked = { reason: 'sni-mismatch', message: `The TLS server name (${sni.slice(0, 100)}) does not match the CONNECT host (${display(ctx.host)}).`, detail: 'sni-mismatch' };
          decisionEvent('block', ctx.host, ctx.port, 'CONNECT', '', 'sni-mismatch', undefined, performance.now(), 403, 'sni-mismatch');
        }
      }
      server.emit('connection', tlsSock);
    });
  }

  /** `intercept: false`: connect (checked), then relay bytes once the ClientHello names the same host. */
  function tunnel(socket: CtxSocket, head: Buffer, host: string, port: number, rule: Rule, t0: number): void {
    const allowPrivate = rule.private || rule.kind === 'ip';
    if (!allowPrivate && net.isIP(host)) {
      const cls = classifyAddress(host);
      if (cls !== 'public') {
        const msg = `${display(host)} is a ${cls} address; add "private: true" to ${ruleLabel(rule)} if the agent may reach it.`;
        rawResponse(socket, 403, 'Forbidden', [[BLOCK_HEADER, 'private-address']], blockText(`CONNECT ${display(host)}:${port}`, 'private-address', msg));
        return decisionEvent('block', host, port, 'CONNECT', '', 'private-address', rule, t0, 403, cls);
      }
    }
    upstream.openTunnel(host, port, allowPrivate).then(
      (up) => {
        if (socket.destroyed) return up.destroy();
        trackSocket(up);
        up.setNoDelay(true);
        up.on('error', () => socket.destroy());
        socket.on('close', () => up.destroy());
        up.on('close', () => socket.destroy());
        socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
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
            decisionEvent('block', host, port, 'CONNECT', '', 'sni-mismatch', rule, t0, undefined, bad);
            socket.destroy();
            up.destroy();
            return;
          }
          decisionEvent('allow', host, port, 'CONNECT', '', 'allowed', rule, t0, 200);
          up.write(buf);
          socket.pipe(up);
          up.pipe(socket);
          socket.resume();
        });
      },
      (err: NodeJS.ErrnoException) => {
        if (isPrivateAddressError(err)) {
          const msg = `${display(host)} resolves to a ${err.addressClass} address (${err.address}); connections to loopback, private and link-local addresses are refused unless the rule says "private: true" (${ruleLabel(rule)}).`;
          rawResponse(socket, 403, 'Forbidden', [[BLOCK_HEADER, 'private-address']], blockText(`CONNECT ${display(host)}:${port}`, 'private-address', msg));
          return decisionEvent('block', host, port, 'CONNECT', '', 'private-address', rule, t0, 403, err.addressClass);
        }
        rawResponse(socket, 502, 'Bad Gateway', [['X-Caged-Agent-Error', 'upstream-error']], `Caged Agent could not reach ${display(host)}:${port}: ${err.code ?? err.message}\n`);
        decisionEvent('allow', host, port, 'CONNECT', '', 'upstream-error', rule, t0, 502, err.code ?? 'ERROR');
      },
    );
  }

  /** The first bytes after CONNECT (from `head` or the socket), then the socket is paused. */
  function firstBytes(socket: net.Socket, head: Buffer, timeoutMs: number, cb: (b: Buffer | undefined) => void): void {
    if (head.length) return cb(head);
    let done = false;
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    const onData = (d: Buffer) => finish(d);
    const onClose = () => finish(undefined);
    function finish(b: Buffer | undefined) {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.pause();
      socket.removeListener('data', onData);
      socket.removeListener('close', onClose);
      cb(b);
    }
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.resume();
  }

  function readClientHello(socket: net.Socket, head: Buffer, cb: (buf: Buffer, r: ReturnType<typeof parseClientHello>) => void): void {
    let buf = head;
    let done = false;
    const timer = setTimeout(() => finish({ state: 'invalid' }), HANDSHAKE_TIMEOUT_MS);
    const onData = (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      const r = parseClientHello(buf);
      if (r.state !== 'partial') finish(r);
    };
    const onClose = () => finish({ state: 'invalid' });
    function finish(r: ReturnType<typeof parseClientHello>) {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.pause();
      socket.removeListener('data', onData);
      socket.removeListener('close', onClose);
      cb(buf, r);
    }
    if (buf.length) {
      const r = parseClientHello(buf);
      if (r.state !== 'partial') {
        done = true;
        clearTimeout(timer);
        return cb(buf, r);
      }
    }
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.resume();
  }

  // ---------------------------------------------------------------- server
  const sockets = new Set<net.Socket>();
  function trackSocket(s: net.Socket): void {
    if (sockets.has(s)) return;
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  }

  const server = http.createServer({
    keepAliveTimeout: opts.keepAliveTimeoutMs ?? 75000,
    headersTimeout: 60000,
    requestTimeout: 0, // long uploads and downloads stream for as long as they need
    maxHeaderSize: 32 * 1024,
  } as http.ServerOptions);
  server.on('request', onRequest);
  server.on('connect', onConnect);
  server.on('upgrade', onUpgrade);
  server.on('connection', (s: net.Socket) => {
    if (!(s instanceof tls.TLSSocket) && !(s as CtxSocket)[CTX]) {
      trackSocket(s);
      s.setNoDelay(true);
    }
  });
  server.on('clientError', (err: NodeJS.ErrnoException, s: net.Socket) => {
    if (s.writable && !(s as any)._httpMessage?.headersSent) {
      const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
      const status = tooLarge ? 431 : 400;
      const body = `Caged Agent: ${tooLarge ? 'request headers too large' : 'malformed request'} (${err.code ?? 'error'}).\n`;
      s.end(`HTTP/1.1 ${status} ${tooLarge ? 'Request Header Fields Too Large' : 'Bad Request'}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    }
    s.destroy();
  });

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

  let closing: Promise<void> | undefined;
  function close(graceMs = 5000): Promise<void> {
    closing ??= new Promise<void>((resolve) => {
      server.close(() => undefined);
      server.closeIdleConnections();
      const timers: { poll?: NodeJS.Timeout; deadline?: NodeJS.Timeout } = {};
      const finish = () => {
        clearInterval(timers.poll);
        clearTimeout(timers.deadline);
        for (const s of sockets) s.destroy();
        server.closeAllConnections();
        upstream.destroy();
        log.emit({ time: now(), type: 'shutdown' });
        log.flush();
        resolve();
      };
      if (sockets.size === 0) return finish();
      timers.deadline = setTimeout(finish, graceMs);
      timers.poll = setInterval(() => {
        server.closeIdleConnections();
        if (sockets.size === 0) finish();
      }, 50);
    });
    return closing;
  }

  return {
    address,
    url,
    reload,
    close,
    stats: () => ({ connections: sockets.size, certsMinted: certs.minted, certsCached: certs.size, policyHash }),
  };
}
