// What the paths of a proxy share (the listener builds it once, server.ts): the policy in force, the decision
// recorder, the upstream pool and the certificate cache, the live connections, the settings. And the state of
// one CONNECT, which the paths hand each other.
import type * as http2 from 'node:http2';
import type * as net from 'node:net';
import type { Rule } from '../policy/types';
import type { CertCache } from './certs';
import type { ClientConn } from './conn';
import type { Block } from './gate';
import type { H2Upstreams } from './h2upstream';
import type { HoldQueue } from './hold';
import type { PolicyState } from './policyState';
import type { DecisionRecorder, Pending } from './record';
import type { Temporaries } from './temporary';
import type { UpstreamPool } from './upstream';

export interface Core {
  readonly policy: PolicyState;
  /** The one writer of decision events (record.ts). */
  readonly decisions: DecisionRecorder;
  /** Requests waiting for an answer (onUnknown: ask), and the temporary allows and denies (hold.ts, temporary.ts). */
  readonly hold: HoldQueue;
  readonly temporaries: Temporaries;
  /** A lifecycle 'error' event (never request data). */
  error(message: string): void;
  /** Where CAGED_SECRET_<NAME> values are read from. */
  readonly env: NodeJS.ProcessEnv;
  /** How many leading bytes of a request body the data-loss guard scans. */
  readonly dlpBytes: number;
  readonly pool: UpstreamPool;
  /** Upstream HTTP/2 sessions and what each upstream speaks (h2upstream.ts, alpn.ts). */
  readonly h2: H2Upstreams;
  /** Agent-side HTTP/2 sessions (h2.ts; graceful shutdown closes them). */
  readonly h2Sessions: Set<http2.ServerHttp2Session>;
  readonly certs: CertCache;
  readonly keepAliveMs: number;
  /**
   * A coarse clock (ms), advanced by the proxy's idle sweep. Connections stamp their activity with it and the
   * sweep closes those idle for keepAliveMs: no per-read/per-write timer refresh on the hot path.
   */
  coarseNow(): number;
  healthBody(): string;
  /** Live client connections (graceful shutdown closes the idle ones). */
  readonly conns: Set<ClientConn>;
  /** Client sides of raw tunnels in use (graceful shutdown waits for them). */
  readonly tunnels: Set<net.Socket>;
  /** A CONNECT request arrived on a plain connection: take over the socket (connect.ts). */
  connect(sock: net.Socket, head: Buffer, authority: string, t0: number): void;
}

/** One CONNECT: where it goes, what the proxy decided for it, and whether its decision event was written. */
export interface ConnCtx extends Pending {
  host: string; // canonical (IPv6 without brackets)
  port: number;
  /** TLS inside (false once plain HTTP arrived instead). */
  secure: boolean;
  /** The allow rule the CONNECT matched (unset when the policy blocked it). */
  rule?: Rule;
  /**
   * The CONNECT is blocked: every request inside gets this answer and its own event with its method and path
   * (what the editor's narrower quick fixes need); one that closes before any request gets a CONNECT event.
   */
  blocked?: Block;
  /**
   * `transparent`: the client connected to the proxy's own address (transparent capture, transparent.ts), not
   * through CONNECT: there is no CONNECT to answer, so a refusal before TLS closes the connection (its event says
   * why), and every event of the connection carries `via: 'transparent'`.
   */
  readonly via?: 'transparent';
  /** Plain HTTP on the transparent port 80: each request's Host header names its target (host and port unset). */
  byHost?: boolean;
}
