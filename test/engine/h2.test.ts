// HTTP/2 in a real cage, tried as a user would from inside the agent: curl --http2 through the proxy variables
// and with --noproxy '*' (the transparent path), and a gRPC-shaped exchange from a Node script (application/grpc,
// a bidirectional stream whose messages are echoed one by one, a message larger than the default flow-control
// window, grpc-status trailers). The "outside" is an h2 server of this file's own on the egress network
// (test/shared/upstream.ts, h2: true). Each stream gets its own decision: an allowed path answers 200, a path no
// rule allows answers 403 with its reason, and each stream has its own event with method and path.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type Docker from 'dockerode';
import { CageEngine, type CageInfo, type ProxyEvent } from '../../src/engine';
import { DEV_IMAGE, makeWorkspace, NODE_IMAGE, prepare, PROXY_BUNDLE, startUpstream, tearDownCage, tmpDir, type Upstream, waitForEvent } from './setup';

// Host names only this file puts on the shared egress network (see test/shared/upstream.ts).
const H2 = 'h2.h2-e2e.test';
const OTHER = 'other.h2-e2e.test';

const POLICY = `version: 1
allow:
  - host: ${H2}
    private: true   # the test upstream is on a Docker bridge
    paths: ["/ok/**", "/h2e.Echo/**"]
`;

// A gRPC-shaped client, as a Node agent would run one (node:http2 has no proxy support: it sends CONNECT to
// HTTPS_PROXY itself in mode "proxy", as grpc-js does; mode "direct" dials host:443 and the cage's DNS sends it to
// the proxy). POST /h2e.Echo/Chat, application/grpc, te: trailers; three length-prefixed messages, each sent only
// after the previous one came back (a bidirectional stream, not a buffered body), the second 300 KiB (more than
// the 64 KiB default window: flow control on both legs). Prints one JSON line.
const GRPC_CLIENT = `
const http2 = require('http2'), net = require('net'), tls = require('tls');
const [host, mode] = process.argv.slice(1);
const out = (o) => { console.log(JSON.stringify(o)); process.exit(0); };
setTimeout(() => out({ error: 'no answer within 15 s' }), 15000);
const tunnel = () => new Promise((resolve, reject) => {
  const u = new URL(process.env.HTTPS_PROXY);
  const s = net.connect(Number(u.port), u.hostname, () => s.write('CONNECT ' + host + ':443 HTTP/1.1\\r\\nHost: ' + host + ':443\\r\\n\\r\\n'));
  let acc = '';
  const onData = (d) => {
    acc += d.toString('latin1');
    const end = acc.indexOf('\\r\\n\\r\\n');
    if (end < 0) return;
    s.off('data', onData);
    if (!/^HTTP\\/1\\.1 200/.test(acc)) return reject(new Error('CONNECT: ' + acc.split('\\r\\n')[0]));
    resolve(s);
  };
  s.on('data', onData);
  s.on('error', reject);
});
const frame = (b) => { const h = Buffer.alloc(5); h.writeUInt32BE(b.length, 1); return Buffer.concat([h, b]); };
(async () => {
  const opts = { servername: host, ALPNProtocols: ['h2', 'http/1.1'] };
  const sock = mode === 'proxy' ? tls.connect({ ...opts, socket: await tunnel() }) : tls.connect({ ...opts, host, port: 443 });
  await new Promise((r, j) => { sock.once('secureConnect', r); sock.once('error', j); });
  if (sock.alpnProtocol !== 'h2') out({ alpn: sock.alpnProtocol });
  const session = http2.connect('https://' + host, { createConnection: () => sock });
  session.on('error', (e) => out({ alpn: 'h2', error: e.message }));
  const req = session.request({ ':method': 'POST', ':path': '/h2e.Echo/Chat', 'content-type': 'application/grpc', te: 'trailers' });
  let headers = {}, trailers = {}, buf = Buffer.alloc(0), waiting;
  req.on('response', (h) => (headers = h));
  req.on('trailers', (t) => (trailers = t));
  req.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 5 && buf.length >= 5 + buf.readUInt32BE(1)) {
      const n = buf.readUInt32BE(1);
      const m = buf.subarray(5, 5 + n);
      buf = buf.subarray(5 + n);
      waiting(m);
    }
  });
  req.on('error', (e) => out({ alpn: 'h2', error: e.message, headers }));
  const echoes = [];
  for (const m of [Buffer.from('ping'), Buffer.alloc(300 * 1024, 'x'), Buffer.from('pong')]) {
    const back = new Promise((r) => (waiting = r));
    req.write(frame(m));
    const got = await back;
    echoes.push(got.length <= 8 ? got.toString() : got.length + ' bytes, intact: ' + got.equals(m));
  }
  req.end();
  await new Promise((r) => req.on('end', r));
  out({ alpn: 'h2', status: headers[':status'], contentType: headers['content-type'], echoes, trailers: { 'grpc-status': trailers['grpc-status'], 'grpc-message': trailers['grpc-message'] } });
})().catch((e) => out({ error: e.message }));
`;

