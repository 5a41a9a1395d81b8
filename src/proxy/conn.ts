// One client connection of the proxy (a plain TCP connection from the agent, or an intercepted TLS session
// or plain-HTTP stream inside a CONNECT): a lean HTTP/1.1 relay. Each request head is parsed once, decided
// once (gate.ts: one verdict, one event line through record.ts), rewritten and sent to a pooled upstream
// connection; bodies in both directions are forwarded as they arrive, with framing tracked (Content-Length
// or chunked) so both legs stay keep-alive. Response heads are passed through unchanged.
//
// One file on purpose: ClientConn is one state machine over two sockets (idle → exchange → idle, or pipe, or
// closed), and its transitions (a pipelined head during a body, an upstream that answers before the body
// ended, a stale pooled socket replayed, back-pressure each way, the data-loss hold) read each other's state.
// What is not the exchange itself lives elsewhere: the verdict (gate.ts), the upstream head (upstreamHead.ts),
// the decision memo (policyState.ts), the event (record.ts), local answers (respond.ts), CONNECT (connect.ts).
import type * as net from 'node:net';
import { performance } from 'node:perf_hooks';
import { isAskable } from '../policy';
import type { Policy, ReasonCode, Rule } from '../policy/types';
import type { ConnCtx, Core } from './core';
import { findSecretInBuffer, redact } from './dlp';
import { gateRequest, newHostMemo, privateAddressBlock, secretBlock, targetMismatchBlock, type Block, type Forward, type Refused } from './gate';
import type { HeldRequest, RetryOutcome } from './hold';
import { ChunkedScanner, findHeadEnd, HeadError, MAX_HEAD, parseRequestHead, parseResponseHead, type RequestHead, type ResponseHead } from './http1';
import { endSoon } from './linger';
import { DecisionMemo } from './policyState';
import type { Pending } from './record';
import { own, readInto, writeChunk } from './readbuf';
import { SecretRedactor } from './reflect';
import { isPrivateAddressError } from './resolve';
import { blockResponse, textResponse, upstreamErrorResponse } from './respond';
import { hostPort, parseAbsolute, safePath, targetFromHost } from './target';
import type { UpConn, UpOwner } from './upstream';

const HEALTH_PATH = '/__caged/health';
const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n';
/** Body bytes buffered from the client before we stop reading (back-pressure). */
const MAX_PENDING = 1024 * 1024;
/**
 * Unsent bytes to the client above which the proxy stops answering pipelined requests itself and stops
 * reading, until the client drains: a client that pipelines and never reads costs at most this much.
 */
const OUT_HWM = 64 * 1024;

const enum Mode {
  Idle, // waiting for / parsing a request head
  Exchange, // a request is in flight
  Pipe, // upgraded (WebSocket): raw bytes both ways
  Closed,
}

export class ClientConn implements UpOwner, Pending {
  private mode = Mode.Idle;
  /** Unparsed client bytes: a partial head, or pipelined requests waiting for the current exchange. */
  private buf: Buffer | undefined;
  /** parseNext() is running: a request answered locally inside it must not start another parse. */
  private parsing = false;
  private waitingParseDrain = false;

  // ---- current exchange (the Pending of record.ts: its decision event is written once)
  t0 = 0;
  recorded = false;
  private req: RequestHead | undefined;
  private host = '';
  private port = 0;
  private secure = false;
  private prep: Forward | undefined;
  private keepAlive = true;
  /** Request body framing state. */
  private reqLeft = 0;
  private reqScanner: ChunkedScanner | undefined;
  private reqDone = true;
  /** Body bytes not yet sent upstream (upstream not ready, or held for the DLP scan). */
  private pending: Buffer[] = [];
  private pendingSize = 0;
  /**
   * The body's first bytes are held for the data-loss guard: nothing of the request (head included) goes
   * upstream until the scan passed. Only a clean scan clears it; a hit (or anything thrown on the way to
   * the block) leaves it set, so send() never writes.
   */
  private holding = false;
  /** Everything that was sent upstream, while it is small enough to replay on a stale pooled socket. */
  private replay: Buffer[] | undefined;
  private retried = false;
  private up: UpConn | undefined;
  private acquiring = false;
  private upgrade = false;
  /** Some of this request reached an upstream connection (it then gets an event whatever happens next). */
  private sentUp = false;
  // response state
  private respHead: ResponseHead | undefined;
  private respBuf: Buffer | undefined;
  private respLeft = 0;
  private respScanner: ChunkedScanner | undefined;
  /** Overwrites the injected credential in what the upstream sends back (exchanges with auth only). */
  private redactor: SecretRedactor | undefined;
  private gotResponseBytes = false;
  private waitingUpDrain = false;
  private waitingClientDrain = false;
  private readonly memo = new DecisionMemo();
  /** The current request waits in the hold queue (hold.ts), with the block it would otherwise get. */
  private held: HeldRequest | undefined;
  private heldBlock: Block | undefined;
  /** The last Host header this connection checked (gate.ts). */
  private readonly seen = newHostMemo();
  private lastActive: number;

