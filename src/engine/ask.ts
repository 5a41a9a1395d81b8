// Answers to held requests and temporary allows, engine side (issue 17). The proxy's control channel is a unix
// socket inside the proxy container (src/proxy/control.ts); the engine reaches it with `docker exec` of the
// proxy program in client mode, which works with remote engines and is out of the agent's reach. Every reply
// says whether the proxy took the decision; what it did not take is reported, not assumed.
//
// Temporary entries live in the proxy's memory and in the engine's state (cages/<id>/temporary.json, mode 600),
// never in the policy file. The proxy's boot id changes when it restarts (RestartPolicy unless-stopped): the
// engine then gives it its entries again.
import type Docker from 'dockerode';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { canonicalHost, formatRemaining, hostForDisplay, liveEntries, type ControlReply, type ControlRequest, type PendingGroup, type TemporaryEntry } from '../policy';
import { demux, splitLines } from './dockerutil';
import { execIn } from './exec';
import { PROXY_CONTROL_CMD } from './specs';

/** How the user answered (the editor's buttons, the CLI's flags). "Always" is a policy edit, not an answer here. */
export interface AskAnswer {
  host: string;
  /** Only this port (default: every port requests to the host wait on; a temporary entry covers 80 and 443, or this port). */
  port?: number;
  decision: 'allow' | 'deny';
  /** once: the waiting requests only; session: until the cage stops; for: forMs from now. Deny: once or session. */
  scope: 'once' | 'session' | 'for';
  forMs?: number;
  methods?: string[];
  paths?: string[];
  private?: boolean;
}

export interface AnswerResult {
  /** The proxy took the decision. */
  ok: boolean;
  /** What happened, in words (also when ok: "released 2 waiting requests; allowed for 5 min"). */
  message: string;
  /** Waiting requests the answer released or refused. */
  answered: number;
  /** The temporary entry now in force, if the answer made one. */
  entry?: TemporaryEntry;
}

export interface AskState {
  pending: PendingGroup[];
  temporary: TemporaryEntry[];
}

/** The engine's copy of a cage's temporary entries (for restoring a restarted proxy, and for status). */
export class TemporaryStore {
  constructor(private readonly cageDir: string) {}

  private get file(): string {
    return path.join(this.cageDir, 'temporary.json');
  }

  /**
   * The entries kept for `proxyId`: those of another proxy container (an earlier session of the cage, ended
   * without `down`) are not this session's.
   */
  read(proxyId: string): { boot?: string; entries: TemporaryEntry[] } {
    try {
      const o = JSON.parse(fs.readFileSync(this.file, 'utf8'));
      if (o.proxy !== proxyId) return { entries: [] };
      return { boot: typeof o.boot === 'string' ? o.boot : undefined, entries: Array.isArray(o.entries) ? liveEntries(o.entries, Date.now()) : [] };
    } catch {
      return { entries: [] };
    }
  }

  write(proxyId: string, boot: string | undefined, entries: TemporaryEntry[]): void {
    fs.mkdirSync(this.cageDir, { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify({ proxy: proxyId, boot, entries: liveEntries(entries, Date.now()) }, null, 1), { mode: 0o600 });
    fs.renameSync(tmp, this.file);
  }

  clear(): void {
    fs.rmSync(this.file, { force: true });
  }
}

/** One control request through `docker exec`; throws only when no reply came at all. */
export async function controlProxy(proxy: Docker.Container, req: ControlRequest): Promise<ControlReply> {
  const r = await execIn(proxy, [...PROXY_CONTROL_CMD, JSON.stringify(req)], { timeoutMs: 15_000 });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as ControlReply;
  } catch {
    throw new Error(`the proxy gave no answer on its control channel (exit ${r.exitCode}): ${(r.stderr || r.stdout).trim().slice(0, 300)}`);
  }
}

function newId(): string {
  return 't-' + crypto.randomBytes(3).toString('hex');
}

function plural(n: number, what: string): string {
  return `${n} waiting request${n === 1 ? '' : 's'}${what ? ` ${what}` : ''}`;
}

