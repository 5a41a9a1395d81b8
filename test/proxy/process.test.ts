// dist/proxy.js as a real process: SIGHUP reload both ways, missing policy, --health, SIGTERM,
// 100 MB uploads/downloads that must stream (the proxy's peak RSS stays bounded), and the system calls a
// keep-alive request costs it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ProxyEvent } from '../../src/policy/events';
import { proxyJs, spawnProxy, stop, type Child } from './child';
import { askOn, cage, curl, startUpstream, tlsThroughProxy, tmpDir, type EchoReply, type Upstream } from './helpers';

/** Waits until a new event matching pred arrives (ignores ones already seen). */
function nextEvent(c: Child, pred: (e: ProxyEvent) => boolean, timeoutMs = 5000): Promise<ProxyEvent> {
  const seen = c.events.length;
  return new Promise((resolve, reject) => {
    const t = setInterval(() => {
      const e = c.events.slice(seen).find(pred);
      if (e) {
        clearInterval(t);
        clearTimeout(to);
        resolve(e);
      }
    }, 10);
    const to = setTimeout(() => (clearInterval(t), reject(new Error('timed out waiting for a new event'))), timeoutMs);
  });
}

/**
 * A proxy process that allows the secure upstream (as localhost), `n` intercepted keep-alive sessions
 * through it, and `run(perConn)`: that many tiny requests on every session at once, each answered 200.
 */
async function keepAliveSessions(name: string, n: number, extraArgs: string[] = []) {
  const file = path.join(tmpDir, `${name}-policy.yaml`);
  fs.writeFileSync(file, `version: 1\nallow:\n  - host: localhost:${secure.port}\n    private: true\n`);
  const c = await spawnProxy(file, {}, extraArgs);
  children.push(c);
  const conns = await Promise.all(Array.from({ length: n }, () => tlsThroughProxy(c.port, 'localhost', secure.port)));
  const request = Buffer.from(`GET /download/2 HTTP/1.1\r\nHost: localhost:${secure.port}\r\n\r\n`);
  const run = (perConn: number) =>
    Promise.all(
      conns.map(async (s) => {
        for (let i = 0; i < perConn; i++) {
          const r = await askOn(s, request);
          if (!/^HTTP\/1\.1 200 /.test(r)) throw new Error(r.slice(0, 200));
        }
      }),
    );
  return { c, conns, run };
}

let plain: Upstream;
let secure: Upstream;
const children: Child[] = [];

before(async () => {
  assert.ok(fs.existsSync(proxyJs), 'run `npm run build` first (dist/proxy.js)');
  plain = await startUpstream(false);
  secure = await startUpstream(true);
});

after(async () => {
  for (const c of children) await stop(c);
  await plain.close();
  await secure.close();
});

