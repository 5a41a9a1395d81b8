// Running programs in a cage's containers: a command with its output collected (exec), and an interactive
// terminal with a TTY (the editor's and the CLI's shell).
import type Docker from 'dockerode';
import type { Duplex } from 'node:stream';
import type { ExecOptions, ExecResult, ShellOptions, ShellSession } from './api';
import { collect, demux, sleep } from './dockerutil';
import { pathExists } from './images';
import { LABEL_WORKSPACE_IN_CONTAINER, envList } from './specs';

/** Runs a command in a container and collects its output; gives up waiting after opts.timeoutMs (default 60 s). */
export async function execIn(container: Docker.Container, cmd: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const exec = await container.exec({
    Cmd: cmd,
    AttachStdout: true,
    AttachStderr: true,
    AttachStdin: false,
    Tty: false,
    ...(opts.user ? { User: opts.user } : {}),
    ...(opts.env ? { Env: envList(opts.env) } : {}),
    ...(opts.workdir ? { WorkingDir: opts.workdir } : {}),
  });
  const stream = (await exec.start({ hijack: true, stdin: false })) as unknown as NodeJS.ReadableStream;
  const { stdout, stderr } = demux(stream);
  const out = collect(stdout);
  const err = collect(stderr);
  const timeoutMs = opts.timeoutMs ?? 60_000;
  let timedOut = false;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => { timedOut = true; (stream as any).destroy?.(); resolve(); }, timeoutMs);
    const done = () => { clearTimeout(timer); resolve(); };
    stream.on('end', done);
    stream.on('close', done);
    stream.on('error', done);
  });
  const [o, e] = await Promise.all([out.catch(() => Buffer.alloc(0)), err.catch(() => Buffer.alloc(0))]);
  let exitCode = -1;
  for (let i = 0; i < 20; i++) {
    const info = await exec.inspect();
    if (!info.Running && info.ExitCode !== null && info.ExitCode !== undefined) { exitCode = info.ExitCode; break; }
    if (timedOut) break;
    await sleep(50);
  }
  return { exitCode, stdout: o.toString('utf8'), stderr: e.toString('utf8') + (timedOut ? `\n[timed out after ${timeoutMs} ms]` : '') };
}

/** An interactive terminal in the agent (docker exec with a TTY), in the workspace folder. */
export async function openShell(agent: Docker.Container, cageId: string, opts: ShellOptions): Promise<ShellSession> {
  let cmd = opts.cmd;
  if (!cmd?.length) {
    if (!(await pathExists(agent, '/bin/sh'))) {
      throw new Error(`The agent image of cage ${cageId} has no shell (/bin/sh), so no terminal can open in it.`);
    }
    cmd = ['/bin/sh', '-c', 'if command -v bash >/dev/null 2>&1; then exec bash -l; else exec sh -l; fi'];
  }
  const info = await agent.inspect();
  const exec = await agent.exec({
    Cmd: cmd,
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    Tty: true,
    Env: envList({ TERM: 'xterm-256color', ...(opts.env ?? {}) }),
    WorkingDir: info.Config.Labels?.[LABEL_WORKSPACE_IN_CONTAINER] || info.Config.WorkingDir || '/',
    ...(opts.user ? { User: opts.user } : {}),
  });
  const stream = (await exec.start({ hijack: true, stdin: true, Tty: true } as any)) as unknown as Duplex;
  const resize = async (cols: number, rows: number) => {
    try {
      await exec.resize({ w: Math.max(1, Math.floor(cols)), h: Math.max(1, Math.floor(rows)) });
    } catch {}
  };
  await resize(opts.cols, opts.rows);
  const exit = new Promise<number>((resolve) => {
    let done = false;
    // The stream ends when the shell exits, but only if someone reads it: poll as well.
    const poll = setInterval(() => {
      exec.inspect().then((r) => { if (!r.Running) finish(); }, () => finish());
    }, 1000);
    const finish = async () => {
      if (done) return;
      done = true;
      clearInterval(poll);
      for (let i = 0; i < 20; i++) {
        try {
          const r = await exec.inspect();
          if (!r.Running) { (stream as any).destroy?.(); return resolve(r.ExitCode ?? 0); }
        } catch {
          return resolve(-1);
        }
        await sleep(50);
      }
      resolve(-1);
    };
    stream.on('end', finish);
    stream.on('close', finish);
    stream.on('error', finish);
  });
  return { stream, resize, exit };
}
