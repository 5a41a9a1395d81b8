// The h2 rows' load (in the load-generator process): one HTTP/2 connection (node:http2 over a TLS socket that
// offered ALPN h2 and http/1.1, through the proxy's CONNECT tunnel or direct), `streams` requests kept in
// flight on it. When the far side chose http/1.1 instead of h2, no load is sent: the result says which
// protocol was negotiated, and the row reports that instead of figures.
import * as http2 from 'node:http2';
import type { Percentiles, Target } from './common';
import { nowMs, percentiles } from './common';
import { openTls } from './client';

export interface H2LoadResult {
  /** What ALPN chose on the client's TLS connection ('h2', 'http/1.1', or 'none'). */
  protocol: string;
  requests: number;
  seconds: number;
  errors: number;
  lastError: string;
  /** Per request, from sending its HEADERS to the end of its response, with `streams` in flight. */
  latency: Percentiles;
  loadgenCpuUs: number;
  /** Streams still waiting for their response when the window closed. */
  inFlight: number;
}

const cpuUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

export async function h2Multiplexed(t: Target, path: string, streams: number, warmMs: number, ms: number): Promise<H2LoadResult> {
  const { socket } = await openTls(t, ['h2', 'http/1.1']);
  const protocol = socket.alpnProtocol || 'none';
  const none: H2LoadResult = { protocol, requests: 0, seconds: 0, errors: 0, lastError: '', latency: percentiles([]), loadgenCpuUs: 0, inFlight: 0 };
  if (protocol !== 'h2') {
    socket.destroy();
    return none;
  }
  const authority = `${t.servername}:${t.port}`;
  const session = http2.connect(`https://${authority}`, { createConnection: () => socket });
  let failed: Error | undefined;
  session.on('error', (e) => (failed = e));
  const samples: number[] = [];
  let measuring = false;
  let running = true;
  let errors = 0;
  let lastError = '';
  let inFlight = 0;
  let drained: (() => void) | undefined;
  const headers = { ':method': 'GET', ':path': path, 'user-agent': 'caged-bench' };
  const one = (): void => {
    if (!running || session.destroyed) return;
    inFlight++;
    const t0 = nowMs();
    let status = 0;
    const req = session.request(headers, { endStream: true });
    req.on('response', (h) => (status = Number(h[':status'])));
    req.resume();
    const done = (e?: Error) => {
      inFlight--;
      if (e || status !== 200) {
        errors++;
        lastError = e ? e.message : `status ${status}`;
      } else if (measuring) samples.push(nowMs() - t0);
      if (running) one();
      else if (inFlight === 0) drained?.();
    };
    req.once('end', () => done());
    req.once('error', (e) => done(e));
  };
  for (let i = 0; i < streams; i++) one();
  await new Promise((r) => setTimeout(r, warmMs));
  measuring = true;
  const e0 = errors;
  const c0 = cpuUs();
  const t0 = nowMs();
  await new Promise((r) => setTimeout(r, ms));
  measuring = false;
  const seconds = (nowMs() - t0) / 1000;
  const loadgenCpuUs = cpuUs() - c0;
  running = false;
  const stillInFlight = inFlight;
  if (inFlight > 0) await new Promise<void>((r) => ((drained = r), setTimeout(r, 5000)));
  session.destroy();
  if (failed && !lastError) lastError = failed.message;
  return { protocol, requests: samples.length, seconds, errors: errors - e0, lastError, latency: percentiles(samples), loadgenCpuUs, inFlight: stillInFlight };
}
