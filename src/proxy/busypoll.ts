// Busy-polling (--busy-poll-us, on by default with a 100 µs window): while reads come close together, the
// event loop keeps polling for I/O (epoll with a zero timeout, through setImmediate turns) for up to the
// window after a read instead of going to sleep at once.
//
// Why: a process that sleeps in epoll_wait must be woken by the kernel when its next bytes arrive, and on a
// virtual machine that wake-up (and the sleep before it) costs several microseconds of CPU on both sides,
// plus latency. When reads follow each other within microseconds (the agent's parallel requests on the
// same host, a burst of responses), polling through the gap saves the sleep and the wake-up: about 10%
// more intercepted keep-alive requests per second on the 2-core VM of docs/bench.md.
//
// Adaptive, so sparse traffic pays nothing: a read starts a poll only when it came within the window of
// the read before it. An internet upstream answering milliseconds later, or a stream of events a few
// milliseconds apart, never starts one (measured: no extra CPU for 1,500 server-sent events 2 ms apart);
// and every poll ends one window after the last read, so an idle proxy sleeps. HAProxy's `busy-polling`
// is the same idea without the adaptive part (off by default there).
//
// Process-wide: it is a property of the event loop, not of one proxy instance. The reads that count are
// those through the shared read buffer (readbuf.ts): TLS legs, upstream connections and tunnels.

/** The window dist/proxy.js uses unless --busy-poll-us says otherwise. */
export const DEFAULT_BUSY_POLL_US = 100;

let windowMs = 0;
let lastRead = -Infinity;
let polling = false;

/** Sets the polling window (µs; 0 turns it off). Sockets set up for reading afterwards take it into account. */
export function setBusyPoll(us: number): void {
  windowMs = Math.max(0, us) / 1000;
}

export function busyPolling(): boolean {
  return windowMs > 0;
}

// One setImmediate per loop turn: while it is pending, libuv polls for I/O without blocking.
const tick = (): void => {
  if (performance.now() - lastRead < windowMs) setImmediate(tick);
  else polling = false;
};

/** Called on every read: starts a poll when this read came within the window of the previous one. */
export function noteRead(): void {
  const now = performance.now();
  const dense = now - lastRead < windowMs;
  lastRead = now;
  if (dense && !polling) {
    polling = true;
    setImmediate(tick);
  }
}
