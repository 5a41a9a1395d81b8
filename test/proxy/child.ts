// dist/proxy.js as a child process for the tests that need the real program (its own RSS, signals, stdout).
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { parseEventLine, type ProxyEvent } from '../../src/policy/events';
import { cage, web } from './helpers';

const root = path.resolve(__dirname, '../../..');
export const proxyJs = path.join(root, 'dist/proxy.js');

export interface Child {
  proc: ChildProcess;
  events: ProxyEvent[];
  url: string;
  port: number;
  waitEvent(pred: (e: ProxyEvent) => boolean, timeoutMs?: number): Promise<ProxyEvent>;
  stderr(): string;
}

export async function spawnProxy(policyFile: string, extraEnv: Record<string, string> = {}, extraArgs: string[] = []): Promise<Child> {
  const proc = spawn(process.execPath, [proxyJs, '--policy', policyFile, '--ca-cert', cage().certFile, '--ca-key', cage().keyFile, '--listen', '127.0.0.1:0', '--upstream-ca', web().certFile, ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '', ...extraEnv },
  });
  const events: ProxyEvent[] = [];
  const waiters: Array<{ pred: (e: ProxyEvent) => boolean; resolve: (e: ProxyEvent) => void }> = [];
  let buf = '';
  let err = '';
  proc.stderr!.on('data', (d) => (err += d));
  proc.stdout!.setEncoding('utf8');
  proc.stdout!.on('data', (d: string) => {
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const e = parseEventLine(line);
      if (!e) continue;
      events.push(e);
      for (const w of [...waiters]) {
        if (!w.pred(e)) continue;
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(e);
      }
    }
  });
  const waitEvent = (pred: (e: ProxyEvent) => boolean, timeoutMs = 5000, from = 0) =>
    new Promise<ProxyEvent>((resolve, reject) => {
      const found = events.slice(from).find(pred);
      if (found) return resolve(found);
      const t = setTimeout(() => reject(new Error(`timed out waiting for an event; stderr: ${err}`)), timeoutMs);
      waiters.push({ pred, resolve: (e) => (clearTimeout(t), resolve(e)) });
    });
  const listening = (await waitEvent((e) => e.type === 'listening', 10000)) as { address?: string };
  const port = Number(listening.address!.split(':').at(-1));
  return { proc, events, url: `http://127.0.0.1:${port}`, port, waitEvent: (p, t) => waitEvent(p, t, 0), stderr: () => err };
}

export function stop(c: Child): Promise<number | null> {
  return new Promise((resolve) => {
    if (c.proc.exitCode !== null) return resolve(c.proc.exitCode);
    c.proc.once('exit', (code) => resolve(code));
    c.proc.kill('SIGTERM');
  });
}