  /** How the connection arrived (the events' `via`): that of its CONNECT context, if any. */
  get via(): ConnCtx['via'] {
    return this.ctx?.via;
  }

  constructor(
    private readonly core: Core,
    readonly sock: net.Socket,
    private readonly ctx: ConnCtx | undefined,
    initial?: Buffer,
  ) {
    // Intercepted TLS sessions read into the shared buffer (see readbuf.ts); everything else uses 'data'.
    if (!((sock as { encrypted?: boolean }).encrypted === true && readInto(sock, this.onData))) sock.on('data', this.onData);
    sock.on('error', this.onSockError);
    sock.on('close', this.onSockClose);
    sock.on('end', this.onSockEnd);
    this.lastActive = core.coarseNow();
    core.conns.add(this);
    if (initial && initial.length) this.onData(initial);
  }

  // ------------------------------------------------------------------ client socket events
  // `d` may be a view of the shared read buffer (readbuf.ts): whatever is kept past this call goes through
  // own(), whatever is written goes through writeChunk().
  private readonly onData = (d: Buffer): void => {
    this.lastActive = this.core.coarseNow();
    try {
      switch (this.mode) {
        case Mode.Exchange:
          if (!this.reqDone) return this.onRequestBody(d);
          // Pipelined bytes for a later request: keep them, stop reading if they pile up.
          this.buf = this.buf ? Buffer.concat([this.buf, d]) : own(d);
          if (this.buf.length > MAX_HEAD) this.sock.pause();
          return;
        case Mode.Pipe:
          if (this.up && !writeChunk(this.up.sock, d)) this.waitUpDrain();
          return;
        case Mode.Closed:
          return;
        default:
          this.buf = this.buf ? Buffer.concat([this.buf, d]) : d;
          this.parseNext();
          // A partial head (or pipelined bytes) left over from a view: keep a copy.
          if (this.buf) this.buf = own(this.buf);
      }
    } catch (e) {
      this.failClosed(e);
    }
  };

  private readonly onSockError = (): void => {
    this.close();
  };

  private readonly onSockEnd = (): void => {
    // The client half-closed: finish what is in flight, then close.
    this.keepAlive = false;
    if (this.mode === Mode.Idle) this.close(true);
    // A client that stops sending while its request waits for an answer has given up (curl's --max-time, a
    // killed tool): it leaves the queue now rather than at the deadline.
    else if (this.held) this.close(false);
    else if (this.mode === Mode.Pipe) this.up?.sock.end();
  };

  private readonly onSockClose = (): void => {
    this.close();
  };

  /**
   * Called by the proxy's periodic sweep: closes a connection idle between requests for keepAliveMs, and one
   * whose client has not read what it was sent for as long (waiting for it to drain).
   */
  sweep(now: number): void {
    if ((this.mode === Mode.Idle || this.waitingClientDrain) && now - this.lastActive >= this.core.keepAliveMs) this.close(false, 'client-stalled');
  }

  /** True between requests (nothing in flight). */
  get idle(): boolean {
    return this.mode === Mode.Idle && !this.buf;
  }

  /** Graceful shutdown: close now if idle, otherwise after the current exchange. */
  shutdown(): void {
    this.keepAlive = false;
    if (this.mode === Mode.Idle) this.close(true);
    // A client that stops sending while its request waits for an answer has given up (curl's --max-time, a
    // killed tool): it leaves the queue now rather than at the deadline.
    else if (this.held) this.close(false);
  }

  /**
   * Closes the connection. A request that reached the upstream and has no event yet gets one now: status
   * if a response head came, and `why` as the detail (the client went away, the upstream cut it off...).
   */
  close(graceful = false, why = 'client-aborted'): void {
    this.core.conns.delete(this);
    if (this.mode === Mode.Closed) return;
    const wasExchange = this.mode === Mode.Exchange || this.mode === Mode.Pipe;
    this.dropHeld();
    this.mode = Mode.Closed;
    this.dropUp(); // only an exchange or a pipe has one
    if (wasExchange) this.logPending(why);
    if (graceful) endSoon(this.sock, this.core.keepAliveMs);
    else this.sock.destroy();
  }

