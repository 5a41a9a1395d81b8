// The intercepting path of a CONNECT: the agent's TLS session ends here, with a leaf certificate for the CONNECT
// host minted under the cage CA (certs.ts), its server name is checked (gate.sniBlock), and the HTTP/1.1
// exchanges inside are ClientConn's (conn.ts).
import type * as net from 'node:net';
import * as tls from 'node:tls';
import { isAskable } from '../policy';
import { STREAM_HWM } from './certs';
import { ClientConn } from './conn';
import type { ConnCtx, Core } from './core';
import { sniBlock } from './gate';
import { HANDSHAKE_TIMEOUT_MS } from './handshake';

/** `first` holds the first bytes the client sent after CONNECT (the start of its ClientHello). */
export function intercept(core: Core, socket: net.Socket, first: Buffer, ctx: ConnCtx): void {
  const c = core.certs.get(ctx.host);
  if (!(c instanceof Promise)) return startTls(core, socket, first, ctx, c);
  c.then(
    (secureCtx) => {
      if (!socket.destroyed) startTls(core, socket, first, ctx, secureCtx);
    },
    (e) => {
      core.error(`minting a certificate for ${ctx.host} failed: ${String(e)}`);
      socket.destroy();
    },
  );
}

function startTls(core: Core, socket: net.Socket, first: Buffer, ctx: ConnCtx, secureCtx: tls.SecureContext): void {
  socket.unshift(first);
  const tlsSock = new tls.TLSSocket(socket, { isServer: true, secureContext: secureCtx, ALPNProtocols: ['http/1.1'], highWaterMark: STREAM_HWM } as tls.TLSSocketOptions);
  const timer = setTimeout(() => tlsSock.destroy(), HANDSHAKE_TIMEOUT_MS);
  tlsSock.once('secure', () => {
    clearTimeout(timer);
    // Requests inside are answered with this block (a 403 the agent can read), like any blocked CONNECT.
    // A CONNECT no rule matched (it may yet be allowed: held, or a temporary allow) is checked too.
    if (!ctx.blocked || isAskable(ctx.blocked.reason)) {
      const sni = sniBlock(ctx.host, (tlsSock as unknown as { servername?: string | false }).servername || undefined, ctx.rule);
      if (sni) ctx.blocked = sni;
    }
  });
  tlsSock.once('close', () => {
    clearTimeout(timer);
    socket.destroy();
  });
  new ClientConn(core, tlsSock, ctx);
}