/** The host as an entry writes it: canonical, with the port when it is not a default one. */
function entryHost(host: string, port: number | undefined): string | undefined {
  const c = canonicalHost(host.replace(/^\*\./, ''));
  if (!c) return undefined;
  const h = (host.startsWith('*.') ? '*.' : '') + hostForDisplay(c);
  return port === undefined || port === 80 || port === 443 ? h : `${h}:${port}`;
}

/** The answers of one cage: the proxy (through `exec`) and the engine's copy of its temporary entries. */
export class CageAsk {
  constructor(
    private readonly control: (req: ControlRequest) => Promise<ControlReply>,
    private readonly store: TemporaryStore,
    /** The proxy container's id: a restart keeps it (its entries come back), a new session does not. */
    private readonly proxyId: string,
  ) {}

  /** Sends `req`; a proxy that restarted since the last reply first gets the engine's entries back. */
  async send(req: ControlRequest): Promise<ControlReply> {
    let reply = await this.control(req);
    const saved = this.store.read(this.proxyId);
    if (reply.boot && saved.boot && reply.boot !== saved.boot && saved.entries.length) {
      const have = new Set((reply.temporary ?? []).map((e) => e.id));
      const missing = saved.entries.filter((e) => !have.has(e.id));
      if (missing.length) {
        await this.control({ op: 'add', entries: missing });
        if (req.op === 'state' || req.op === 'add' || req.op === 'remove') reply = await this.control({ op: 'state' });
      }
    }
    if (reply.boot) this.store.write(this.proxyId, reply.boot, reply.temporary ?? saved.entries);
    return reply;
  }

  async state(): Promise<AskState> {
    const r = await this.send({ op: 'state' });
    if (!r.ok) throw new Error(`the proxy refused to report its held requests: ${r.error}`);
    return { pending: r.pending ?? [], temporary: r.temporary ?? [] };
  }

  async answer(a: AskAnswer): Promise<AnswerResult> {
    const host = entryHost(a.host, a.port);
    const c = canonicalHost(a.host.replace(/^\*\./, ''));
    if (!host || !c) return { ok: false, answered: 0, message: `${JSON.stringify(a.host)} is not a host name` };
    const shown = hostForDisplay(c);
    if (a.decision === 'allow' && a.scope === 'once') {
      const r = await this.send({ op: 'once', host: shown, port: a.port, methods: a.methods, paths: a.paths, private: a.private });
      return r.ok ? { ok: true, answered: r.released ?? 0, message: `released ${plural(r.released ?? 0, `to ${shown}`)} (nothing was added)` } : { ok: false, answered: 0, message: r.error ?? 'the proxy did not take the answer' };
    }
    if (a.scope === 'for' && !(a.forMs && a.forMs > 0)) return { ok: false, answered: 0, message: 'a duration is needed (30s, 15m, 1h)' };
    const now = Date.now();
    const entry: TemporaryEntry = { id: newId(), kind: a.decision, host, created: now };
    if (a.scope === 'for') entry.expires = now + a.forMs!;
    if (a.decision === 'allow') {
      if (a.methods?.length) entry.methods = a.methods.map((m) => m.toUpperCase());
      if (a.paths?.length) entry.paths = a.paths;
      if (a.private) entry.private = true;
    }
    const span = entry.expires ? `for ${formatRemaining(entry.expires - now)}` : 'until the cage stops';
    if (a.decision === 'deny') {
      const r = await this.send({ op: 'refuse', host: shown, port: a.port, entries: a.scope === 'once' ? undefined : [entry] });
      if (!r.ok) return { ok: false, answered: r.refused ?? 0, message: r.error ?? 'the proxy did not take the answer' };
      const n = r.refused ?? 0;
      return { ok: true, answered: n, entry: a.scope === 'once' ? undefined : entry, message: `refused ${plural(n, `to ${shown}`)}${a.scope === 'once' ? '' : `; ${host} is denied ${span} (revoke: caged-agent revoke ${host})`}` };
    }
    const r = await this.send({ op: 'add', entries: [entry] });
    if (!r.ok) return { ok: false, answered: 0, message: r.error ?? 'the proxy did not take the answer' };
    let n = r.released ?? 0;
    // Requests to the host that wait on another port than the entry covers: one entry each.
    const others = a.port === undefined ? (r.pending ?? []).filter((g) => g.host === shown && g.port !== 80 && g.port !== 443) : [];
    if (others.length) {
      const more = others.map((g) => ({ ...entry, id: newId(), host: entryHost(shown, g.port)! }));
      const r2 = await this.send({ op: 'add', entries: more });
      n += r2.released ?? 0;
    }
    return { ok: true, answered: n, entry, message: `${host} is allowed ${span}${n ? `; released ${plural(n, '')}` : ' (no request was waiting)'}` };
  }

