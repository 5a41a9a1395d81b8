// The control channel: how the engine gives the proxy its decisions (answers to held requests, temporary
// allows and denies). A unix socket inside the proxy's own container (mode 600, the proxy's uid), NOT a port on
// the cage network: the agent has no way into the proxy's filesystem. The engine reaches it with `docker exec`
// of this same program in client mode (`node /app/proxy.js --control JSON`), which works with remote engines.
// One JSON request line, one JSON reply line; every reply says whether the proxy took the decision.
import * as fs from 'node:fs';
import * as net from 'node:net';
import { canonicalHost, temporaryRule, withTemporaryAllows, type ControlReply, type ControlRequest } from '../policy';
import type { Rule } from '../policy/types';
import type { HoldQueue } from './hold';
import type { PolicyState } from './policyState';
import type { Temporaries } from './temporary';
import { display } from './target';

export const DEFAULT_CONTROL_SOCKET = '/tmp/caged-control.sock';
const MAX_REQUEST = 256 * 1024;
const REQUEST_TIMEOUT_MS = 5000;

export type { ControlReply, ControlRequest } from '../policy';

export interface ControlDeps {
  policy: PolicyState;
  hold: HoldQueue;
  temporaries: Temporaries;
  boot: string;
}

function hostOf(text: unknown): string | undefined {
  if (typeof text !== 'string') return undefined;
  return canonicalHost(text)?.host;
}

/** Carries out one request (pure of sockets: tests call it directly). */
export function handleControl(d: ControlDeps, req: ControlRequest): ControlReply {
  const boot = d.boot;
  const fail = (error: string): ControlReply => ({ ok: false, error, boot });
  if (!req || typeof req !== 'object') return fail('the request is not a JSON object');
  switch (req.op) {
    case 'state':
      return { ok: true, boot, pending: d.hold.list(), temporary: d.temporaries.list() };
    case 'add': {
      if (!Array.isArray(req.entries) || req.entries.length === 0) return fail('"add" needs a list of entries');
      const before = d.hold.size;
      const r = d.temporaries.add(req.entries);
      if (!r.ok) return fail(r.error);
      return { ok: true, boot, released: before - d.hold.size, temporary: d.temporaries.list() };
    }
    case 'remove': {
      if (!Array.isArray(req.ids)) return fail('"remove" needs a list of ids');
      const removed = d.temporaries.remove(req.ids.map(String));
      if (removed === 0) return { ...fail(`no temporary entry ${req.ids.join(', ')} is in force (it may have expired)`), removed };
      return { ok: true, boot, removed, temporary: d.temporaries.list() };
    }
    case 'once': {
      const host = hostOf(req.host);
      if (!host) return fail(`${JSON.stringify(req.host)} is not a host name`);
      const policy = d.policy.current;
      if (!policy) return fail('no valid policy is in force, so nothing is held');
      const ruleFor = (port: number) => temporaryRule({ id: 'once', kind: 'allow', host: `${display(host)}:${port}`, methods: req.methods, paths: req.paths, private: req.private, created: Date.now() }, 0);
      const check = ruleFor(req.port ?? 443);
      if ('error' in check) return fail(check.error);
      const released = d.hold.once(host, req.port, (port) => withTemporaryAllows(policy, [ruleFor(port) as Rule]));
      if (released === 0) return { ...fail(`no request to ${display(host)}${req.port ? `:${req.port}` : ''} is waiting (it may have timed out or been answered)`), released };
      return { ok: true, boot, released };
    }
    case 'refuse': {
      const host = hostOf(req.host);
      if (!host) return fail(`${JSON.stringify(req.host)} is not a host name`);
      const refused = d.hold.refuse(host, req.port, {
        reason: 'no-matching-rule',
        message: `The user denied ${display(host)}; ask the user if the agent really needs it.`,
        detail: 'denied-by-user',
      });
      // Then remembered (after the refusal, so the waiting requests get the answer's own words).
      if (req.entries?.length) {
        const r = d.temporaries.add(req.entries);
        if (!r.ok) return { ...fail(r.error), refused };
      }
      return { ok: true, boot, refused, temporary: d.temporaries.list() };
    }
    default:
      return fail(`unknown operation ${JSON.stringify((req as { op?: unknown }).op)}`);
  }
}

