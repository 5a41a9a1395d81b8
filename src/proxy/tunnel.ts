// The tunnelling path of a CONNECT (`intercept: false`): the proxy connects first (every resolved address
// checked, upstream.ts), answers 200, reads the TLS ClientHello itself and, once its server name passes the
// same rule as an intercepted session's (gate.clientHelloBlock), relays bytes both ways. One decision event
// per CONNECT, also when the client leaves before its ClientHello: the CONNECT was allowed, nothing was
// refused, so that is an allow with detail "client-aborted" (as for a request whose client went away).
import type * as net from 'node:net';
import type { ReasonCode, Rule } from '../policy/types';
import type { ConnCtx, Core } from './core';
import { allowsPrivate, clientHelloBlock, privateAddressBlock } from './gate';
import { answerPlain, ESTABLISHED, readClientHello } from './handshake';
import { relay } from './readbuf';
import { blockResponse, upstreamErrorResponse } from './respond';
import { display } from './target';
import { isPrivateAddressError } from './resolve';

export function tunnel(core: Core, socket: net.Socket, head: Buffer, ctx: ConnCtx, rule: Rule): void {
  const { host, port } = ctx;
  const record = (type: 'allow' | 'block', reason: ReasonCode, status?: number, detail?: string) => core.decisions.recordConnect(ctx, type, reason, rule, status, detail);
  // Nothing is read while the upstream connects: bytes the client sends meanwhile (its ClientHello, or its FIN)
  // wait in the socket for readClientHello instead of flowing past with no listener.
  socket.pause();
  core.pool.openTunnel(host, port, allowsPrivate(rule)).then(
    (up) => {
      if (socket.destroyed) {
        up.destroy();
        return record('allow', 'allowed', undefined, 'client-aborted');
      }
      core.tunnels.add(socket);
      socket.once('close', () => core.tunnels.delete(socket));
      up.on('error', () => socket.destroy());
      socket.on('close', () => up.destroy());
      up.on('close', () => socket.destroy());
      if (!ctx.via) socket.write(ESTABLISHED);
      readClientHello(socket, head, (buf, hello) => {
        if (buf.length === 0) {
          // It closed (or stayed silent past the handshake deadline) before sending anything.
          socket.destroy();
          up.destroy();
          return record('allow', 'allowed', undefined, 'client-aborted');
        }
        const b = clientHelloBlock(host, hello, rule);
        if (b) {
          record('block', b.reason, undefined, b.detail);
          socket.destroy();
          up.destroy();
          return;
        }
        record('allow', 'allowed', 200);
        up.write(buf);
        relay(socket, up);
      });
    },
    (err: NodeJS.ErrnoException) => {
      if (isPrivateAddressError(err)) {
        const b = privateAddressBlock(host, rule, err.addressClass, err.address);
        answerPlain(core, socket, ctx, blockResponse(`CONNECT ${display(host)}:${port}`, b, true));
        return record('block', b.reason, 403, b.detail);
      }
      answerPlain(core, socket, ctx, upstreamErrorResponse(`Caged Agent could not reach ${display(host)}:${port}: ${err.code ?? err.message}\n`, true));
      record('allow', 'upstream-error', 502, err.code ?? 'ERROR');
    },
  );
}
