// The proxy's log is its event stream (one JSON line per decision or policy load, src/policy/events.ts). The
// engine follows it ONCE per proxy container, and every consumer subscribes to that one follower: the editor's
// and the CLI's events(), the verdict of a policy push, the verdict on the policy the proxy started with. No
// consumer scans the whole log: a follower starts at the end of the log (or at its start, for a proxy that was
// just created), and a subscriber that asks for older events gets them from one read of the log since then.
import type Docker from 'dockerode';
import { parseEventLine, type ProxyEvent } from '../policy/events';
import { demux, demuxBuffer, splitLines } from './dockerutil';

export interface LogListener {
  onEvent(e: ProxyEvent): void;
  /** The log ended (the proxy stopped or was removed) or failed. Not called after the subscription's stop(). */
  onEnd?(error?: Error): void;
}

export interface LogSubscription {
  stop(): void;
}

export interface FollowFrom {
  /** Replay the events since this UNIX time (seconds) first. */
  since?: number;
  /** Replay the whole log first (a proxy that was just created: its log is a few lines). */
  fromStart?: boolean;
}

interface Listener extends LogListener {
  /** Lines that arrived while this listener's replay was read (delivered after it, without the repeats). */
  held?: string[];
}

function deliver(l: LogListener, line: string): void {
  const ev = parseEventLine(line);
  if (!ev) return;
  try {
    l.onEvent(ev);
  } catch {}
}

/** One follow stream of one container's stdout, fanned out to its listeners. */
class Follower {
  readonly listeners = new Set<Listener>();
  ended = false;
  ready!: Promise<void>;
  private stream: NodeJS.ReadableStream | undefined;

  constructor(private readonly gone: (f: Follower) => void) {}

  async open(container: Docker.Container, from: FollowFrom): Promise<void> {
    const q: Record<string, unknown> = { stdout: true, stderr: false, follow: true };
    if (from.since !== undefined) q.since = from.since;
    else if (!from.fromStart) q.tail = 0;
    const stream = (await container.logs(q as any)) as unknown as NodeJS.ReadableStream;
    this.stream = stream;
    if (this.ended) return this.destroy();
    const { stdout } = demux(stream);
    splitLines(stdout, (line) => {
      for (const l of [...this.listeners]) {
        if (l.held) l.held.push(line);
        else deliver(l, line);
      }
    });
    stdout.on('end', () => this.end());
    stdout.on('error', (e) => this.end(e));
    stream.on('error', (e: Error) => this.end(e));
  }

  /** The stream ended or failed: tell every listener once. */
  private end(err?: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.gone(this);
    const ls = [...this.listeners];
    this.listeners.clear();
    for (const l of ls) {
      try { l.onEnd?.(err); } catch {}
    }
  }

  remove(l: Listener): void {
    this.listeners.delete(l);
    if (this.listeners.size > 0 || this.ended) return;
    // The last listener left: close the stream (its end is then nobody's news).
    this.ended = true;
    this.gone(this);
    this.destroy();
  }

  private destroy(): void {
    (this.stream as any)?.destroy?.();
  }
}

/** The followers of one engine, by proxy container id. */
export class ProxyLogs {
  private readonly followers = new Map<string, Follower>();

  /**
   * Calls listener.onEvent for each event the proxy logs from now on (after a replay, with `from`). Resolves
   * once the log is followed, so nothing the proxy logs after that is missed (a push signals the proxy then).
   */
  async subscribe(container: Docker.Container, listener: LogListener, from: FollowFrom = {}): Promise<LogSubscription> {
    const id = container.id;
    let f = this.followers.get(id);
    const late = !!f && (from.since !== undefined || !!from.fromStart);
    if (!f) {
      const made = new Follower((x) => { if (this.followers.get(id) === x) this.followers.delete(id); });
      made.ready = made.open(container, from);
      this.followers.set(id, made);
      f = made;
    }
    const l: Listener = { onEvent: (e) => listener.onEvent(e), onEnd: (e) => listener.onEnd?.(e), held: late ? [] : undefined };
    const follower = f;
    follower.listeners.add(l);
    try {
      await follower.ready;
      if (late) await replay(container, l, from);
    } catch (e) {
      follower.remove(l);
      throw e;
    }
    return { stop: () => follower.remove(l) };
  }
}

/** A listener that joined a running follower but wants older events: one read of the log, then what arrived meanwhile. */
async function replay(container: Docker.Container, l: Listener, from: FollowFrom): Promise<void> {
  const q: Record<string, unknown> = { stdout: true, stderr: false, follow: false };
  if (from.since !== undefined) q.since = from.since;
  const buf = (await container.logs(q as any)) as unknown as Buffer;
  const lines = demuxBuffer(buf).stdout.split('\n').map((x) => x.replace(/\r$/, '')).filter(Boolean);
  for (const line of lines) deliver(l, line);
  // Lines carry their time to the millisecond: one in both the replay and the live stream is the same event.
  const seen = new Set(lines);
  const held = l.held ?? [];
  l.held = undefined;
  for (const line of held) if (!seen.has(line)) deliver(l, line);
}
