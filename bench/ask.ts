// `node dist/bench.js --role ask [--docker] [--quick]`: the numbers of "ask instead of fail" (issue 17), on
// 127.0.0.1 with dist/proxy.js as a child process (onUnknown: ask, its control socket in a temp folder):
//   answer → held request completes   p50/p90 over N answers: the control request (the proxy's client mode,
//                                     as `docker exec` runs it in a cage) until the held request's response
//                                     arrived, and the proxy's own part (socket request → response)
//   RSS with 1,000 held requests      each one a CONNECT + completed TLS handshake + a request inside, held
//   allowed keep-alive req/s          16 connections, with 500 requests held vs none (interleaved rounds, medians)
//   --docker                          the engine path in a real cage: CageEngine.answer() → the agent's
//                                     held curl completes (needs the test images; see scripts/build-test-images.sh)
// Prints a table and one line "ASK_BENCH_JSON {...}".
import * as child from 'node:child_process';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { nowMs, percentiles, round, sleep, type Target } from './common';
import { makeCerts } from './certs';
import { Conn, openTls, requestBytes } from './client';
import { freePort, sample, spawnTracked, stop, waitForPort } from './procs';

interface AskOptions {
  root: string;
  quick: boolean;
  docker: boolean;
  log: (s: string) => void;
}

function controlOnce(proxyJs: string, sock: string, req: unknown): Promise<{ ms: number; reply: { ok: boolean; released?: number; error?: string } }> {
  const t0 = nowMs();
  return new Promise((resolve, reject) => {
    child.execFile(process.execPath, [proxyJs, '--control-socket', sock, '--control', JSON.stringify(req)], (err, stdout) => {
      try {
        resolve({ ms: nowMs() - t0, reply: JSON.parse(stdout) });
      } catch {
        reject(err ?? new Error(stdout));
      }
    });
  });
}

/** A raw socket speaking to the proxy directly over the control socket (the proxy's part, no process start). */
function controlDirect(sock: string, req: unknown): Promise<number> {
  const t0 = nowMs();
  return new Promise((resolve, reject) => {
    const s = net.createConnection(sock);
    s.on('connect', () => s.write(JSON.stringify(req) + '\n'));
    s.on('data', () => {});
    s.on('end', () => resolve(nowMs() - t0));
    s.on('error', reject);
  });
}

/** Opens a CONNECT + TLS session to `host` through the proxy and sends one GET; resolves once it is sent (it will be held). */
async function heldRequest(proxyPort: number, caPem: string, host: string, port: number, path: string): Promise<Conn> {
  const t: Target = { name: host, proxy: { host: '127.0.0.1', port: proxyPort }, host, port, servername: host, caPem };
  const { socket } = await openTls(t);
  const c = new Conn(socket);
  c.request(requestBytes(t, 'GET', path)).catch(() => {});
  return c;
}

async function waitHeld(proxyJs: string, sock: string, n: number, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const r = await controlOnce(proxyJs, sock, { op: 'state' });
    const held = ((r.reply as { pending?: Array<{ count: number }> }).pending ?? []).reduce((a, g) => a + g.count, 0);
    if (held >= n) return;
    if (Date.now() > end) throw new Error(`only ${held} of ${n} requests were held`);
    await sleep(100);
  }
}

/** `n` plain-HTTP requests to unknown hosts (4 of them), each on its own connection: held, cheap to open. */
async function holdPlain(proxyPort: number, n: number): Promise<net.Socket[]> {
  const out: net.Socket[] = [];
  for (let i = 0; i < n; i++) {
    const s = net.connect(proxyPort, '127.0.0.1');
    s.on('error', () => {});
    s.write(`GET http://k${i % 4}.held.test/q${i} HTTP/1.1\r\nHost: k${i % 4}.held.test\r\n\r\n`);
    out.push(s);
  }
  return out;
}

async function keepAliveRate(proxyPort: number, caPem: string, upPort: number, ms: number, conns = 16): Promise<number> {
  const t: Target = { name: 'allowed', proxy: { host: '127.0.0.1', port: proxyPort }, host: 'localhost', port: upPort, servername: 'localhost', caPem };
  const cs = await Promise.all(Array.from({ length: conns }, async () => new Conn((await openTls(t)).socket)));
  const req = requestBytes(t, 'GET', '/ka');
  for (const c of cs) await c.request(req); // warm
  let done = 0;
  const end = nowMs() + ms;
  await Promise.all(
    cs.map(async (c) => {
      while (nowMs() < end) {
        await c.request(req);
        done++;
      }
    }),
  );
  for (const c of cs) c.close();
  return done / (ms / 1000);
}

