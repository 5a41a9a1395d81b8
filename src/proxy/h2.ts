// HTTP/2 inside an intercepted session (the agent's leg): node:http2 serves the decrypted TLS socket (its framing,
// HPACK and flow control; no hand-written parser), and each stream is one request, decided and logged on its own
// exactly as an HTTP/1.1 request inside the session is (gate.ts: gateStream; record.ts: one event, with
// `proto: 'h2'`): path rules, :authority against the CONNECT host, credential injection and its redaction in what
// comes back, the data-loss guard over headers and the body's first bytes, holds (onUnknown: ask). A refused
// stream gets its 403 (Reason:/Fix: body) on that stream only; the others go on. Allowed streams go to an upstream
// h2 session (h2upstream.ts) with trailers both ways, back-pressure each way and resets passed on.
//
// Limits (what the HTTP/1.1 framing rules are for HTTP/1.1): the header list (32 KiB, 128 pairs), the streams
// open at once (128), the session's memory, and client resets (rapid reset): a session past a limit is torn down.
//
// One file: a session and its streams share one lifecycle (settings, flow control, GOAWAY, the stream table), and
// splitting it would pass that state across files; the upstream leg is h2upstream.ts.
import * as http2 from 'node:http2';
import { performance } from 'node:perf_hooks';
import type * as tls from 'node:tls';
import { isAskable } from '../policy';
import type { Policy, ReasonCode, Rule } from '../policy/types';
import type { ConnCtx, Core } from './core';
import { findSecretInBuffer, redact } from './dlp';
import { gateStream, newHostMemo, privateAddressBlock, secretBlock, streamHeadersBlock, type Block, type HostMemo, type Refused, type StreamForward } from './gate';
import type { HeldRequest, RetryOutcome } from './hold';
import { MAX_HEAD } from './http1';
import { DecisionMemo } from './policyState';
import type { Pending } from './record';
import { SecretRedactor } from './reflect';
import { isPrivateAddressError } from './resolve';
import { BLOCK_HEADER, blockText, ERROR_HEADER } from './respond';
import { hostPort } from './target';

const { NGHTTP2_CANCEL, NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_NO_ERROR, NGHTTP2_REFUSED_STREAM } = http2.constants;

/** Streams open at once on one agent session. */
export const H2_MAX_STREAMS = 128;

/** What the proxy's agent-side sessions accept. */
const SERVER_OPTIONS: http2.ServerSessionOptions = {
  maxHeaderListPairs: 128,
  maxSessionMemory: 16, // MB: past it new streams are refused (ENHANCE_YOUR_CALM)
  maxSessionInvalidFrames: 100,
  maxSessionRejectedStreams: 100,
  settings: { maxConcurrentStreams: H2_MAX_STREAMS, maxHeaderListSize: MAX_HEAD, enablePush: false, enableConnectProtocol: false },
};

/** Client resets (RST_STREAM of a stream in flight) a session may send in RESET_WINDOW_MS before it is torn down. */
const MAX_RESETS = 200;
const RESET_WINDOW_MS = 1000;

/**
 * How long a request's headers wait for its first body bytes before they go upstream: a body that follows its
 * headers (the usual request) is scanned before anything is sent, as HTTP/1.1's is; a stream that sends nothing
 * yet (a server-speaks-first gRPC stream) is not kept waiting.
 */
const FIRST_BYTES_MS = 20;
/** Bytes of the previous body chunk scanned again with the next (a credential split across DATA frames). */
const OVERLAP = 512;
/** Body bytes queued from the agent (upstream not ready) before its stream stops being read. */
const MAX_QUEUED = 256 * 1024;

/** What the streams of one agent session share. */
interface SessionState {
  readonly ctx: ConnCtx;
  readonly seen: HostMemo;
  readonly memo: DecisionMemo;
  resets: number;
  resetsSince: number;
}

/** Serves the h2 session the agent opened on `tlsSock` (ALPN chose h2; intercept.ts). */
export function serveH2(core: Core, tlsSock: tls.TLSSocket, ctx: ConnCtx): void {
  // A server-side TLSSocket built over a socket (not by a tls.Server) keeps `secureConnecting` set after its
  // handshake (only a tls.Server clears it), and node:http2 would wait for a 'secureConnect' that never comes.
  (tlsSock as { secureConnecting?: boolean }).secureConnecting = false;
  const session = http2.performServerHandshake(tlsSock, SERVER_OPTIONS);
  const st: SessionState = { ctx, seen: newHostMemo(), memo: new DecisionMemo(), resets: 0, resetsSince: 0 };
  core.h2Sessions.add(session);
  session.on('stream', (stream, headers) => {
    try {
      new H2Stream(core, st, session, stream, headers).start();
    } catch (e) {
      core.error(`an HTTP/2 stream failed and was reset: ${redact(e instanceof Error ? e.message : String(e)).slice(0, 300)}`);
      stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    }
  });
  session.on('error', () => session.destroy());
  session.on('close', () => {
    core.h2Sessions.delete(session);
    tlsSock.destroy();
  });
  session.setTimeout(core.keepAliveMs, () => session.close());
}

