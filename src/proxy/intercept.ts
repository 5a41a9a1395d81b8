// The intercepting path of a CONNECT: the agent's TLS session ends here, with a leaf certificate for the CONNECT
// host minted under the cage CA (certs.ts), its server name is checked (gate.sniBlock), and what is inside is
// HTTP/1.1 (ClientConn, conn.ts) or HTTP/2 (h2.ts). ALPN offers the agent `h2` only when it asked for it, the
// CONNECT is allowed, and the upstream speaks h2 (alpn.ts: cached per upstream, learnt by a connect on a miss);
// `http/1.1` always. A blocked or askable CONNECT is answered over HTTP/1.1 as before.
import type * as net from 'node:net';
import * as tls from 'node:tls';
import { isAskable } from '../policy';
import type { UpstreamProto } from './alpn';
import { STREAM_HWM } from './certs';
import { ClientConn } from './conn';
import type { ConnCtx, Core } from './core';
import { allowsPrivate, sniBlock } from './gate';
import { serveH2 } from './h2';
import { HANDSHAKE_TIMEOUT_MS, readClientHello } from './handshake';

const HTTP1 = ['http/1.1'];
const H2_FIRST = ['h2', 'http/1.1'];

/** `first` holds the first bytes the client sent after CONNECT (the start of its ClientHello). */
export function intercept(core: Core, socket: net.Socket, first: Buffer, ctx: ConnCtx): void {
  const rule = ctx.blocked ? undefined : ctx.rule;
  if (!rule) return withCert(core, socket, first, ctx, 'http/1.1');
  const { host, port } = ctx;
  const allowPrivate = allowsPrivate(rule);
  // Only a client that offers h2 makes the proxy ask what the upstream speaks. Either way the upstream connection
  // is opened (or found) while the client does its TLS handshake with us.
  readClientHello(socket, first, (buf, hello) => {
    if (socket.destroyed) return;
    const known = hello.state === 'ok' && hello.alpn?.includes('h2') ? core.h2.known(host, port, allowPrivate) : 'http/1.1';
    if (known === 'http/1.1') core.pool.preconnect(true, host, port, allowPrivate);
    else if (known === 'h2') core.h2.session(host, port, allowPrivate).catch(() => {});
    if (known) return withCert(core, socket, buf, ctx, known);
    // Not known yet: one connect offering [h2, http/1.1] tells, and is kept (h2upstream.ts).
    core.h2.probe(host, port, allowPrivate)
      .then((proto) => {
        if (!socket.destroyed) withCert(core, socket, buf, ctx, proto);
      })
      .catch((e) => {
        core.error(`an intercepted session failed: ${String(e)}`);
        socket.destroy();
      });
  });
}

function withCert(core: Core, socket: net.Socket, first: Buffer, ctx: ConnCtx, offer: UpstreamProto): void {
  const c = core.certs.get(ctx.host);
  if (!(c instanceof Promise)) return startTls(core, socket, first, ctx, c, offer);
  c.then(
    (secureCtx) => {
      if (!socket.destroyed) startTls(core, socket, first, ctx, secureCtx, offer);
    },
    (e) => {
      core.error(`minting a certificate for ${ctx.host} failed: ${String(e)}`);
      socket.destroy();
    },
  );
}

function startTls(core: Core, socket: net.Socket, first: Buffer, ctx: ConnCtx, secureCtx: tls.SecureContext, offer: UpstreamProto): void {
  socket.unshift(first);
  const ALPNProtocols = offer === 'h2' ? H2_FIRST : HTTP1;
  const tlsSock = new tls.TLSSocket(socket, { isServer: true, secureContext: secureCtx, ALPNProtocols, highWaterMark: STREAM_HWM } as tls.TLSSocketOptions);
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
  if (offer === 'h2') {
    // ALPN is settled once the handshake is done: an h2 session, or HTTP/1.1 as for any client.
    tlsSock.once('secure', () => {
      try {
        if (tlsSock.alpnProtocol === 'h2') serveH2(core, tlsSock, ctx);
        else new ClientConn(core, tlsSock, ctx);
      } catch (e) {
        core.error(`an intercepted session failed: ${String(e)}`);
        tlsSock.destroy();
      }
    });
    return;
  }
  new ClientConn(core, tlsSock, ctx);
}
