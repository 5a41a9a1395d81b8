// CONNECT → one plan → dispatch (goproxy's shape). planConnect() is pure: from the authority and the host-level
// decision it picks one of four actions, and handleConnect() carries it out:
//   reject             answered on the plain connection: a target that is not host:port (400), or a tunnel
//                      rule whose host is a non-public IP literal (403);
//   tunnel             `intercept: false`: tunnel.ts;
//   intercept          TLS ends here and each request inside is decided: intercept.ts, then conn.ts;
//   intercept-blocked  the same, so the agent can read why: every request inside gets the block as a 403.
import type * as net from 'node:net';
import type { Decision, Rule } from '../policy/types';
import { ClientConn } from './conn';
import type { ConnCtx, Core } from './core';
import { badConnectTarget, notTlsBlock, privateLiteralBlock, secretBlock, secretInHost, type Block } from './gate';
import { answerPlain, ESTABLISHED, firstBytes } from './handshake';
import { intercept } from './intercept';
import { redact } from './dlp';
import { BLOCK_HEADER, blockResponse, textResponse } from './respond';
import { display, parseAuthority } from './target';
import { tunnel } from './tunnel';

export type ConnectPlan =
  | { action: 'reject'; host: string; port: number; status: 400 | 403; block: Block }
  | { action: 'tunnel'; host: string; port: number; rule: Rule }
  | { action: 'intercept'; host: string; port: number; rule: Rule }
  | { action: 'intercept-blocked'; host: string; port: number; block: Block };

/**
 * The plan for `CONNECT authority`. `decideHost` is the policy's host-level decision (no method, no path).
 * A rejected target that is not host:port keeps (a bounded copy of) the authority as its host, port 0.
 */
export function planConnect(authority: string, decideHost: (host: string, port: number) => Decision): ConnectPlan {
  const target = parseAuthority(authority, undefined);
  if (!target) return { action: 'reject', status: 400, host: authority.slice(0, 255), port: 0, block: badConnectTarget(authority) };
  const { host, port } = target;
  const d = decideHost(host, port);
  // A credential as a label of the name would leave in the DNS lookup, before any request: never connect.
  const hit = secretInHost(host);
  if (hit) return { action: 'intercept-blocked', host, port, block: secretBlock('connect-host', hit, d.rule) };
  const rule = d.action === 'allow' ? d.rule : undefined;
  if (!rule) return { action: 'intercept-blocked', host, port, block: { reason: d.reason, message: d.message, rule: d.rule } };
  const priv = privateLiteralBlock(host, rule);
  if (!rule.intercept) return priv ? { action: 'reject', status: 403, host, port, block: priv } : { action: 'tunnel', host, port, rule };
  return priv ? { action: 'intercept-blocked', host, port, block: priv } : { action: 'intercept', host, port, rule };
}

function destroySelf(this: net.Socket): void {
  this.destroy();
}

/**
 * Takes over a socket whose CONNECT head was parsed at `t0`; `head` holds the bytes that came after it.
 * `via` transparent: no CONNECT was sent (transparent.ts: the authority comes from the TLS server name, `head` is
 * the ClientHello), so nothing is answered in plain HTTP.
 */
export function handleConnect(core: Core, socket: net.Socket, head: Buffer, authority: string, t0: number, via?: 'transparent'): void {
  socket.on('error', destroySelf);
  const plan = planConnect(authority, (h, p) => core.policy.decide(h, p));
  const ctx: ConnCtx = { host: plan.host, port: plan.port, secure: true, t0, recorded: false, via };
  const { host, port } = ctx;
  switch (plan.action) {
    case 'reject': {
      const b = plan.block;
      const text = plan.status === 400 ? textResponse(400, 'Bad Request', [[BLOCK_HEADER, b.reason]], `Caged Agent: ${redact(b.message)}\n`, true) : blockResponse(`CONNECT ${display(host)}:${port}`, b, true);
      answerPlain(core, socket, ctx, text);
      return core.decisions.recordConnect(ctx, 'block', b.reason, b.rule, plan.status, b.detail);
    }
    case 'tunnel':
      ctx.rule = plan.rule;
      return tunnel(core, socket, head, ctx, plan.rule);
    case 'intercept':
      ctx.rule = plan.rule;
      break;
    case 'intercept-blocked':
      ctx.blocked = plan.block;
  }
  // A blocked CONNECT is recorded by the first request inside it (its method and path known); if the client
  // never sends one (it rejected our certificate, sent no TLS, or hung up), by the CONNECT itself.
  socket.once('close', () => {
    const b = ctx.blocked;
    if (b) core.decisions.recordConnect(ctx, 'block', b.reason, b.rule, 403, b.detail);
  });
  if (!via) socket.write(ESTABLISHED);
  firstBytes(socket, head, (first) => {
    if (!first) return socket.destroy();
    if (first[0] === 0x16) return intercept(core, socket, first, ctx);
    if (first[0] >= 0x41 && first[0] <= 0x5a) {
      // Plain HTTP inside CONNECT (e.g. ws:// from a CONNECT-only client): relay it like any request.
      ctx.secure = false;
      new ClientConn(core, socket, ctx, first);
      socket.resume();
      return;
    }
    if (!ctx.blocked) {
      const b = notTlsBlock(host, ctx.rule);
      core.decisions.recordConnect(ctx, 'block', b.reason, b.rule, undefined, b.detail);
    }
    socket.destroy(); // a blocked CONNECT is recorded by the close handler
  });
}