/** One client reset more on the session; past the limit (rapid reset), the session is torn down. */
function noteReset(st: SessionState, session: http2.ServerHttp2Session): void {
  const now = performance.now();
  if (now - st.resetsSince > RESET_WINDOW_MS) {
    st.resetsSince = now;
    st.resets = 0;
  }
  if (++st.resets > MAX_RESETS && !session.destroyed) {
    session.goaway(NGHTTP2_ENHANCE_YOUR_CALM);
    session.destroy();
  }
}

/** The size of a header list as HTTP/2 counts it (RFC 9113 6.5.2: name, value and 32 octets per field). */
function headerListSize(h: http2.IncomingHttpHeaders): number {
  let n = 0;
  for (const k of Object.keys(h)) {
    const v = h[k];
    if (v === undefined) continue;
    if (typeof v === 'string') n += k.length + v.length + 32;
    else for (const x of v) n += k.length + x.length + 32;
  }
  return n;
}

function pseudo(h: http2.IncomingHttpHeaders, name: string): string {
  const v = h[name];
  return typeof v === 'string' ? v : '';
}

/** Response headers never passed to the agent (connection-specific, RFC 9113 8.2.2). */
const RESPONSE_DROP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'http2-settings']);

/** One stream: its decision and event (a Pending of record.ts), then its relay to the upstream stream. */
class H2Stream implements Pending {
  t0 = performance.now();
  recorded = false;
  /** How the session arrived (the events' `via`): that of its CONNECT context. */
  readonly via: ConnCtx['via'];
  private readonly host: string;
  private readonly port: number;
  private readonly method: string;
  private path: string;
  private prep: StreamForward | undefined;
  private up: http2.ClientHttp2Stream | undefined;
  private held: HeldRequest | undefined;
  private heldBlock: Block | undefined;
  private redactor: SecretRedactor | undefined;
  private status: number | undefined;
  private done = false;
  // request body
  private queue: Buffer[] = [];
  private queued = 0;
  private scanned = 0;
  private tail: Buffer | undefined;
  private ended: boolean;
  private trailers: http2.IncomingHttpHeaders | undefined;
  private upTrailers: http2.OutgoingHttpHeaders | undefined;
  private firstTimer: NodeJS.Timeout | undefined;
  /** The upstream stream is being (or was) opened. */
  private opening = false;

  constructor(
    private readonly core: Core,
    private readonly st: SessionState,
    private readonly session: http2.ServerHttp2Session,
    private readonly stream: http2.ServerHttp2Stream,
    private readonly headers: http2.IncomingHttpHeaders,
  ) {
    this.via = st.ctx.via;
    this.host = st.ctx.host;
    this.port = st.ctx.port;
    this.method = pseudo(headers, ':method') || 'GET';
    this.path = pseudo(headers, ':path');
    this.ended = stream.endAfterHeaders;
    stream.on('error', () => {});
    stream.on('aborted', () => noteReset(st, session));
    stream.on('close', this.guard(this.onClientClose));
  }

  start(): void {
    // The header list bound of HTTP/1.1's heads (MAX_HEAD), checked here too: the advertised setting binds a peer
    // only once it acknowledged our SETTINGS, and an attacker need not. As HTTP/1.1 answers 431 and closes, the
    // stream gets 431 and the session takes no new streams.
    if (headerListSize(this.headers) > MAX_HEAD) {
      this.done = true;
      this.answer(431, [], 'Caged Agent: request headers too large.\n');
      this.session.close();
      return;
    }
    const ctx = this.st.ctx;
    const bad = streamHeadersBlock(this.headers, ctx.secure, ctx.rule);
    if (bad) return this.block(bad, this.path.slice(0, 200));
    if (ctx.blocked && !isAskable(ctx.blocked.reason)) return this.block(ctx.blocked, this.path);
    this.go();
  }

