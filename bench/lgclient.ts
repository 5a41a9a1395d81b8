// The orchestrator's handle on the load-generator process (request/answer over the IPC channel).
import { forkTracked, type Started } from './procs';
import type { LoadCommand } from './loadgen';
import { withTimeout } from './common';

export class LoadGen {
  private next = 1;
  private readonly pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();

  private constructor(readonly proc: Started) {
    proc.proc.on('message', (m: { id?: number; result?: unknown; error?: string }) => {
      if (m.id === undefined) return;
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.error !== undefined) p.reject(new Error(`loadgen: ${m.error}`));
      else p.resolve(m.result);
    });
    proc.proc.on('exit', (code) => {
      for (const p of this.pending.values()) p.reject(new Error(`loadgen exited (${code}): ${proc.stderr().slice(-2000)}`));
      this.pending.clear();
    });
  }

  /** `runDir`, the run's temp dir, only labels the process (`--run`), so a process listing tells its run. */
  static async start(benchJs: string, runDir: string): Promise<LoadGen> {
    const proc = forkTracked('loadgen', benchJs, ['--role', 'loadgen', '--run', runDir]);
    proc.proc.stdout?.resume();
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        proc.proc.once('message', () => resolve());
        proc.proc.once('exit', (c) => reject(new Error(`loadgen exited (${c}): ${proc.stderr()}`)));
      }),
      15000,
      'loadgen start',
    );
    return new LoadGen(proc);
  }

  call<T = any>(msg: LoadCommand, timeoutMs = 120000): Promise<T> {
    const id = this.next++;
    const p = new Promise<T>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    this.proc.proc.send({ id, msg });
    return withTimeout(p, timeoutMs, `loadgen ${msg.cmd}`);
  }
}
