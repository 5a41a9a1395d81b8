// The proxy program's control client mode (`node dist/proxy.js --control JSON`), as the engine runs it.
import { execFile } from 'node:child_process';
import type { ControlReply } from '../../src/proxy/control';
import { proxyJs as BUNDLE } from './child';

export function controlClientRequest(socket: string, req: unknown): Promise<ControlReply> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [BUNDLE, '--control', JSON.stringify(req), '--control-socket', socket], (err, stdout) => {
      try {
        resolve(JSON.parse(stdout) as ControlReply);
      } catch {
        reject(err ?? new Error(`not JSON: ${stdout}`));
      }
    });
  });
}