  /** Decides the stream (under the policy in force, or `once` on top of it) and carries it out. */
  private go(once?: Policy): RetryOutcome {
    const target = pseudo(this.headers, ':path');
    const policy = this.core.policy;
    const d = once ? policy.decide(this.host, this.port, this.method, target, once) : this.st.memo.decide(policy, this.host, this.port, this.method, target);
    const p = gateStream(d, this.headers, this.host, this.port, this.core.env, this.st.seen);
    if (!('headers' in p)) {
      const b = isAskable(p.reason) ? (this.core.temporaries.deniedFor(this.host, this.port) ?? this.holdFor(p)) : p;
      if (!b) return 'held';
      this.block(b, p.path);
      return 'denied';
    }
    this.prep = p;
    this.path = p.path;
    if (p.secret) this.redactor = new SecretRedactor(p.secret);
    this.readBody();
    if (this.done) return 'denied';
    if (this.ended || this.queued >= this.core.dlpBytes) this.openUp();
    else this.firstTimer = setTimeout(this.guard(() => this.openUp()), FIRST_BYTES_MS);
    return 'allowed';
  }

  private holdFor(b: Refused): Block | undefined {
    const hold = this.core.hold;
    if (!hold.asking) return b;
    const h: HeldRequest = {
      host: this.host,
      port: this.port,
      method: this.method,
      path: b.path,
      due: Date.now() + hold.timeoutSeconds * 1000,
      retry: (once) => {
        if (this.held !== h || this.done) return 'denied';
        this.held = undefined;
        try {
          return this.go(once);
        } catch (e) {
          this.failClosed(e);
          return 'denied';
        }
      },
      refuse: this.guard((why: Block) => {
        if (this.held !== h || this.done) return;
        this.held = undefined;
        this.block(why, h.path);
      }),
    };
    const full = hold.hold(h);
    if (full) return full;
    this.held = h;
    this.heldBlock = b;
    return undefined;
  }

  // ------------------------------------------------------------------ request body (agent → upstream)
  private readBody(): void {
    const s = this.stream;
    s.on('data', this.guard((d: Buffer) => this.onBody(d)));
    s.on('trailers', (t: http2.IncomingHttpHeaders) => (this.trailers = t));
    s.on('end', this.guard(() => {
      this.ended = true;
      if (this.up) this.endUp();
      else this.openUp();
    }));
  }

  private onBody(d: Buffer): void {
    if (this.done) return;
    if (this.scanned < this.core.dlpBytes) {
      const part = d.length > this.core.dlpBytes - this.scanned ? d.subarray(0, this.core.dlpBytes - this.scanned) : d;
      this.scanned += part.length;
      const hit = findSecretInBuffer(this.tail ? Buffer.concat([this.tail, part]) : part);
      if (hit) return this.refuseLate(secretBlock('body', hit, this.prep?.rule));
      this.tail = part.length > OVERLAP ? part.subarray(part.length - OVERLAP) : part;
    }
    if (this.up) {
      if (!this.up.write(d)) {
        this.stream.pause();
        this.up.once('drain', () => this.stream.resume());
      }
      return;
    }
    this.queue.push(d);
    this.queued += d.length;
    if (this.queued >= this.core.dlpBytes) this.openUp();
    if (this.queued > MAX_QUEUED) this.stream.pause();
  }

  /** Opens the upstream stream once (the headers and what the agent sent so far passed every check). */
  private openUp(): void {
    clearTimeout(this.firstTimer);
    const p = this.prep;
    if (!p || this.done || this.opening) return;
    this.opening = true;
    this.core.h2.session(this.host, this.port, p.allowPrivate).then(
      this.guard((session: http2.ClientHttp2Session | undefined) => {
        if (this.done) return;
        if (!session) return this.upstreamFailed(Object.assign(new Error('the upstream no longer speaks HTTP/2'), { code: 'EPROTO' }));
        this.startUp(session, p);
      }),
      this.guard((e: NodeJS.ErrnoException) => {
        if (!this.done) this.upstreamFailed(e);
      }),
    );
  }