  /** Destroys the upstream connection of the exchange, if any: it is never reused. */
  private dropUp(): void {
    const up = this.up;
    this.up = undefined;
    up?.destroy();
  }

  /** The event of a request that reached the upstream and was not logged yet. */
  private logPending(why: string): void {
    const p = this.prep;
    if (!p || !this.sentUp) return;
    this.record('allow', p.path, 'allowed', p.rule, this.respHead?.status, this.redactor?.count ? 'credential-redacted' : why);
  }

  /**
   * Something threw while this connection was being served. Fail closed: nothing more of it goes upstream,
   * a request that already reached the upstream still gets its event (if the log can take it), and the
   * connection is destroyed.
   */
  private failClosed(e: unknown): void {
    this.holding = true;
    this.dropUp();
    try {
      this.core.error(`a client connection failed and was closed: ${redact(e instanceof Error ? e.message : String(e)).slice(0, 300)}`);
    } catch {}
    try {
      this.dropHeld();
      if (this.mode === Mode.Exchange || this.mode === Mode.Pipe) this.logPending('proxy-error');
    } catch {}
    this.mode = Mode.Closed;
    this.core.conns.delete(this);
    this.buf = undefined;
    this.sock.destroy();
  }

  /** Writes a complete local response (block, error, health) and continues or closes. */
  private respondLocal(text: string): void {
    // A request whose body we did not read (fully) cannot be followed by another on this connection.
    const close = !this.keepAlive || !this.reqDone;
    this.sock.write(text);
    this.endExchange(close);
  }

  private endExchange(close: boolean): void {
    this.req = undefined;
    this.prep = undefined;
    this.respHead = undefined;
    this.respBuf = undefined;
    this.respScanner = undefined;
    this.reqScanner = undefined;
    this.redactor = undefined;
    this.pending = [];
    this.pendingSize = 0;
    this.replay = undefined;
    this.dropUp();
    if (close || !this.keepAlive) {
      this.mode = Mode.Closed;
      this.core.conns.delete(this);
      endSoon(this.sock, this.core.keepAliveMs);
      return;
    }
    this.mode = Mode.Idle;
    this.lastActive = this.core.coarseNow();
    if (this.sock.isPaused() && !this.waitingParseDrain) this.sock.resume();
    // Pipelined requests: parsed here when the exchange ended asynchronously (an upstream response); when it
    // ended inside parseNext (a local answer), its loop goes on instead: no recursion, however many there are.
    if (this.buf && !this.parsing) this.parseNext();
  }

  // ------------------------------------------------------------------ request heads
  private parseNext(): void {
    this.parsing = true;
    try {
      while (this.mode === Mode.Idle && this.buf) {
        // Local answers (blocks, errors) pile up unsent when the client does not read: stop parsing and
        // reading until it drains.
        if (this.sock.writableLength > OUT_HWM) return this.waitParseDrain();
        let buf: Buffer = this.buf;
        // Tolerate empty lines before a request (RFC 9112 2.2).
        let skip = 0;
        while (skip + 1 < buf.length && buf[skip] === 0x0d && buf[skip + 1] === 0x0a) skip += 2;
        if (skip) {
          if (skip === buf.length) {
            this.buf = undefined;
            return;
          }
          buf = this.buf = buf.subarray(skip);
        }
        const end = findHeadEnd(buf);
        if (end < 0) {
          if (buf.length > MAX_HEAD) return this.fatal(431, 'Request Header Fields Too Large', 'request headers too large');
          return;
        }
        if (end > MAX_HEAD) return this.fatal(431, 'Request Header Fields Too Large', 'request headers too large');
        const t0 = performance.now();
        let head: RequestHead;
        try {
          head = parseRequestHead(buf, end);
        } catch (e) {
          const he = e as HeadError;
          return this.fatal(he.status ?? 400, he.status === 505 ? 'HTTP Version Not Supported' : he.status === 501 ? 'Not Implemented' : 'Bad Request', he.message);
        }
        const rest = end < buf.length ? buf.subarray(end) : undefined;
        this.buf = undefined;
        if (head.method === 'CONNECT') {
          if (this.ctx) return this.fatal(400, 'Bad Request', 'CONNECT inside a tunnel is not supported');
          this.mode = Mode.Closed;
          this.core.conns.delete(this);
          this.detach();
          this.core.connect(this.sock, rest ? own(rest) : Buffer.alloc(0), head.target, t0);
          return;
        }
        this.startExchange(head, t0);
        if (!rest) continue;
        const mode = this.mode as Mode; // the exchange may have ended inside startExchange (a local answer)
        if (mode === Mode.Exchange && !this.reqDone) this.onRequestBody(rest);
        else if (mode !== Mode.Closed) {
          this.buf = this.buf ? Buffer.concat([this.buf, rest]) : rest;
          if (mode === Mode.Exchange && this.buf.length > MAX_HEAD) this.sock.pause();
        }
      }
    } finally {
      this.parsing = false;
    }
  }