describe('HTTP/2 in a real cage', { timeout: 240_000 }, () => {
  let engine: CageEngine;
  let docker: Docker;
  let stateDir: string;
  let ws: string;
  let upstream: Upstream;
  let cage: CageInfo;
  const events: ProxyEvent[] = [];
  let stopEvents: (() => void) | undefined;

  const exec = (cmd: string[]) => engine.exec(cage.id, cmd);
  /** Decision events for `host` and `path`, in the order they arrived. */
  const decisions = (host: string, path: string) => events.filter((e) => (e.type === 'allow' || e.type === 'block') && e.host === host && e.path === path);

  before(async () => {
    prepare();
    stateDir = tmpDir('caged-state-h2-');
    ws = makeWorkspace('caged-h2-ws-', POLICY);
    // The dev image: the Debian agent image plus node, so curl (with nghttp2) and a Node client run in one cage.
    engine = new CageEngine({ stateDir, proxyBundlePath: PROXY_BUNDLE, proxyBaseImage: NODE_IMAGE, agentImage: DEV_IMAGE });
    docker = engine.docker;
    await engine.down(engine.cageIdFor(ws));
    upstream = await startUpstream(docker, engine, { name: 'caged-agent-test-h2-upstream', hosts: [H2, OTHER], h2: true });
    cage = await engine.up({ workspace: ws, upstreamCaPem: upstream.caPem });
    const sub = await engine.events(cage.id, (e) => events.push(e));
    stopEvents = () => sub.stop();
  });

  after(async () => {
    stopEvents?.();
    await tearDownCage(engine, ws, stateDir, upstream?.stop);
  });

  it('the agent\'s curl has HTTP/2 (nghttp2)', async () => {
    const r = await exec(['curl', '-V']);
    assert.match(r.stdout, /^Features:.* HTTP2/m);
  });

  for (const [how, flags] of [
    ['through the proxy variables', ''],
    ["with --noproxy '*' (transparent)", "--noproxy '*'"],
  ] as const) {
    it(`curl --http2 ${how}: HTTP/2 on both legs; on one connection an allowed path answers 200 and a path no rule allows 403 with its reason, each stream with its own event`, async () => {
      const tag = flags ? 'transparent' : 'proxied';
      const ok = `/ok/${tag}`;
      const secret = `/secret/${tag}`;
      const r = await exec([
        'bash', '-c',
        `curl --http2 -sS --max-time 15 ${flags} -w '%{http_version} %{http_code} %{num_connects}\\n' ` +
          `-o /tmp/h2-1 https://${H2}${ok}?q=1 -o /tmp/h2-2 https://${H2}${secret} -D /tmp/h2-2.head -o /tmp/h2-3 https://${H2}${ok}/again; ` +
          'echo ---; cat /tmp/h2-1; echo ---; cat /tmp/h2-2; echo ---; cat /tmp/h2-2.head',
      ]);
      assert.equal(r.exitCode, 0, r.stderr);
      const [status, first, blocked, head] = r.stdout.split('---\n');
      // Three streams on one connection (num_connects 1, then 0: reused), HTTP/2 to the agent.
      assert.deepEqual(status.trim().split('\n'), ['2 200 1', '2 403 0', '2 200 0'], r.stdout);
      assert.equal(first, `hello from ${H2} GET ${ok}?q=1 over HTTP/2.0\n`, 'the upstream got the request over HTTP/2 as well');
      assert.match(blocked, /^Reason: path-not-allowed$/m);
      assert.match(blocked, new RegExp(`GET https://${H2.replace(/\./g, '\\.')}${secret}`));
      assert.match(head, /^x-caged-agent-block: path-not-allowed/im);
      const allow = await waitForEvent(events, (e) => e.type === 'allow' && e.host === H2 && e.path === ok);
      const block = await waitForEvent(events, (e) => e.type === 'block' && e.host === H2 && e.path === secret);
      await waitForEvent(events, (e) => e.type === 'allow' && e.host === H2 && e.path === `${ok}/again`);
      assert.equal(allow.type === 'allow' && allow.method, 'GET');
      assert.equal(allow.type === 'allow' && allow.port, 443);
      assert.equal(block.type === 'block' && block.method, 'GET');
      assert.equal(block.type === 'block' && block.reason, 'path-not-allowed');
      assert.deepEqual([allow, block].map((e) => e.type === 'allow' || e.type === 'block' ? e.proto : ''), ['h2', 'h2'], 'the events say the streams were HTTP/2');
      assert.equal(decisions(H2, secret).length, 1, 'one event for the blocked stream');
    });
  }

  it('curl --http2 --parallel: concurrent streams on one connection, each decided on its own', async () => {
    const paths = [0, 1, 2, 3, 4, 5].map((i) => (i % 2 ? `/secret/par${i}` : `/ok/par${i}`));
    const r = await exec([
      'curl', '--http2', '--parallel', '--parallel-max', '10', '-sS', '--max-time', '15', '-w', '%{http_version} %{http_code} %{num_connects} %{url_effective}\\n',
      ...paths.flatMap((p) => ['-o', '/dev/null', `https://${H2}${p}`]),
    ]);
    assert.equal(r.exitCode, 0, r.stderr);
    const lines = r.stdout.trim().split('\n').map((l) => l.split(' '));
    assert.equal(lines.length, paths.length, r.stdout);
    for (const p of paths) {
      const l = lines.find((x) => x[3] === `https://${H2}${p}`);
      assert.ok(l, `${p} in ${r.stdout}`);
      assert.deepEqual(l.slice(0, 2), ['2', p.startsWith('/ok/') ? '200' : '403'], p);
    }
    assert.equal(lines.reduce((n, l) => n + Number(l[2]), 0), 1, `one connection for all streams: ${r.stdout}`);
    for (const p of paths) {
      const e = await waitForEvent(events, (x) => (x.type === 'allow' || x.type === 'block') && x.host === H2 && x.path === p);
      assert.equal(e.type, p.startsWith('/ok/') ? 'allow' : 'block', p);
      assert.equal(e.type !== 'allow' && e.type !== 'block' ? '' : e.method, 'GET');
      assert.equal(e.type !== 'allow' && e.type !== 'block' ? '' : e.proto, 'h2');
    }
  });

  it('curl --http2 to a host no rule names: 403 with the reason, and a block event', async () => {
    const r = await exec(['curl', '--http2', '-sS', '--max-time', '15', '-X', 'PUT', '-w', '\n%{http_version} %{http_code}', `https://${OTHER}/v1/thing`]);
    assert.match(r.stdout, /^Reason: no-matching-rule$/m);
    // The proxy never contacts a host no rule allows, so it cannot know whether that host speaks h2: which of
    // the agent's ALPN offers it takes there is its own choice; the 403 with the reason comes either way.
    assert.match(r.stdout, /\n(1\.1|2) 403$/);
    const e = await waitForEvent(events, (x) => x.type === 'block' && x.host === OTHER && x.path === '/v1/thing');
    assert.equal(e.type === 'block' && e.method, 'PUT');
  });

  for (const mode of ['proxy', 'direct'] as const) {
    it(`gRPC-shaped bidirectional stream from a Node client (${mode === 'proxy' ? 'CONNECT to HTTPS_PROXY' : 'no proxy settings'}): messages echoed one by one, flow control, grpc-status trailers`, async () => {
      const before = decisions(H2, '/h2e.Echo/Chat').length;
      const r = await exec(['node', '-e', GRPC_CLIENT, H2, mode]);
      assert.equal(r.exitCode, 0, r.stderr);
      const got = JSON.parse(r.stdout.trim().split('\n').pop()!);
      assert.deepEqual(got, {
        alpn: 'h2',
        status: 200,
        contentType: 'application/grpc',
        echoes: ['ping', `${300 * 1024} bytes, intact: true`, 'pong'],
        trailers: { 'grpc-status': '0', 'grpc-message': `echoed ${3 * 5 + 4 + 300 * 1024 + 4} bytes` },
      });
      const e = await waitForEvent(events, (x) => x.type === 'allow' && x.host === H2 && x.path === '/h2e.Echo/Chat' && decisions(H2, '/h2e.Echo/Chat').indexOf(x) >= before);
      assert.equal(e.type === 'allow' && e.method, 'POST');
      assert.equal(e.type === 'allow' && e.proto, 'h2');
    });
  }
});