  private startUp(session: http2.ClientHttp2Session, p: StreamForward): void {
    let up: http2.ClientHttp2Stream;
    try {
      up = session.request(p.headers, { endStream: false, waitForTrailers: true });
    } catch (e) {
      return this.upstreamFailed(e as NodeJS.ErrnoException);
    }
    this.up = up;
    up.on('response', this.guard((h: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader) => this.onResponse(h)));
    up.on('trailers', this.guard((t: http2.IncomingHttpHeaders) => (this.upTrailers = this.cleanHeaders(t))));
    up.on('wantTrailers', this.guard(() => {
      const t = this.trailers ? this.cleanHeaders(this.trailers) : {};
      up.sendTrailers(t);
    }));
    up.on('data', this.guard((d: Buffer) => this.onUpData(d)));
    up.on('end', this.guard(() => this.onUpEnd()));
    up.on('error', () => {});
    up.on('close', this.guard(() => this.onUpClose(up)));
    for (const d of this.queue) {
      if (!up.write(d)) {
        this.stream.pause();
        up.once('drain', () => this.stream.resume());
      }
    }
    this.queue = [];
    this.queued = 0;
    if (this.ended) this.endUp();
    else if (this.stream.isPaused() && !up.writableNeedDrain) this.stream.resume();
  }

  private endUp(): void {
    const up = this.up!;
    if (!up.writableEnded) up.end();
  }

  // ------------------------------------------------------------------ response (upstream → agent)
  /** Headers from the upstream for the agent: pseudo-headers other than :status and connection-specific ones dropped, the credential overwritten. */
  private cleanHeaders(h: http2.IncomingHttpHeaders): http2.OutgoingHttpHeaders {
    const out: http2.OutgoingHttpHeaders = {};
    for (const k of Object.keys(h)) {
      const v = h[k];
      if (v === undefined || RESPONSE_DROP.has(k) || (k.charCodeAt(0) === 58 && k !== ':status')) continue;
      out[k] = this.redactor ? this.maskHeader(v) : v;
    }
    return out;
  }

  private maskHeader(v: string | string[] | number): string | string[] | number {
    const s = this.prep!.secret!.toString('latin1');
    const mask = (x: string) => {
      if (!x.includes(s)) return x;
      this.redactor!.count++;
      return x.split(s).join('*'.repeat(s.length));
    };
    return typeof v === 'string' ? mask(v) : Array.isArray(v) ? v.map(mask) : v;
  }

  private onResponse(h: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader): void {
    if (this.done || this.stream.destroyed) return;
    const status = Number(h[':status']);
    if (status >= 100 && status < 200) return; // interim (103 Early Hints): not passed on
    this.status = status;
    const p = this.prep!;
    const headers = this.cleanHeaders(h);
    headers[':status'] = status;
    try {
      this.stream.respond(headers, { waitForTrailers: true });
    } catch {
      this.up?.close(NGHTTP2_CANCEL);
      return this.finish('allow', 'allowed', p.rule, 502, 'bad-response');
    }
    this.stream.on('wantTrailers', this.guard(() => {
      const t = this.upTrailers;
      this.stream.sendTrailers(t ?? {});
    }));
    this.stream.on('drain', () => this.up?.resume());
    if (!this.redactor) this.record('allow', 'allowed', p.rule, status);
  }

  private onUpData(d: Buffer): void {
    const out = this.redactor ? this.redactor.push(Buffer.from(d), [0, d.length]) : d;
    if (out.length && !this.stream.write(out)) this.up?.pause();
  }

  private onUpEnd(): void {
    if (this.done || this.status === undefined) return;
    const tail = this.redactor?.flush();
    if (tail?.length) this.stream.write(tail);
    this.stream.end();
    const p = this.prep!;
    if (this.redactor) this.record('allow', 'allowed', p.rule, this.status, this.redactor.count ? 'credential-redacted' : undefined);
  }

  private onUpClose(up: http2.ClientHttp2Stream): void {
    if (this.done || this.up !== up) return;
    const code = up.rstCode ?? NGHTTP2_NO_ERROR;
    if (this.status === undefined) {
      // Nothing came back.
      const e = Object.assign(new Error(code === NGHTTP2_REFUSED_STREAM ? 'the upstream refused the stream' : 'the upstream closed the stream without a response'), { code: code === NGHTTP2_REFUSED_STREAM ? 'EREFUSED' : 'ECONNRESET' });
      return this.upstreamFailed(e);
    }
    if (code !== NGHTTP2_NO_ERROR && !this.stream.destroyed) {
      // Reset mid-response: the agent sees the reset too.
      this.finish('allow', 'allowed', this.prep!.rule, this.status, 'upstream-reset');
      this.stream.close(code);
    }
  }