  /** Stops reading until the client took the answers already written, then parses on. */
  private waitParseDrain(): void {
    this.sock.pause();
    if (this.waitingParseDrain) return;
    this.waitingParseDrain = true;
    this.sock.once('drain', () => {
      this.waitingParseDrain = false;
      if (this.mode !== Mode.Idle) return;
      this.lastActive = this.core.coarseNow();
      this.sock.resume();
      try {
        if (this.buf) {
          this.parseNext();
          if (this.buf) this.buf = own(this.buf);
        }
      } catch (e) {
        this.failClosed(e);
      }
    });
  }

  private detach(): void {
    this.sock.removeListener('data', this.onData);
    this.sock.removeListener('error', this.onSockError);
    this.sock.removeListener('close', this.onSockClose);
    this.sock.removeListener('end', this.onSockEnd);
  }

  /** A protocol error on the client connection: answer (if possible) and close. */
  private fatal(status: number, statusText: string, what: string): void {
    const wasExchange = this.mode === Mode.Exchange;
    const open = this.mode !== Mode.Closed && this.sock.writable;
    this.mode = Mode.Closed;
    this.core.conns.delete(this);
    this.buf = undefined;
    this.dropUp();
    if (wasExchange) this.logPending('bad-request-body');
    if (open) endSoon(this.sock, this.core.keepAliveMs, textResponse(status, statusText, [], `Caged Agent: ${what}.\n`, true));
    else this.sock.destroy();
  }

