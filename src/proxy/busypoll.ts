// Opt-in busy-polling (--busy-poll-us): after a read, the event loop keeps polling for I/O (epoll with a zero
// timeout, through setImmediate turns) for up to N microseconds instead of going to sleep at once.
//
// Why: a process that sleeps in epoll_wait must be woken by the kernel when its next bytes arrive, and on a
// virtual machine that wake-up (and the sleep before it) costs several microseconds of CPU on both sides
// plus tens of microseconds of latency. When the peers answer within microseconds (the agent and a local
// service on the same host, or a loopback benchmark), polling through that gap saves the sleep and the
// wake-up. When nothing follows (an internet upstream is milliseconds away), it costs up to N µs of CPU per
// read. HAProxy offers the same trade-off as `busy-polling`, off by default; so is this.
//
// Process-wide: it is a property of the event loop, not of one proxy instance.

let windowMs = 0;
let lastRead = 0;
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

/** Called on every read: (re)opens the polling window. */
export function noteRead(): void {
  lastRead = performance.now();
  if (!polling) {
    polling = true;
    setImmediate(tick);
  }
}
