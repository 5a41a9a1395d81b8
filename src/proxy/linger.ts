// Closing our side of a client connection. The listener allows half-open connections (a client may send
// FIN and still read its answer), so after end() a connection only goes away when the client closes too.
// A client that never does (it sent garbage, got its 400, and keeps the socket) would hold it forever:
// endSoon() destroys the socket a short grace after everything written has been flushed, or once its
// unsent output has not moved for `stallMs` (a client that stopped reading).

/** Grace after our last byte was flushed, for the client to read it and close. */
export const LINGER_MS = 2000;

interface Endable {
  end(data?: string | Uint8Array): unknown;
  destroy(): unknown;
  once(event: 'close', fn: () => void): unknown;
  readonly destroyed: boolean;
  readonly writableLength: number;
  readonly writableFinished: boolean;
}

export function endSoon(sock: Endable, stallMs: number, data?: string | Uint8Array): void {
  if (data === undefined) sock.end();
  else sock.end(data);
  if (sock.destroyed) return;
  let last = -1;
  let stalled = 0;
  const t = setInterval(() => {
    const len = sock.writableLength;
    if (sock.destroyed || sock.writableFinished || len === 0 || (len === last && (stalled += LINGER_MS) >= stallMs)) {
      clearInterval(t);
      sock.destroy();
      return;
    }
    if (len !== last) stalled = 0;
    last = len;
  }, LINGER_MS);
  t.unref();
  sock.once('close', () => clearInterval(t));
}

/** Writes a complete answer and ends the connection as endSoon() does; nothing when the socket is already gone. */
export function endWith(sock: Endable & { readonly writable: boolean }, text: string, stallMs: number): void {
  if (sock.destroyed || !sock.writable) return;
  endSoon(sock, stallMs, text);
}
