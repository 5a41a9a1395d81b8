// Client connections for the load generator: a TLS socket to the upstream, either direct or through a
// proxy's CONNECT tunnel, with one secure context per trust set (made once, so no per-connection CA parsing).
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Target } from './common';
import { nowMs } from './common';
import { ResponseParser, type ResponseDone } from './http1';

const contexts = new Map<string, tls.SecureContext>();

export function secureContextFor(caPem: string): tls.SecureContext {
  let c = contexts.get(caPem);
  if (!c) {
    c = tls.createSecureContext({ ca: caPem });
    contexts.set(caPem, c);
  }
  return c;
}

export interface OpenTimings {
  /** TCP connect to the first hop (proxy or upstream). */
  tcpMs: number;
  /** CONNECT request → "200" answer (0 when direct). */
  connectMs: number;
  /** TLS handshake. */
  tlsMs: number;
}

export class ProxyRefused extends Error {
  constructor(
    readonly status: number,
    readonly head: string,
  ) {
    super(`proxy answered CONNECT with ${status}: ${head.split('\r\n')[0]}`);
  }
}

function onceConnected(s: net.Socket, event: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const ok = () => {
      s.off('error', bad);
      s.off('close', closed);
      resolve();
    };
    const bad = (e: Error) => {
      s.off(event, ok);
      s.off('close', closed);
      reject(e);
    };
    const closed = () => {
      s.off(event, ok);
      s.off('error', bad);
      reject(new Error(`socket closed before ${event}`));
    };
    s.once(event, ok);
    s.once('error', bad);
    s.once('close', closed);
  });
}

/** Sends CONNECT on a fresh TCP socket and resolves once the proxy answers 2xx. */
async function tunnel(t: Target, timings: OpenTimings): Promise<net.Socket> {
  const p = t.proxy!;
  const t0 = nowMs();
  const raw = net.connect({ host: p.host, port: p.port });
  raw.setNoDelay(true);
  await onceConnected(raw, 'connect');
  const t1 = nowMs();
  timings.tcpMs = t1 - t0;
  const authority = t.host.includes(':') ? `[${t.host}]:${t.port}` : `${t.host}:${t.port}`;
  raw.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
  const head = await new Promise<{ status: number; head: string }>((resolve, reject) => {
    let acc: Buffer = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      acc = acc.length ? Buffer.concat([acc, d]) : d;
      const end = acc.indexOf('\r\n\r\n');
      if (end < 0) {
        if (acc.length > 16384) fail(new Error('CONNECT answer head too large'));
        return;
      }
      cleanup();
      const text = acc.toString('latin1', 0, end);
      const rest = acc.subarray(end + 4);
      if (rest.length) raw.unshift(rest);
      resolve({ status: parseInt(text.slice(9, 12), 10), head: text });
    };
    const fail = (e: Error) => {
      cleanup();
      reject(e);
    };
    const onClose = () => fail(new Error('proxy closed the connection during CONNECT'));
    const cleanup = () => {
      raw.off('data', onData);
      raw.off('error', fail);
      raw.off('close', onClose);
    };
    raw.on('data', onData);
    raw.on('error', fail);
    raw.on('close', onClose);
  });
  timings.connectMs = nowMs() - t1;
  if (head.status < 200 || head.status > 299) {
    raw.destroy();
    throw new ProxyRefused(head.status, head.head);
  }
  return raw;
}

/** Opens a TLS connection to the target (full handshake, no session reuse), offering `alpn`. */
export async function openTls(t: Target, alpn: string[] = ['http/1.1']): Promise<{ socket: tls.TLSSocket; timings: OpenTimings }> {
  const timings: OpenTimings = { tcpMs: 0, connectMs: 0, tlsMs: 0 };
  const secureContext = secureContextFor(t.caPem);
  const servername = net.isIP(t.servername) ? undefined : t.servername;
  let socket: tls.TLSSocket;
  if (t.proxy) {
    const raw = await tunnel(t, timings);
    const t0 = nowMs();
    socket = tls.connect({ socket: raw, servername, secureContext, ALPNProtocols: alpn, checkServerIdentity: identityCheck(t.servername) });
    await onceConnected(socket, 'secureConnect');
    timings.tlsMs = nowMs() - t0;
  } else {
    const t0 = nowMs();
    socket = tls.connect({ host: t.host, port: t.port, servername, secureContext, ALPNProtocols: alpn, checkServerIdentity: identityCheck(t.servername) });
    socket.setNoDelay(true);
    await onceConnected(socket, 'secureConnect');
    // TCP and TLS are not separated for direct connections; report all as TLS.
    timings.tlsMs = nowMs() - t0;
  }
  return { socket, timings };
}

function identityCheck(name: string) {
  return (_host: string, cert: tls.PeerCertificate) => tls.checkServerIdentity(name, cert);
}

export function requestBytes(t: Target, method: string, path: string, extra = ''): Buffer {
  const hostHeader = t.servername.includes(':') ? `[${t.servername}]:${t.port}` : `${t.servername}:${t.port}`;
  return Buffer.from(`${method} ${path} HTTP/1.1\r\nHost: ${hostHeader}\r\nUser-Agent: caged-bench\r\n${extra}\r\n`, 'latin1');
}

/**
 * One keep-alive HTTP/1.1 connection with at most one request in flight. `request` resolves with the
 * response (bodies are counted, not kept, unless keepBody).
 */
export class Conn {
  private waiting: ((r: ResponseDone) => void) | null = null;
  private failing: ((e: Error) => void) | null = null;
  private readonly parser: ResponseParser;
  closed = false;

  constructor(
    readonly socket: tls.TLSSocket,
    keep: { body?: boolean; head?: boolean } = {},
  ) {
    this.parser = new ResponseParser((r) => {
      const w = this.waiting;
      this.waiting = null;
      this.failing = null;
      if (w) w(r);
    }, keep);
    socket.on('data', (d: Buffer) => {
      try {
        this.parser.feed(d);
      } catch (e) {
        this.fail(e as Error);
        socket.destroy();
      }
    });
    let lastError: Error | undefined;
    socket.on('error', (e) => {
      lastError = e;
      this.fail(e);
    });
    socket.on('close', () => {
      this.closed = true;
      this.fail(lastError ?? new Error('connection closed'));
    });
  }

  private fail(e: Error): void {
    const f = this.failing;
    this.waiting = null;
    this.failing = null;
    if (f) f(e);
  }

  request(bytes: Buffer): Promise<ResponseDone> {
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new Error('connection closed'));
      this.waiting = resolve;
      this.failing = reject;
      this.socket.write(bytes);
    });
  }

  /** Callback flavour for the hot loop (no promise per request). */
  requestCb(bytes: Buffer, done: (r: ResponseDone) => void, failed: (e: Error) => void): void {
    if (this.closed) return failed(new Error('connection closed'));
    this.waiting = done;
    this.failing = failed;
    this.socket.write(bytes);
  }

  close(): void {
    this.closed = true;
    this.socket.destroy();
  }
}