  // ------------------------------------------------------------------ ends
  private readonly onClientClose = (): void => {
    clearTimeout(this.firstTimer);
    if (this.held) {
      const h = this.held;
      this.held = undefined;
      this.core.hold.drop(h);
      const b = this.heldBlock;
      if (b) this.record('block', b.reason, b.rule, undefined, 'client-left-while-held');
    }
    const up = this.up;
    if (up && !up.closed && !up.destroyed) up.close(this.stream.rstCode && this.stream.rstCode !== NGHTTP2_NO_ERROR ? this.stream.rstCode : NGHTTP2_CANCEL);
    const p = this.prep;
    if (p && !this.recorded) this.record('allow', 'allowed', p.rule, this.status, this.redactor?.count ? 'credential-redacted' : 'client-aborted');
    this.done = true;
  };

  /** `fn` as a listener: whatever it throws fails this stream closed (reset both ways), never the proxy. */
  private guard<A extends unknown[]>(fn: (...a: A) => void): (...a: A) => void {
    return (...a: A) => {
      try {
        fn(...a);
      } catch (e) {
        this.failClosed(e);
      }
    };
  }

  /** Something threw while this stream was served: nothing more of it goes anywhere; its event if it owes one. */
  private failClosed(e: unknown): void {
    const wasDone = this.done;
    this.done = true;
    this.queue = [];
    try {
      this.core.error(`an HTTP/2 stream failed and was reset: ${redact(e instanceof Error ? e.message : String(e)).slice(0, 300)}`);
      if (!wasDone && this.prep) this.record('allow', 'allowed', this.prep.rule, this.status, 'proxy-error');
    } catch {}
    try {
      this.up?.close(NGHTTP2_CANCEL);
      if (!this.stream.destroyed) this.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    } catch {}
  }

  /** The event (once) and no more relaying. */
  private finish(type: 'allow' | 'block', reason: ReasonCode, rule: Rule | undefined, status?: number, detail?: string): void {
    this.record(type, reason, rule, status, detail);
    this.done = true;
  }

  private record(type: 'allow' | 'block', reason: ReasonCode, rule: Rule | undefined, status?: number, detail?: string): void {
    this.core.decisions.recordDecision(this, type, this.host, this.port, this.method, this.path, reason, rule, status, detail, 'h2');
    this.st.ctx.recorded = true;
  }

  /** A 403 with the block on this stream only (and its event); the session goes on. */
  private block(b: Block, path: string): void {
    this.path = path;
    this.finish('block', b.reason, b.rule, 403, b.detail);
    this.up?.close(NGHTTP2_CANCEL);
    const s = this.stream;
    if (s.destroyed || s.closed) return;
    if (s.headersSent) return s.close(NGHTTP2_CANCEL);
    s.resume(); // what the agent still sends is read and dropped
    const body = blockText(redact(`${this.method} https://${hostPort(this.host, this.port, true)}${path}`), b.reason, redact(b.message));
    this.answer(403, [[BLOCK_HEADER, b.reason], ['cache-control', 'no-store']], body);
  }

  /** A block found after the stream went on (a credential in a later body chunk): nothing more of it goes anywhere. */
  private refuseLate(b: Block): void {
    this.queue = [];
    this.block(b, this.path);
  }

  private upstreamFailed(err: NodeJS.ErrnoException): void {
    const p = this.prep;
    if (!p) return;
    if (isPrivateAddressError(err)) return this.block(privateAddressBlock(this.host, p.rule, err.addressClass, err.address), this.path);
    const code = err.code ?? 'ERROR';
    this.finish('allow', 'upstream-error', p.rule, 502, code);
    const what = `https://${hostPort(this.host, this.port, true)}${this.path}`;
    if (!this.stream.destroyed && !this.stream.headersSent) this.answer(502, [[ERROR_HEADER, 'upstream-error']], `Caged Agent could not reach ${what}: ${code}${err.message && !err.message.includes(code) ? ` (${err.message})` : ''}\n`);
    else if (!this.stream.destroyed) this.stream.close(NGHTTP2_CANCEL);
  }

  /** A complete local answer on this stream. The request body (if any) is not read: the stream is reset after. */
  private answer(status: number, extra: Array<[string, string]>, body: string): void {
    const s = this.stream;
    const headers: http2.OutgoingHttpHeaders = { ':status': status, 'content-type': 'text/plain; charset=utf-8' };
    for (const [k, v] of extra) headers[k.toLowerCase()] = v;
    const head = this.method === 'HEAD';
    headers['content-length'] = head ? 0 : Buffer.byteLength(body);
    try {
      s.respond(headers, { endStream: head });
      if (!head) s.end(body);
    } catch {
      s.close(NGHTTP2_CANCEL);
    }
  }
}
