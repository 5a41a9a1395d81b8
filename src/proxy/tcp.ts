// Raw TCP rules (`- host: github.com` / `tcp: [22]`) under transparent capture. The cage's DNS sends every
// name to the proxy, so `ssh git@github.com` or `psql -h db.example.com` connects to the proxy on port 22 or
// 5432. The proxy listens on each port a rule names (and on a few well-known ones, so an attempt without a rule
// is seen and recorded), and attributes a connection to the name the agent looked up last (or, when a rule
// does not allow that one there, to one looked up within the same moment that a rule does): every candidate is
// allowed, so a wrong guess never reaches a host the policy does not name.
// Then it connects to that name (every resolved address checked: private ones refused unless `private: true`,
// the checked address is the one connected to) and relays bytes, uninspected. Without an allowing rule the
// connection is closed, and its block event names the name looked up last, the port and method "TCP", which
// the editor turns into "Allow TCP 22 to github.com".
import * as net from 'node:net';
import { performance } from 'node:perf_hooks';
import { TCP_METHOD } from '../policy';
import type { Policy, ReasonCode, Rule } from '../policy/types';
import type { Core } from './core';
import type { Lookup } from './dns';
import { allowsPrivate, privateAddressBlock } from './gate';
import { relay } from './readbuf';
import { isPrivateAddressError } from './resolve';

/** Ports watched without a rule, so a refused attempt still gives an event and a quick fix. */
export const WATCHED_TCP_PORTS = [21, 22, 23, 25, 110, 143, 465, 587, 993, 995, 1433, 1521, 2222, 3306, 5432, 5672, 6379, 9092, 9418, 11211, 27017];
/** How many recent lookups are kept, and for how long one can explain a connection. */
const MAX_LOOKUPS = 256;
const LOOKUP_WINDOW_MS = 10 * 60_000;
/** How far back a lookup still counts as "just now", next to the latest one. */
const CONCURRENT_MS = 50;

export class TcpCapture {
  /** Recently looked-up names, oldest first (a Map keeps insertion order), with when. */
  private readonly lookups = new Map<string, number>();
  private readonly servers = new Map<number, net.Server>();
  private closed = false;

  constructor(
    private readonly core: Core,
    private readonly host: string,
    private readonly track: (s: net.Socket) => void,
    private readonly watched: readonly number[] = WATCHED_TCP_PORTS,
  ) {}

  /** The DNS responder answered a lookup: the name becomes the most recent one. */
  readonly noteLookup = (l: Lookup): void => {
    if (!l.name) return;
    this.lookups.delete(l.name);
    this.lookups.set(l.name, Date.now());
    if (this.lookups.size > MAX_LOOKUPS) this.lookups.delete(this.lookups.keys().next().value!);
  };

  /** Listens on the ports the policy's tcp rules name plus the watched ones; stops listening on the rest. */
  async sync(policy: Policy | undefined): Promise<void> {
    const want = new Set(this.watched);
    for (const r of policy?.allow ?? []) if (r.tcp && !r.disabled) for (const p of r.tcp) want.add(p);
    for (const [port, server] of this.servers) {
      if (!want.has(port)) {
        this.servers.delete(port);
        server.close();
      }
    }
    await Promise.all([...want].filter((p) => !this.servers.has(p)).map((p) => this.listen(p)));
  }

  /** The ports listened on now. */
  get ports(): number[] {
    return [...this.servers.keys()].sort((a, b) => a - b);
  }

  private async listen(port: number): Promise<void> {
    if (this.closed) return;
    const server = net.createServer({ allowHalfOpen: true, noDelay: true } as net.ServerOpts, (s) => {
      this.track(s);
      this.accept(s, port);
    });
    this.servers.set(port, server);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, this.host, () => {
          server.removeListener('error', reject);
          resolve();
        });
      });
      server.on('error', (e) => this.core.error(`raw TCP port ${port}: ${String(e)}`));
    } catch (e) {
      this.servers.delete(port);
      this.core.error(`cannot listen on raw TCP port ${port}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
  }

  /**
   * The name a connection to `port` is for. A client looks its name up right before it connects: the latest
   * lookup, when a rule allows it there. Otherwise another name looked up within the last moments (a lookup of
   * some other process may have come in between) that a rule allows there; else the latest lookup, refused.
   */
  private attribute(port: number): { host: string; rule?: Rule; block?: { reason: ReasonCode; rule?: Rule } } | undefined {
    const now = Date.now();
    const recent = [...this.lookups].reverse().filter(([, t]) => now - t <= LOOKUP_WINDOW_MS);
    if (!recent.length) return undefined;
    const latest = this.core.policy.decideTcp(recent[0][0], port);
    if (latest.action === 'allow' && latest.rule) return { host: recent[0][0], rule: latest.rule };
    for (const [name, t] of recent.slice(1)) {
      if (now - t > CONCURRENT_MS) break;
      const d = this.core.policy.decideTcp(name, port);
      if (d.action === 'allow' && d.rule) return { host: name, rule: d.rule };
    }
    return { host: recent[0][0], block: { reason: latest.reason, rule: latest.rule } };
  }

  private accept(sock: net.Socket, port: number): void {
    sock.on('error', () => sock.destroy());
    sock.pause();
    const p = { recorded: false, t0: performance.now(), via: 'tcp' as const };
    const record = (type: 'allow' | 'block', host: string, reason: ReasonCode, rule: Rule | undefined, detail?: string) =>
      this.core.decisions.recordDecision(p, type, host, port, TCP_METHOD, '', reason, rule, undefined, detail);
    const who = this.attribute(port);
    if (!who) {
      // Nothing was looked up: an address typed by hand (the cage network has no other), or a name kept too long.
      record('block', sock.localAddress ?? '', 'no-matching-rule', undefined, 'no-lookup');
      return void sock.destroy();
    }
    const rule = who.rule;
    if (!rule) {
      record('block', who.host, who.block!.reason, who.block!.rule);
      return void sock.destroy();
    }
    this.core.pool.openTunnel(who.host, port, allowsPrivate(rule)).then(
      (up) => {
        if (sock.destroyed) {
          up.destroy();
          return record('allow', who.host, 'allowed', rule, 'client-aborted');
        }
        record('allow', who.host, 'allowed', rule);
        this.core.tunnels.add(sock);
        sock.once('close', () => this.core.tunnels.delete(sock));
        up.on('error', () => sock.destroy());
        sock.on('close', () => up.destroy());
        up.on('close', () => sock.destroy());
        relay(sock, up);
        sock.resume();
      },
      (err: NodeJS.ErrnoException) => {
        sock.destroy();
        if (isPrivateAddressError(err)) {
          const b = privateAddressBlock(who.host, rule, err.addressClass, err.address);
          return record('block', who.host, b.reason, b.rule, b.detail);
        }
        this.core.decisions.recordDecision(p, 'allow', who.host, port, TCP_METHOD, '', 'upstream-error', rule, 502, err.code ?? 'ERROR');
      },
    );
  }

  close(): void {
    this.closed = true;
    for (const s of this.servers.values()) s.close();
    this.servers.clear();
  }
}