/** Listens on `file` (mode 600). A stale socket file from an earlier run is replaced. */
export async function listenControl(file: string, deps: ControlDeps, onError: (m: string) => void): Promise<net.Server> {
  try {
    fs.unlinkSync(file);
  } catch {}
  const server = net.createServer((sock) => {
    let buf = '';
    sock.setEncoding('utf8');
    sock.setTimeout(REQUEST_TIMEOUT_MS, () => sock.destroy());
    sock.on('error', () => sock.destroy());
    sock.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_REQUEST) return sock.destroy();
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      let reply: ControlReply;
      try {
        reply = handleControl(deps, JSON.parse(buf.slice(0, nl)) as ControlRequest);
      } catch (e) {
        reply = { ok: false, error: `bad request: ${e instanceof Error ? e.message : String(e)}`.slice(0, 300), boot: deps.boot };
      }
      sock.end(JSON.stringify(reply) + '\n');
    });
  });
  server.on('error', (e) => onError(`control socket: ${e.message}`));
  const old = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(file, () => {
        server.removeListener('error', reject);
        resolve();
      });
    });
  } finally {
    process.umask(old);
  }
  fs.chmodSync(file, 0o600);
  return server;
}

/**
 * Client mode with `-`: one request per stdin line, each reply a stdout line, in order, until stdin ends. The
 * engine keeps one such `docker exec` open per proxy, so an answer costs no process start.
 */
export function controlSession(file: string): void {
  let rest = '';
  let queue = Promise.resolve();
  const one = (line: string) =>
    new Promise<void>((resolve) => {
      const sock = net.createConnection(file);
      let out = '';
      const reply = (text: string) => {
        process.stdout.write(text.endsWith('\n') ? text : text + '\n');
        resolve();
      };
      sock.setEncoding('utf8');
      sock.setTimeout(REQUEST_TIMEOUT_MS, () => {
        sock.destroy();
        reply(JSON.stringify({ ok: false, error: 'the proxy did not answer on its control socket', boot: '' }));
      });
      sock.on('connect', () => sock.write(line + '\n'));
      sock.on('data', (d: string) => (out += d));
      sock.on('error', (e) => reply(JSON.stringify({ ok: false, error: `cannot reach the proxy's control socket ${file}: ${(e as NodeJS.ErrnoException).code ?? e.message}`, boot: '' })));
      sock.on('end', () => reply(out || JSON.stringify({ ok: false, error: 'empty reply', boot: '' })));
    });
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (d: string) => {
    rest += d;
    let i: number;
    while ((i = rest.indexOf('\n')) >= 0) {
      const line = rest.slice(0, i).trim();
      rest = rest.slice(i + 1);
      if (line) queue = queue.then(() => one(line));
    }
  });
  process.stdin.on('end', () => void queue.then(() => process.exit(0)));
}

/** Client mode: sends `request` (JSON text) to the socket, prints the reply line; exit code 0 when ok. */
export function controlClient(file: string, request: string): void {
  if (request === '-') return controlSession(file);
  const sock = net.createConnection(file);
  let out = '';
  const bail = (m: string) => {
    process.stdout.write(JSON.stringify({ ok: false, error: m, boot: '' }) + '\n');
    process.exitCode = 1;
  };
  sock.setEncoding('utf8');
  sock.setTimeout(REQUEST_TIMEOUT_MS, () => {
    sock.destroy();
    bail('the proxy did not answer on its control socket');
  });
  sock.on('connect', () => sock.write(request.replace(/\n/g, ' ') + '\n'));
  sock.on('data', (d: string) => (out += d));
  sock.on('error', (e) => bail(`cannot reach the proxy's control socket ${file}: ${(e as NodeJS.ErrnoException).code ?? e.message}`));
  sock.on('end', () => {
    process.stdout.write(out.endsWith('\n') ? out : out + '\n');
    try {
      process.exitCode = (JSON.parse(out) as ControlReply).ok ? 0 : 1;
    } catch {
      process.exitCode = 1;
    }
  });
}
