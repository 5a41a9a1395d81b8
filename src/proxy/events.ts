// Writes proxy events as JSON lines. Lines are batched and written once per event-loop turn so the hot
// path does one JSON.stringify and an array push per event, never a synchronous write.
import type { Writable } from 'node:stream';
import type { ProxyEvent } from '../policy/events';

export class EventLog {
  private pending: string[] = [];
  private scheduled = false;

  constructor(
    private readonly out: Writable | null,
    private readonly listener?: (e: ProxyEvent) => void,
  ) {}

  emit(e: ProxyEvent): void {
    if (this.listener) {
      try {
        this.listener(e);
      } catch {}
    }
    if (!this.out) return;
    this.pending.push(JSON.stringify(e));
    if (this.pending.length >= 512) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushCb);
    }
  }

  private readonly flushCb = (): void => this.flush();

  flush(): void {
    this.scheduled = false;
    if (this.pending.length === 0 || !this.out) return;
    const text = this.pending.join('\n') + '\n';
    this.pending = [];
    this.out.write(text);
  }
}