describe('dist/proxy.js', () => {
  test('--help and bad arguments', () => {
    const h = spawnSync(process.execPath, [proxyJs, '--help'], { encoding: 'utf8' });
    assert.equal(h.status, 0);
    for (const flag of ['--policy', '--ca-cert', '--ca-key', '--listen', '--upstream-ca', '--upstream-proxy', '--health', 'CAGED_POLICY', 'SIGHUP']) {
      assert.ok(h.stdout.includes(flag), `help mentions ${flag}`);
    }
    const bad = spawnSync(process.execPath, [proxyJs, '--bogus'], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /unknown argument: --bogus/);
    for (const v of ['2000', '-1', '1.5', 'lots']) {
      const r = spawnSync(process.execPath, [proxyJs, '--busy-poll-us', v, '--policy', 'p', '--ca-cert', 'c', '--ca-key', 'k'], { encoding: 'utf8' });
      assert.equal(r.status, 2, v);
      assert.match(r.stderr, /--busy-poll-us must be a whole number of microseconds from 0 to 1000/, v);
    }
  });

  test('SIGHUP reload: valid takes effect, invalid keeps the last good policy', async () => {
    const file = path.join(tmpDir, 'reload-policy.yaml');
    const allowOnly = `version: 1\nallow:\n  - host: 127.0.0.1:${plain.port}   # IP-literal rule: the opt-in for the loopback upstream\n`;
    fs.writeFileSync(file, allowOnly);
    const c = await spawnProxy(file);
    children.push(c);
    const loaded = (await c.waitEvent((e) => e.type === 'policy-loaded')) as { hash: string; allow: number };
    assert.equal(loaded.allow, 1);
    assert.equal((await curl(c.url, `http://127.0.0.1:${plain.port}/a`)).status, 200);

    // A valid change takes effect at once.
    fs.writeFileSync(file, allowOnly + `deny:\n  - host: 127.0.0.1:${plain.port}\n`);
    const t0 = Date.now();
    let next = nextEvent(c, (e) => e.type === 'policy-loaded');
    c.proc.kill('SIGHUP');
    const l2 = (await next) as { hash: string; deny: number };
    assert.ok(Date.now() - t0 < 1000);
    assert.notEqual(l2.hash, loaded.hash);
    assert.equal(l2.deny, 1);
    const blocked = await curl(c.url, `http://127.0.0.1:${plain.port}/b`);
    assert.equal(blocked.status, 403);
    assert.equal(blocked.headers['x-caged-agent-block'], 'denied-by-rule');

    // An invalid file is reported with line/column and the last good policy stays.
    fs.writeFileSync(file, `version: 1\nallow:\n  - host: 127.0.0.1:${plain.port}\n    methods: GET, [\n`);
    next = nextEvent(c, (e) => e.type === 'policy-error');
    c.proc.kill('SIGHUP');
    const err = (await next) as { error: string; line?: number; col?: number; keptPrevious: boolean; message: string };
    assert.equal(err.error, 'invalid');
    assert.equal(err.keptPrevious, true);
    assert.ok(typeof err.line === 'number' && err.line >= 1, JSON.stringify(err));
    assert.ok(typeof err.col === 'number' && err.col >= 1);
    assert.equal((await curl(c.url, `http://127.0.0.1:${plain.port}/c`)).headers['x-caged-agent-block'], 'denied-by-rule');

    // And back: allowed again.
    fs.writeFileSync(file, allowOnly);
    next = nextEvent(c, (e) => e.type === 'policy-loaded');
    c.proc.kill('SIGHUP');
    await next;
    assert.equal((await curl(c.url, `http://127.0.0.1:${plain.port}/d`)).status, 200);
  });

  test('a missing policy at start denies everything and says why; --health; SIGTERM', async () => {
    const file = path.join(tmpDir, 'does-not-exist-yet.yaml');
    const c = await spawnProxy(file);
    children.push(c);
    const err = (await c.waitEvent((e) => e.type === 'policy-error')) as { error: string; keptPrevious: boolean; message: string };
    assert.equal(err.error, 'missing');
    assert.equal(err.keptPrevious, false);
    const r = await curl(c.url, `http://127.0.0.1:${plain.port}/`);
    assert.equal(r.status, 403);
    assert.equal(r.headers['x-caged-agent-block'], 'policy-invalid');
    assert.match(r.body, /does-not-exist-yet\.yaml/);

    const health = spawnSync(process.execPath, [proxyJs, '--health', '--listen', `127.0.0.1:${c.port}`], { encoding: 'utf8' });
    assert.equal(health.status, 0, health.stderr);
    assert.equal(JSON.parse(health.stdout).policyValid, false);

    fs.writeFileSync(file, `version: 1\nallow:\n  - host: 127.0.0.1:${plain.port}\n`);
    const next = nextEvent(c, (e) => e.type === 'policy-loaded');
    c.proc.kill('SIGHUP');
    await next;
    assert.equal((await curl(c.url, `http://127.0.0.1:${plain.port}/`)).status, 200);

    const code = await stop(c);
    assert.equal(code, 0);
    assert.ok(c.events.some((e) => e.type === 'shutdown'));
    const down = spawnSync(process.execPath, [proxyJs, '--health', '--listen', `127.0.0.1:${c.port}`], { encoding: 'utf8' });
    assert.equal(down.status, 1);
  });

  test('an intercepted keep-alive request costs the proxy one read and one write on each leg', async () => {
    // The proxy's main efficiency property, checked without timing anything: /proc/PID/io counts the
    // read and write system calls of the process. Per request the proxy must read it from the client, write
    // it upstream, read the response and write it back; event lines are batched (one write per flush), so
    // they add a fraction. A per-request timer, log write or split write would show up here.
    const { c, conns, run } = await keepAliveSessions('syscall', 8);
    const io = () => {
      const t = fs.readFileSync(`/proc/${c.proc.pid}/io`, 'utf8');
      return { r: Number(/syscr: (\d+)/.exec(t)![1]), w: Number(/syscw: (\d+)/.exec(t)![1]) };
    };
    await run(20); // connections to the upstream opened and warm
    const perConn = 250;
    const a = io();
    const t0 = performance.now();
    await run(perConn);
    const ms = performance.now() - t0;
    const b = io();
    for (const s of conns) s.destroy();
    const n = perConn * conns.length;
    const reads = b.r - a.r;
    const writes = b.w - a.w;
    // Event lines: at most one write per 5 ms flush interval, whatever the machine's speed.
    const flushes = Math.ceil(ms / 5) + 2;
    const what = `${n} requests in ${ms.toFixed(0)} ms: ${(reads / n).toFixed(3)} reads and ${(writes / n).toFixed(3)} writes per request`;
    assert.ok(reads >= 1.95 * n && reads <= 2.05 * n, what);
    assert.ok(writes >= 1.95 * n && writes <= 2.05 * n + flushes, `${what} (${flushes} event flushes allowed)`);
  });

  test('busy-polling (on by default; here with a wider window) stops when the traffic does', async () => {
    const { c, conns, run } = await keepAliveSessions('busy-poll', 4, ['--busy-poll-us', '1000']);
    await run(100);
    // Idle (connections still open): the process must go back to sleeping. A poller that never stopped
    // would burn the whole second.
    const cpuMs = () => {
      const stat = fs.readFileSync(`/proc/${c.proc.pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(f[11]) + Number(f[12])) * 10; // utime + stime, in clock ticks of 10 ms
    };
    await new Promise((r) => setTimeout(r, 100));
    const before = cpuMs();
    await new Promise((r) => setTimeout(r, 1000));
    const idle = cpuMs() - before;
    for (const s of conns) s.destroy();
    assert.ok(idle <= 60, `proxy CPU over one idle second: ${idle} ms`);
  });

  test('100 MB upload and download stream through an intercepted session with bounded memory', async () => {
    const file = path.join(tmpDir, 'big-policy.yaml');
    fs.writeFileSync(file, `version: 1\nallow:\n  - host: 127.0.0.1:${secure.port}\n`);
    const c = await spawnProxy(file);
    children.push(c);
    const size = 100 * 1024 * 1024;
    // Upload: curl reads stdin (fed by us) and PUTs it, chunked, through the intercepted TLS session.
    const up = await new Promise<{ status: number; body: string; err: string }>((resolve) => {
      const child = spawn('curl', ['-s', '-S', '--max-time', '60', '--proxy', c.url, '--cacert', cage().certFile, '-T', '-', '-w', '\n%{http_code}', `https://127.0.0.1:${secure.port}/upload`]);
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (err += d));
      child.on('close', () => {
        const nl = out.lastIndexOf('\n');
        resolve({ status: Number(out.slice(nl + 1)), body: out.slice(0, nl), err });
      });
      const chunk = Buffer.alloc(1024 * 1024, 0x42);
      let sent = 0;
      const pump = () => {
        while (sent < size) {
          sent += chunk.length;
          if (!child.stdin.write(chunk)) return void child.stdin.once('drain', pump);
        }
        child.stdin.end();
      };
      pump();
    });
    assert.equal(up.status, 200, up.err);
    assert.equal((JSON.parse(up.body) as EchoReply).bodyBytes, size);

    // (async: the upstream server lives in this process, so spawnSync would deadlock)
    const down = await new Promise<{ stdout: string; stderr: string }>((resolve) => {
      execFile('curl', ['-s', '-S', '--max-time', '60', '--proxy', c.url, '--cacert', cage().certFile, '-o', '/dev/null', '-w', '%{http_code} %{size_download}', `https://127.0.0.1:${secure.port}/download/${size}`], (_e, stdout, stderr) => resolve({ stdout, stderr }));
    });
    assert.equal(down.stdout, `200 ${size}`, down.stderr);

    // Peak resident memory of the proxy process over its whole life: far below the 100 MB moved.
    const status = fs.readFileSync(`/proc/${c.proc.pid}/status`, 'utf8');
    const hwmKb = Number(/VmHWM:\s+(\d+)/.exec(status)![1]);
    assert.ok(hwmKb < 130 * 1024, `peak RSS ${Math.round(hwmKb / 1024)} MB`);
    const events = c.events.filter((e) => e.type === 'allow');
    assert.equal(events.length, 2);
  });
});