export async function runAskBench(o: AskOptions): Promise<number> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'caged-ask-bench-'));
  const proxyJs = path.join(o.root, 'dist/proxy.js');
  const certs = makeCerts(dir);
  const up = https.createServer({ cert: certs.upstreamCert, key: certs.upstreamKey }, (_req, res) => res.end('ok'));
  const upPort = await new Promise<number>((r) => up.listen(0, '127.0.0.1', () => r((up.address() as net.AddressInfo).port)));
  const policy = path.join(dir, 'policy.yaml');
  fs.writeFileSync(policy, `version: 1\nonUnknown: ask\naskTimeout: 600\nallow:\n  - host: "localhost:${upPort}"\n    private: true\n`);
  const sock = path.join(dir, 'control.sock');
  const port = await freePort();
  const proxy = spawnTracked('proxy', process.execPath, [proxyJs, '--policy', policy, '--ca-cert', certs.files.cageCaCert, '--ca-key', certs.files.cageCaKey, '--listen', `127.0.0.1:${port}`, '--upstream-ca', certs.files.upstreamCaCert, '--control-socket', sock], { stdio: ['ignore', 'ignore', 'inherit'] });
  const out: Record<string, unknown> = {};
  try {
    await waitForPort(proxy, '127.0.0.1', port, 10_000);
    const rssIdle = sample(proxy.proc.pid!).rssKb;

    // 1. answer → held request completes (the first request to a host held; "once" releases it: 403 afterwards
    // since nothing resolves the name, which is the same work for the proxy as an allowed host's first request
    // minus the upstream connect).
    const n = o.quick ? 10 : 40;
    const viaClient: number[] = [];
    const viaSocket: number[] = [];
    for (let i = 0; i < n * 2; i++) {
      const host = `a${i}.unknown.test`;
      const c = await heldRequest(port, certs.cageCaCert, host, 443, '/x');
      await sleep(30);
      const t0 = nowMs();
      const got = new Promise<void>((r) => c.socket.once('data', () => r()));
      if (i % 2 === 0) await controlOnce(proxyJs, sock, { op: 'once', host });
      else await controlDirect(sock, { op: 'once', host });
      await got;
      (i % 2 === 0 ? viaClient : viaSocket).push(nowMs() - t0);
      c.close();
    }
    out.answerToCompletion = { clientModeMs: percentiles(viaClient), socketMs: percentiles(viaSocket) };

    // 2. RSS with 1,000 held requests (8 hosts × 125, each CONNECT + TLS + a request inside).
    const heldConns: Conn[] = [];
    const total = o.quick ? 200 : 1000;
    for (let i = 0; i < total; i += 50) {
      heldConns.push(...(await Promise.all(Array.from({ length: Math.min(50, total - i) }, (_, k) => heldRequest(port, certs.cageCaCert, `h${(i + k) % 8}.held.test`, 443, `/p${i + k}`)))));
    }
    await waitHeld(proxyJs, sock, total);
    await sleep(500);
    const rssHeld = sample(proxy.proc.pid!).rssKb;
    out.rss = { idleKb: rssIdle, heldKb: rssHeld, held: total, perHeldKb: round((rssHeld - rssIdle) / total, 1) };

    // 3. allowed keep-alive req/s with 500 held vs none, interleaved (A B A B ...) after a warm-up, medians per
    // condition: the machine's load moves between windows, and the first window warms the JIT.
    for (let g = 0; g < 8; g++) await controlDirect(sock, { op: 'refuse', host: `h${g}.held.test` });
    for (const c of heldConns) c.close();
    await sleep(300);
    const ms = o.quick ? 1000 : 2000;
    const rounds = o.quick ? 3 : 5;
    await keepAliveRate(port, certs.cageCaCert, upPort, ms);
    const without: number[] = [];
    const withHeld: number[] = [];
    for (let r = 0; r < rounds; r++) {
      without.push(await keepAliveRate(port, certs.cageCaCert, upPort, ms));
      const held = await holdPlain(port, 500);
      await waitHeld(proxyJs, sock, 500);
      withHeld.push(await keepAliveRate(port, certs.cageCaCert, upPort, ms));
      for (let g = 0; g < 4; g++) await controlDirect(sock, { op: 'refuse', host: `k${g}.held.test` });
      for (const s of held) s.destroy();
      await sleep(200);
    }
    const med = (x: number[]) => percentiles(x).p50;
    out.keepAlive = { withoutReqS: round(med(without), 0), with500HeldReqS: round(med(withHeld), 0), ratio: round(med(withHeld) / med(without), 3), runs: { without: without.map((x) => round(x, 0)), with500Held: withHeld.map((x) => round(x, 0)) } };

    if (o.docker) out.docker = await dockerAnswer(o);

    const a = out.answerToCompletion as { clientModeMs: { p50: number; p90: number }; socketMs: { p50: number; p90: number } };
    const r = out.rss as { idleKb: number; heldKb: number; held: number; perHeldKb: number };
    const k = out.keepAlive as { withoutReqS: number; with500HeldReqS: number; ratio: number };
    console.log('\nask instead of fail (issue 17), 127.0.0.1, dist/proxy.js');
    console.log(`  answer → held request completes   client mode p50 ${round(a.clientModeMs.p50)} ms (p90 ${round(a.clientModeMs.p90)}); proxy's part p50 ${round(a.socketMs.p50)} ms (p90 ${round(a.socketMs.p90)})`);
    console.log(`  proxy RSS                         idle ${(r.idleKb / 1024).toFixed(1)} MB; ${r.held} held ${(r.heldKb / 1024).toFixed(1)} MB (${r.perHeldKb} KB each)`);
    console.log(`  allowed keep-alive req/s          ${k.withoutReqS} without, ${k.with500HeldReqS} with 500 held: ${k.ratio}× (target ≥ 0.95)`);
    if (out.docker) console.log(`  engine path (real cage)           ${JSON.stringify(out.docker)}`);
    console.log(`ASK_BENCH_JSON ${JSON.stringify(out)}`);
    return 0;
  } finally {
    await stop(proxy);
    up.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The engine path in a real cage: CageEngine.answer({once}) → the agent's held curl completes. */
async function dockerAnswer(o: AskOptions): Promise<unknown> {
  const { CageEngine } = await import('../src/engine');
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'caged-ask-bench-state-'));
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'caged-ask-bench-ws-'));
  fs.mkdirSync(path.join(ws, '.caged'));
  fs.writeFileSync(path.join(ws, '.caged', 'policy.yaml'), 'version: 1\nonUnknown: ask\naskTimeout: 60\nallow: []\n');
  const engine = new CageEngine({ stateDir, proxyBundlePath: path.join(o.root, 'dist/proxy.js'), proxyBaseImage: 'caged-agent-test/node:20', agentImage: 'caged-agent-test/debian:bookworm' });
  const info = await engine.up({ workspace: ws });
  try {
    const answers: number[] = [];
    const completions: number[] = [];
    const n = o.quick ? 3 : 10;
    for (let i = 0; i < n; i++) {
      const host = `d${i}.i17-bench.test`;
      let doneAt = 0;
      const curl = engine.exec(info.id, ['sh', '-c', `curl -s -o /dev/null -w '%{http_code}' --max-time 30 https://${host}/; date +%s%3N`]).then((r) => {
        doneAt = Number(r.stdout.trim().slice(-13));
      });
      for (let k = 0; k < 100 && !(await engine.pending(info.id)).pending.some((g) => g.host === host); k++) await sleep(50);
      const t0 = Date.now();
      await engine.answer(info.id, { host, decision: 'allow', scope: 'once' });
      answers.push(Date.now() - t0);
      await curl;
      completions.push(doneAt - t0);
    }
    return { engineAnswerMs: percentiles(answers), answerToCurlDoneMs: percentiles(completions) };
  } finally {
    await engine.down(info.id, { images: true }).catch(() => {});
    fs.rmSync(ws, { recursive: true, force: true });
    fs.rmSync(stateDir, { recursive: true, force: true });
  }
}
