// Writes proxy events as JSON lines. Lines are batched and written at most every FLUSH_MS (or at 512 lines),
// so the hot path never does a synchronous write and a busy proxy pays one write(2) per batch, not per
// event-loop turn. FLUSH_MS is far below anything a reader of the log notices (block → editor is ~10 ms).
// Decision events (one per request) skip the object and JSON.stringify entirely: the line is built from a
// template, and only the free-text fields are escaped (with a quick test first: host names, methods and
// normalised paths rarely need any escaping).
import type { Writable } from 'node:stream';
import type { DecisionEvent, ProxyEvent, Via } from '../policy/events';

// Anything JSON.stringify would escape: quotes, backslash, control characters, lone surrogates.
// eslint-disable-next-line no-control-regex
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/** A JSON string literal, byte for byte what JSON.stringify(s) gives. */
export function jsonString(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : '"' + s + '"';
}

/** Longest time an event line waits in memory. */
const FLUSH_MS = 5;

export class EventLog {
  private pending: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private lastMs = 0;
  private lastIso = '';

  constructor(
    private readonly out: Writable | null,
    private readonly listener?: (e: ProxyEvent) => void,
  ) {}

  /** The ISO time for an event, formatted at most once per millisecond. */
  now(): string {
    const t = Date.now();
    if (t !== this.lastMs) {
      this.lastMs = t;
      this.lastIso = new Date(t).toISOString();
    }
    return this.lastIso;
  }

  emit(e: ProxyEvent): void {
    if (this.listener) {
      try {
        this.listener(e);
      } catch {}
    }
    if (!this.out) return;
    this.push(JSON.stringify(e));
  }

  /**
   * A decision event, field for field the line `emit()` would write for the same DecisionEvent
   * (time, type, host, port, method, path, reason, rule, ruleKey, status, ms, detail, probe, via, proto). Only record.ts calls it.
   */
  decision(time: string, type: 'allow' | 'block', host: string, port: number, method: string, path: string, reason: string, rule: string | null, status: number | undefined, ms: number, detail: string | undefined, ruleKey?: string, probe?: boolean, via?: Via, proto?: 'h2'): void {
    if (this.listener) {
      const e = { time, type, host, port, method, path, reason: reason as DecisionEvent['reason'], rule } as DecisionEvent;
      if (ruleKey !== undefined) e.ruleKey = ruleKey;
      e.status = status;
      e.ms = ms;
      if (detail !== undefined) e.detail = detail;
      if (probe) e.probe = true;
      if (via) e.via = via;
      if (proto) e.proto = proto;
      return this.emit(e);
    }
    if (!this.out) return;
    let line =
      '{"time":"' + time + '","type":"' + type + '","host":' + jsonString(host) + ',"port":' + port + ',"method":' + jsonString(method) + ',"path":' + jsonString(path) +
      ',"reason":"' + reason + '","rule":' + (rule === null ? 'null' : '"' + rule + '"');
    if (ruleKey !== undefined) line += ',"ruleKey":' + jsonString(ruleKey);
    if (status !== undefined) line += ',"status":' + status;
    line += ',"ms":' + ms;
    if (detail !== undefined) line += ',"detail":' + jsonString(detail);
    if (probe) line += ',"probe":true';
    if (via) line += ',"via":"' + via + '"';
    if (proto) line += ',"proto":"' + proto + '"';
    this.push(line + '}');
  }

  private push(line: string): void {
    this.pending.push(line);
    if (this.pending.length >= 512) this.flush();
    // Not unref'd: lines still pending keep the process up until they are written.
    else this.timer ??= setTimeout(this.flushCb, FLUSH_MS);
  }

  private readonly flushCb = (): void => this.flush();

  flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.pending.length === 0 || !this.out) return;
    const text = this.pending.join('\n') + '\n';
    this.pending = [];
    this.out.write(text);
  }
}
