// What follows a CONNECT: the proxy answers "200 Connection Established", then reads the first bytes (or a
// whole TLS ClientHello) with a deadline before it picks the path those bytes need.
import type * as net from 'node:net';
import type { ConnCtx, Core } from './core';
import { endWith } from './linger';
import { parseClientHello, type ClientHelloResult } from './sni';

export const ESTABLISHED = 'HTTP/1.1 200 Connection Established\r\n\r\n';
/** How long a client has after CONNECT for its first bytes, and for its TLS handshake. */
export const HANDSHAKE_TIMEOUT_MS = 15000;

/**
 * A refusal answered on the plain connection of a CONNECT, then the end of it. A transparent connection sent
 * no CONNECT and waits for TLS, so it is closed instead (its decision event says why).
 */
export function answerPlain(core: Core, socket: net.Socket, ctx: ConnCtx, text: string): void {
  if (ctx.via) socket.destroy();
  else endWith(socket, text, core.keepAliveMs);
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
  // The client may have ended while nothing listened (a tunnel waits for its upstream first): a paused socket
  // with nothing buffered still emits 'end'. No more bytes will come.
  if (socket.readableEnded || socket.destroyed) {
    socket.pause();
    return cb(buf, fail);
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
export function firstBytes(socket: net.Socket, head: Buffer, cb: (b: Buffer | undefined) => void): void {
  readStart(socket, head, () => true, false, (buf, got) => cb(got ? buf : undefined));
}

/** Bytes up to a complete (or invalid) TLS ClientHello; a close or the timeout reads as invalid. */
export function readClientHello(socket: net.Socket, head: Buffer, cb: (buf: Buffer, r: ClientHelloResult) => void): void {
  readStart<ClientHelloResult>(
    socket,
    head,
    (b) => {
      const r = parseClientHello(b);
      return r.state === 'partial' ? undefined : r;
    },
    { state: 'invalid' },
    cb,
  );
}