  /** Removes temporary entries by id, or every entry for a host. */
  async revoke(idOrHost: string): Promise<AnswerResult> {
    const st = await this.state();
    const c = canonicalHost(idOrHost.replace(/^\*\./, '').replace(/:\d+$/, ''));
    const ids = st.temporary.filter((e) => e.id === idOrHost || e.host === idOrHost || (c && e.host.replace(/:\d+$/, '') === hostForDisplay(c))).map((e) => e.id);
    if (!ids.length) return { ok: false, answered: 0, message: `no temporary allow or deny for ${idOrHost} is in force` };
    const r = await this.send({ op: 'remove', ids });
    return r.ok ? { ok: true, answered: 0, message: `revoked ${r.removed} temporary entr${r.removed === 1 ? 'y' : 'ies'} for ${idOrHost}` } : { ok: false, answered: 0, message: r.error ?? 'the proxy did not take it' };
  }
}

/**
 * One long-lived `docker exec` of the proxy's client mode (`--control -`) per proxy container: requests go in
 * on its stdin, replies come back in order on its stdout. An answer then costs one round trip, no process
 * start. A session that fails or times out is dropped; the next request opens a new one.
 */
export class ControlSession {
  private stream: NodeJS.ReadWriteStream | undefined;
  private opening: Promise<NodeJS.ReadWriteStream> | undefined;
  private readonly waiting: Array<{ resolve: (r: ControlReply) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }> = [];

  constructor(private readonly proxy: Docker.Container) {}

  private open(): Promise<NodeJS.ReadWriteStream> {
    this.opening ??= (async () => {
      const exec = await this.proxy.exec({ Cmd: [...PROXY_CONTROL_CMD, '-'], AttachStdin: true, AttachStdout: true, AttachStderr: true, Tty: false });
      const stream = (await exec.start({ hijack: true, stdin: true })) as unknown as NodeJS.ReadWriteStream;
      const { stdout } = demux(stream);
      splitLines(stdout, (line) => {
        const w = this.waiting.shift();
        if (!w) return;
        clearTimeout(w.timer);
        try {
          w.resolve(JSON.parse(line) as ControlReply);
        } catch {
          w.reject(new Error(`the proxy's control channel sent something that is not JSON: ${line.slice(0, 200)}`));
        }
      });
      const gone = () => this.fail(new Error('the control session with the proxy ended'));
      stream.on('end', gone);
      stream.on('close', gone);
      stream.on('error', gone);
      // An open session must not keep a CLI or a test process alive (a request in flight has its timer).
      (stream as unknown as { unref?: () => void }).unref?.();
      this.stream = stream;
      return stream;
    })();
    this.opening.catch(() => (this.opening = undefined));
    return this.opening;
  }

  private fail(e: Error): void {
    const s = this.stream;
    this.stream = undefined;
    this.opening = undefined;
    (s as unknown as { destroy?: () => void } | undefined)?.destroy?.();
    for (const w of this.waiting.splice(0)) {
      clearTimeout(w.timer);
      w.reject(e);
    }
  }

  async send(req: ControlRequest, timeoutMs = 15_000): Promise<ControlReply> {
    const stream = await this.open();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new Error(`the proxy did not answer on its control channel within ${timeoutMs / 1000} s`)), timeoutMs);
      this.waiting.push({ resolve, reject, timer });
      stream.write(JSON.stringify(req) + '\n');
    });
  }

  close(): void {
    const s = this.stream;
    this.stream = undefined;
    this.opening = undefined;
    s?.end();
  }
}
