// Every process the bench starts is registered here and killed by PID at the end, on error and on Ctrl-C.
// CPU time and RSS come from /proc/PID/stat and /proc/PID/status (whole process, all threads).
import * as child from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { nowMs, sleep } from './common';

const CLK_TCK = 100; // Linux USER_HZ; /proc/PID/stat counts in these ticks.

export interface Started {
  name: string;
  proc: child.ChildProcess;
  pid: number;
  /** Collected stderr (capped), for error messages. */
  stderr: () => string;
}

const live = new Map<number, Started>();

export function register(name: string, proc: child.ChildProcess): Started {
  if (!proc.pid) throw new Error(`${name}: failed to start`);
  let err = '';
  proc.stderr?.on('data', (d: Buffer) => {
    if (err.length < 64 * 1024) err += d.toString();
  });
  const s: Started = { name, proc, pid: proc.pid, stderr: () => err };
  live.set(proc.pid, s);
  proc.once('exit', () => live.delete(proc.pid!));
  return s;
}

export function spawnTracked(name: string, cmd: string, args: string[], opts: child.SpawnOptions = {}): Started {
  const p = child.spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...opts });
  return register(name, p);
}

export function forkTracked(name: string, file: string, args: string[], opts: child.ForkOptions = {}): Started {
  const p = child.fork(file, args, { stdio: ['pipe', 'pipe', 'pipe', 'ipc'], ...opts });
  return register(name, p);
}

export function isAlive(s: Started): boolean {
  return live.has(s.pid);
}

/** SIGTERM, then SIGKILL after graceMs if still there. Only ever by PID. */
export async function stop(s: Started, graceMs = 2000): Promise<void> {
  if (!live.has(s.pid)) return;
  const exited = new Promise<void>((r) => s.proc.once('exit', () => r()));
  try {
    process.kill(s.pid, 'SIGTERM');
  } catch {
    live.delete(s.pid);
    return;
  }
  const t = setTimeout(() => {
    try {
      process.kill(s.pid, 'SIGKILL');
    } catch {}
  }, graceMs);
  await exited;
  clearTimeout(t);
}

export async function stopAll(): Promise<void> {
  await Promise.all([...live.values()].map((s) => stop(s)));
}

const tempDirs = new Set<string>();

/** A temp dir removed by killAllSync too (Ctrl-C skips the orchestrator's finally blocks). */
export function registerTempDir(dir: string): void {
  tempDirs.add(dir);
}

/** Last resort (signal and 'exit' handlers, synchronous): SIGKILL every PID still registered, remove temp dirs. */
export function killAllSync(): void {
  for (const pid of live.keys()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  live.clear();
  for (const d of tempDirs) {
    try {
      fs.rmSync(d, { recursive: true, force: true });
    } catch {}
  }
  tempDirs.clear();
}

export interface ProcSample {
  t: number;
  /** user+system CPU in ms. */
  cpuMs: number;
  rssKb: number;
}

export function sample(pid: number): ProcSample {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15 (1-based).
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  const status = fs.readFileSync(`/proc/${pid}/status`, 'latin1');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return { t: nowMs(), cpuMs: ((utime + stime) * 1000) / CLK_TCK, rssKb: m ? Number(m[1]) : NaN };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Waits until host:port accepts a TCP connection (the process must stay alive meanwhile). */
export async function waitForPort(s: Started, host: string, port: number, timeoutMs: number): Promise<number> {
  const t0 = nowMs();
  while (nowMs() - t0 < timeoutMs) {
    if (!isAlive(s)) throw new Error(`${s.name} exited before listening on ${host}:${port}: ${s.stderr().slice(-2000)}`);
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect({ host, port });
      c.once('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (ok) return nowMs() - t0;
    await sleep(20);
  }
  throw new Error(`${s.name} did not listen on ${host}:${port} within ${timeoutMs} ms: ${s.stderr().slice(-2000)}`);
}

/** Reads the first line a child prints on stdout. */
export function firstLine(s: Started, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let acc = '';
    const t = setTimeout(() => reject(new Error(`${s.name}: no output within ${timeoutMs} ms: ${s.stderr().slice(-2000)}`)), timeoutMs);
    const onData = (d: Buffer) => {
      acc += d.toString();
      const nl = acc.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(t);
        s.proc.stdout!.off('data', onData);
        resolve(acc.slice(0, nl));
      }
    };
    s.proc.stdout!.on('data', onData);
    s.proc.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`${s.name} exited (${code}): ${s.stderr().slice(-2000)}`));
    });
  });
}

/** Whole-machine busy CPU time (ms, all cores) from /proc/stat: user+nice+system+irq+softirq+steal. */
export function machineBusyMs(): number {
  const line = fs.readFileSync('/proc/stat', 'latin1').split('\n', 1)[0];
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = f;
  return ((user + nice + system + irq + softirq + (steal || 0)) * 1000) / CLK_TCK;
}

/** Number of open file descriptors of a process (sockets included). */
export function fdCount(pid: number): number {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return NaN;
  }
}