  private startExchange(req: RequestHead, t0: number): void {
    this.mode = Mode.Exchange;
    this.req = req;
    this.t0 = t0;
    this.recorded = false;
    this.sentUp = false;
    this.retried = false;
    this.gotResponseBytes = false;
    this.keepAlive = this.keepAlive && (req.minor === 1 ? !req.connection.includes('close') : req.connection.includes('keep-alive'));
    // Request body framing.
    this.reqScanner = undefined;
    if (req.bodyLength === -1) {
      this.reqScanner = new ChunkedScanner();
      this.reqDone = false;
    } else {
      this.reqLeft = req.bodyLength;
      this.reqDone = req.bodyLength === 0;
    }
    this.pending = [];
    this.pendingSize = 0;
    this.upgrade = req.upgrade !== undefined && req.connection.includes('upgrade');

    const ctx = this.ctx;
    const url = req.target;
    let target: string;
    if (ctx && !ctx.byHost) {
      this.host = ctx.host;
      this.port = ctx.port;
      this.secure = ctx.secure;
      if (url.charCodeAt(0) === 47 /* / */ || url === '*') target = url;
      else {
        const abs = parseAbsolute(url);
        if (!abs || abs.host !== ctx.host || abs.port !== ctx.port) return this.block(targetMismatchBlock(), safePath(url));
        target = abs.path;
      }
      // Answered inside the session so the agent can read why; one event per request, with its path.
      // A CONNECT no rule matched: each request inside is decided itself (a temporary allow or a reload may have
      // come since), and may be held for an answer.
      if (ctx.blocked && !isAskable(ctx.blocked.reason)) return this.block(ctx.blocked, safePath(target));
    } else {
      const abs = parseAbsolute(url) ?? (ctx ? targetFromHost(req.host, url, ctx.port) : undefined);
      if (!abs) {
        this.host = '';
        if (ctx) {
          this.keepAlive = false;
          return this.respondLocal(textResponse(400, 'Bad Request', [], `Caged Agent: this request names no host on port ${ctx.port} (its Host header must).\n`, true));
        }
        if (url === HEALTH_PATH || url.startsWith(HEALTH_PATH + '?')) {
          const body = this.core.healthBody();
          return this.respondLocal(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${this.keepAlive && this.reqDone ? '' : 'Connection: close\r\n'}\r\n${body}`);
        }
        return this.respondLocal(textResponse(400, 'Bad Request', [], 'This is the Caged Agent egress proxy. Use it as an HTTP proxy (absolute-form requests or CONNECT).\n', !this.keepAlive || !this.reqDone));
      }
      this.host = abs.host;
      this.port = abs.port;
      this.secure = abs.secure;
      target = abs.path;
    }

    this.go(target);
  }

  /**
   * Decides the current request (under the policy in force, or `once` on top of it) and carries it out: upstream,
   * a 403, or held for an answer (hold.ts) when no rule matches and the policy asks.
   */
  private go(target: string, once?: Policy): RetryOutcome {
    const req = this.req!;
    const d = once ? this.core.policy.decide(this.host, this.port, req.method, target, once) : this.memo.decide(this.core.policy, this.host, this.port, req.method, target);
    const p = gateRequest(d, req, this.host, this.port, this.secure, target, this.core.env, this.seen);
    if (!('head' in p)) {
      const b = isAskable(p.reason) ? (this.core.temporaries.deniedFor(this.host, this.port) ?? this.holdFor(p, target)) : p;
      if (!b) return 'held';
      this.block(b, p.path);
      return 'denied';
    }
    this.prep = p;
    if (p.secret) this.redactor = new SecretRedactor(p.secret);
    if (req.expectContinue && !this.reqDone) this.sock.write(CONTINUE);
    // Hold the first bytes of a body for the data-loss guard (some of it may have arrived while the request was held).
    this.holding = this.core.dlpBytes > 0 && (!this.reqDone || this.pendingSize > 0);
    this.replay = [];
    if (this.holding && (this.reqDone || this.pendingSize >= this.core.dlpBytes)) {
      this.releaseHold();
      if (this.mode !== Mode.Exchange || this.prep !== p) return 'denied';
    }
    this.acquire();
    return 'allowed';
  }

  /** Holds the current request for an answer when the policy asks; otherwise (or when the queue is full) the block to answer. */
  private holdFor(b: Refused, target: string): Block | undefined {
    const hold = this.core.hold;
    if (!hold.asking) return b;
    const h: HeldRequest = {
      host: this.host,
      port: this.port,
      method: this.req!.method,
      path: b.path,
      due: Date.now() + hold.timeoutSeconds * 1000,
      retry: (once) => {
        if (this.held !== h || this.mode !== Mode.Exchange) return 'denied';
        this.held = undefined;
        if (this.sock.isPaused()) this.sock.resume();
        try {
          return this.go(target, once);
        } catch (e) {
          this.failClosed(e);
          return 'denied';
        }
      },
      refuse: (why) => {
        if (this.held !== h || this.mode !== Mode.Exchange) return;
        this.held = undefined;
        try {
          this.block(why, h.path);
        } catch (e) {
          this.failClosed(e);
        }
      },
    };
    const full = hold.hold(h);
    if (full) return full;
    this.held = h;
    this.heldBlock = b;
    // A body waits in the client (nobody knows yet whether it may go anywhere). Without one the socket is
    // read on (pipelined bytes stop it at MAX_HEAD), so a client that gives up leaves the queue at once.
    if (!this.reqDone) this.sock.pause();
    return undefined;
  }

  /** The client left (or the connection failed) while its request was held: out of the queue, and its event. */
  private dropHeld(): void {
    const h = this.held;
    if (!h) return;
    this.held = undefined;
    this.core.hold.drop(h);
    const b = this.heldBlock;
    if (b) this.record('block', h.path, b.reason, b.rule, undefined, 'client-left-while-held');
  }

  private acquire(): void {
    const p = this.prep!;
    this.acquiring = true;
    this.core.pool.acquire(this.secure, this.host, this.port, p.allowPrivate, (err, up) => {
      this.acquiring = false;
      if (this.mode !== Mode.Exchange || this.prep !== p) {
        // The exchange ended (client gone, DLP block) while connecting: keep the clean connection.
        if (up) this.core.pool.release(up);
        return;
      }
      try {
        if (err || !up) return this.upstreamFailed(err ?? new Error('no connection'));
        this.up = up;
        up.owner = this;
        this.respBuf = undefined;
        this.respHead = undefined;
        this.send();
      } catch (e) {
        this.failClosed(e);
      }
    });
  }

  /** Sends the head (and whatever body is pending and released) once the upstream is ready. */
  private send(): void {
    const up = this.up;
    if (!up || this.holding || this.mode !== Mode.Exchange) return;
    const p = this.prep!;
    const headBuf = Buffer.from(p.head, 'latin1');
    let out: Buffer;
    if (this.pendingSize > 0) {
      out = Buffer.concat([headBuf, ...this.pending], headBuf.length + this.pendingSize);
      this.pending = [];
      this.pendingSize = 0;
    } else out = headBuf;
    if (this.replay) {
      if (this.reqDone && out.length <= 256 * 1024) this.replay.push(out);
      else this.replay = undefined;
    }
    this.sentUp = true;
    if (!up.write(out)) this.waitUpDrain();
    else if (!this.reqDone && this.sock.isPaused()) this.sock.resume();
  }

  /** Upstream write buffer full: stop reading the client until the upstream drains (one listener at a time). */
  private waitUpDrain(): void {
    const up = this.up;
    if (!up) return;
    this.sock.pause();
    if (this.waitingUpDrain) return;
    this.waitingUpDrain = true;
    up.sock.once('drain', () => {
      this.waitingUpDrain = false;
      if (this.up === up && this.mode !== Mode.Closed && (this.mode === Mode.Pipe || !this.reqDone)) this.sock.resume();
    });
  }

  // ------------------------------------------------------------------ request bodies
  private onRequestBody(d: Buffer): void {
    let take: number;
    if (this.reqScanner) {
      let end: number;
      try {
        end = this.reqScanner.feed(d);
      } catch (e) {
        return this.fatal(400, 'Bad Request', (e as Error).message);
      }
      take = end < 0 ? d.length : end;
      if (end >= 0) this.reqDone = true;
    } else {
      take = Math.min(this.reqLeft, d.length);
      this.reqLeft -= take;
      if (this.reqLeft === 0) this.reqDone = true;
    }
    const part = take === d.length ? d : d.subarray(0, take);
    if (take < d.length) this.buf = this.buf ? Buffer.concat([this.buf, d.subarray(take)]) : own(d.subarray(take));
    if (part.length) this.forwardBody(part);
    else if (this.reqDone && this.holding) this.releaseHold();
  }

  private forwardBody(part: Buffer): void {
    if (this.holding || !this.up || this.acquiring) {
      this.pending.push(own(part));
      this.pendingSize += part.length;
      if (this.holding && (this.pendingSize >= this.core.dlpBytes || this.reqDone)) return this.releaseHold();
      if (this.pendingSize > MAX_PENDING) this.sock.pause();
      if (!this.holding && this.up) this.send();
      return;
    }
    this.replay = undefined; // streamed: cannot be replayed
    if (!writeChunk(this.up.sock, part)) this.waitUpDrain();
  }

  /** The body's first bytes are all here: scan them; only a clean scan lets the request go upstream. */
  private releaseHold(): void {
    const prefix = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingSize);
    this.pending = prefix.length ? [prefix] : [];
    const hit = prefix.length ? findSecretInBuffer(prefix.length > this.core.dlpBytes ? prefix.subarray(0, this.core.dlpBytes) : prefix) : undefined;
    if (!hit) this.holding = false;
    else {
      if (this.up) {
        // Nothing was written to it yet: it is still clean.
        const up = this.up;
        this.up = undefined;
        up.owner = undefined;
        this.core.pool.release(up);
      }
      return this.block(secretBlock('body', hit, this.prep?.rule), this.prep?.path ?? '');
    }
    if (this.up && !this.acquiring) this.send();
    else if (this.pendingSize > MAX_PENDING) this.sock.pause();
  }

  // ------------------------------------------------------------------ blocks and errors
  /** A 403 for the agent and the block event. What they show of the request is redacted (see respond.ts). */
  private block(b: Block, path: string): void {
    const method = this.req?.method ?? 'GET';
    const scheme = this.upgrade ? (this.secure ? 'wss' : 'ws') : this.secure ? 'https' : 'http';
    this.record('block', path, b.reason, b.rule, 403, b.detail);
    this.respondLocal(blockResponse(`${method} ${scheme}://${hostPort(this.host, this.port, this.secure)}${path}`, b, !this.keepAlive || !this.reqDone || this.upgrade, method === 'HEAD'));
  }

  /** This exchange's decision event (once); inside a CONNECT it also stands for the CONNECT's. */
  private record(type: 'allow' | 'block', path: string, reason: ReasonCode, rule: Rule | undefined, status?: number, detail?: string): void {
    this.core.decisions.recordDecision(this, type, this.host, this.port, this.req?.method ?? 'GET', path, reason, rule, status, detail);
    if (this.ctx) this.ctx.recorded = true;
  }

  private upstreamFailed(err: NodeJS.ErrnoException): void {
    const p = this.prep;
    if (!p) return;
    if (isPrivateAddressError(err)) return this.block(privateAddressBlock(this.host, p.rule, err.addressClass, err.address), p.path);
    const code = err.code ?? 'ERROR';
    this.record('allow', p.path, 'upstream-error', p.rule, 502, code);
    const what = `${this.secure ? 'https' : 'http'}://${hostPort(this.host, this.port, this.secure)}${p.path}`;
    const body = `Caged Agent could not reach ${what}: ${code}${err.message && !err.message.includes(code) ? ` (${err.message})` : ''}\n`;
    this.respondLocal(upstreamErrorResponse(body, !this.keepAlive || !this.reqDone));
  }

  // ------------------------------------------------------------------ upstream events (UpOwner)
  onUpData(d: Buffer): void {
    this.gotResponseBytes = true;
    try {
      if (this.mode === Mode.Pipe) {
        const out = this.redactor ? this.redactor.push(d, [0, d.length]) : d;
        if (out.length && !writeChunk(this.sock, out)) this.pauseUpUntilDrain();
        return;
      }
      if (this.mode !== Mode.Exchange || !this.up) return;
      if (!this.respHead) return this.onResponseHeadBytes(d);
      this.onResponseBody(d, 0);
    } catch (e) {
      this.failClosed(e);
    }
  }

  onUpClose(err?: NodeJS.ErrnoException): void {
    const up = this.up;
    this.up = undefined;
    if (this.mode === Mode.Pipe) return this.close(true);
    if (this.mode !== Mode.Exchange || !up) return;
    if (!this.respHead) {
      // Nothing came back. A stale pooled connection: replay the request once on a fresh one.
      if (up.reused && !this.gotResponseBytes && !this.retried && this.replay && this.reqDone) {
        this.retried = true;
        const again = Buffer.concat(this.replay);
        this.replay = [];
        this.core.pool.acquire(this.secure, this.host, this.port, this.prep!.allowPrivate, (e2, fresh) => {
          if (this.mode !== Mode.Exchange) {
            if (fresh) this.core.pool.release(fresh);
            return;
          }
          if (e2 || !fresh) return this.upstreamFailed(e2 ?? new Error('no connection'));
          this.up = fresh;
          fresh.owner = this;
          fresh.write(again);
        });
        return;
      }
      return this.upstreamFailed(err ?? Object.assign(new Error('the upstream closed the connection without a response'), { code: 'ECONNRESET' }));
    }
    if (this.respHead.bodyLength === -2 && !err) {
      // Close-delimited body: the end of the connection is the end of the response.
      this.finishResponse();
      this.mode = Mode.Closed;
      this.core.conns.delete(this);
      endSoon(this.sock, this.core.keepAliveMs);
      return;
    }
    // Cut off in the middle of a response: the client must see a broken connection too.
    this.close(false, 'upstream-closed');
  }

  /** Client write buffer full: stop reading the upstream until the client drains (one listener at a time). */
  private pauseUpUntilDrain(): void {
    const up = this.up;
    if (!up) return;
    up.sock.pause();
    if (this.waitingClientDrain) return;
    this.waitingClientDrain = true;
    this.lastActive = this.core.coarseNow(); // the sweep closes a client that stays this way for keepAliveMs
    this.sock.once('drain', () => {
      this.waitingClientDrain = false;
      this.lastActive = this.core.coarseNow();
      // Only if that connection still serves us; the pool resumes connections it takes back.
      if (this.up === up) up.sock.resume();
    });
  }

  private onResponseHeadBytes(d: Buffer): void {
    let buf = this.respBuf ? Buffer.concat([this.respBuf, d]) : d;
    for (;;) {
      const end = findHeadEnd(buf);
      if (end < 0) {
        if (buf.length > MAX_HEAD) return this.badUpstream('response head too large');
        this.respBuf = own(buf);
        return;
      }
      let r: ResponseHead;
      try {
        r = parseResponseHead(buf, end, this.req!.method);
      } catch (e) {
        return this.badUpstream((e as Error).message);
      }
      if (r.status >= 100 && r.status < 200 && r.status !== 101) {
        // Interim responses (100 Continue, 103 Early Hints): we answered 100-continue ourselves; drop them.
        buf = buf.subarray(end);
        if (buf.length === 0) {
          this.respBuf = undefined;
          return;
        }
        continue;
      }
      this.respBuf = undefined;
      this.respHead = r;
      const p = this.prep!;
      if (r.status === 101) {
        if (!this.upgrade) return this.badUpstream('unexpected 101 response');
        const out = this.redactor ? this.redactor.push(buf, [0, buf.length]) : buf;
        this.record('allow', p.path, 'allowed', p.rule, 101, this.redactor?.count ? 'credential-redacted' : undefined);
        this.mode = Mode.Pipe;
        if (out.length && !writeChunk(this.sock, out)) this.pauseUpUntilDrain();
        if (this.buf) {
          const early = this.buf;
          this.buf = undefined;
          this.up?.write(early);
        }
        if (this.sock.isPaused()) this.sock.resume();
        return;
      }
      // With an injected credential the event waits for the end of the response: it says whether the
      // credential came back (and was overwritten).
      if (!this.redactor) this.record('allow', p.path, 'allowed', p.rule, r.status);
      if (this.upgrade) this.keepAlive = false; // the server declined the upgrade: relay its answer and close
      if (r.bodyLength === -1) this.respScanner = new ChunkedScanner(this.redactor !== undefined);
      else this.respLeft = r.bodyLength;
      if (r.close) this.keepAlive = false;
      return this.onResponseBody(buf, end);
    }
  }

  /** Forwards response bytes (from `start`; bytes before it are the head, sent along in the same write). */
  private onResponseBody(d: Buffer, start: number): void {
    const r = this.respHead!;
    let end: number; // end of this response inside d, or -1
    if (r.bodyLength === -2) end = -1;
    else if (this.respScanner) {
      try {
        end = this.respScanner.feed(d, start);
      } catch (e) {
        return this.badUpstream((e as Error).message);
      }
    } else {
      const take = Math.min(this.respLeft, d.length - start);
      this.respLeft -= take;
      end = this.respLeft === 0 ? start + take : -1;
    }
    let out = end < 0 || end === d.length ? d : d.subarray(0, end);
    if (this.redactor) out = this.redactor.push(out, this.contentSpans(out, start));
    if (end < 0) {
      // Mid-body. No cork: a TLS socket delivers each decrypted record in its own callback, so corking
      // until nextTick batches nothing and only turns every write into a writev.
      if (out.length && !writeChunk(this.sock, out)) this.pauseUpUntilDrain();
      return;
    }
    if (out.length && !writeChunk(this.sock, out)) this.pauseUpUntilDrain();
    // The response is complete.
    this.finishResponse();
    const up = this.up!;
    const clean = end === d.length && !r.close && this.reqDone && this.req!.minor === 1;
    this.up = undefined;
    if (clean) this.core.pool.release(up);
    else up.destroy();
    if (!this.reqDone) {
      // The server answered before the request body ended: the connection cannot be resynchronised.
      this.keepAlive = false;
    }
    this.endExchange(!this.keepAlive);
  }

  /** Where the content is in `out` (the head, if it is in there, and body data; not chunk framing). */
  private contentSpans(out: Buffer, start: number): number[] {
    const spans = start > 0 ? [0, start] : [];
    const sc = this.respScanner;
    if (sc) {
      for (const x of sc.takeSpans()) spans.push(x);
    } else spans.push(start, out.length);
    return spans;
  }

  /** The response ended: what the redactor held back goes out, and a deferred event is written. */
  private finishResponse(): void {
    const red = this.redactor;
    if (!red) return;
    const tail = red.flush();
    if (tail && !writeChunk(this.sock, tail)) this.pauseUpUntilDrain();
    const p = this.prep!;
    this.record('allow', p.path, 'allowed', p.rule, this.respHead?.status, red.count ? 'credential-redacted' : undefined);
  }

  private badUpstream(what: string): void {
    this.dropUp();
    if (!this.respHead) {
      const p = this.prep!;
      this.record('allow', p.path, 'upstream-error', p.rule, 502, 'bad-response');
      this.keepAlive = false;
      return this.respondLocal(upstreamErrorResponse(`Caged Agent: the upstream sent an invalid response (${what}).\n`, true));
    }
    this.close(false, 'bad-response');
  }
}
