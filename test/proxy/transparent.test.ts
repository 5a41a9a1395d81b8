// Transparent capture (transparent.ts, dns.ts) with real sockets: a client that ignores proxy settings and
// connects straight to the proxy's address gets the same policy, interception, 403 and events as one that uses
// the proxy; the cage's DNS answers every name with the proxy's own address and nothing else.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as dgram from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import * as net from 'node:net';
import * as tls from 'node:tls';
import * as packet from 'dns-packet';
import { dnsAnswer, DNS_TTL } from '../../src/proxy/dns';
import type { DecisionEvent } from '../../src/policy/events';
import { cage, startTestProxy, startUpstream, web, type TestProxy, type Upstream } from './helpers';

let upTls: Upstream;
let upHttp: Upstream;
let proxy: TestProxy;
let T: number; // the proxy's transparent TLS port
let H: number; // ... and HTTP port
let D: number; // ... and DNS port

before(async () => {
  upTls = await startUpstream(true);
  upHttp = await startUpstream(false);
  proxy = await startTestProxy(
    `version: 1
allow:
  - host: api.test:${upTls.port}
    private: true
  - host: api.test:${upHttp.port}
    private: true
  - host: tunnel.test:${upTls.port}
    intercept: false
    private: true
`,
    // The proxy's own address is 127.0.0.2, on the upstreams' ports (a captured connection is for the port it came to).
    { transparent: { host: '127.0.0.2', tlsPort: upTls.port, httpPort: upHttp.port, dns: [{ host: '127.0.0.2', port: 0 }] } },
  );
  T = proxy.transparent!.tlsPort;
  H = proxy.transparent!.httpPort;
  D = proxy.transparent!.dns[0].port;
});

after(async () => {
  await proxy.close(500);
  await upTls.close();
  await upHttp.close();
});

/** curl without any proxy, its names pinned to the proxy's address (as the cage's DNS answers them). */
function directCurl(url: string, args: string[] = []): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '-i', '--noproxy', '*', '--max-time', '10', '--cacert', cage().certFile, ...args, url], { encoding: 'latin1' }, (e, out, err) =>
      resolve({ code: e ? Number((e as { code?: number }).code ?? 1) : 0, out, err }),
    );
  });
}

async function decisionFor(host: string, pred: (e: DecisionEvent) => boolean = () => true): Promise<DecisionEvent> {
  return (await proxy.waitEvent((e) => (e.type === 'allow' || e.type === 'block') && e.host === host && pred(e as DecisionEvent))) as DecisionEvent;
}

describe('transparent TLS (routed by SNI)', () => {
  test('an allowed host answers through interception, with the cage certificate, and an allow event', async () => {
    const r = await directCurl(`https://api.test:${T}/hello?q=1`, ['--resolve', `api.test:${T}:127.0.0.2`]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^HTTP\/1\.1 200/);
    const body = JSON.parse(r.out.slice(r.out.indexOf('\r\n\r\n') + 4));
    assert.equal(body.url, '/hello?q=1');
    assert.equal(body.secure, true);
    const e = await decisionFor('api.test', (x) => x.path === '/hello');
    assert.equal(e.type, 'allow');
    assert.equal(e.port, upTls.port);
    assert.equal(e.method, 'GET');
    assert.equal(e.ruleKey, `allow api.test:${upTls.port} * *`);
    assert.equal(e.via, 'transparent', 'the event says how the request arrived');
  });

  test('a host with no rule gets the 403 with its reason inside TLS, and a block event with method and path', async () => {
    const r = await directCurl(`https://other.test:${T}/secret/path`, ['--resolve', `other.test:${T}:127.0.0.2`, '-X', 'POST', '-d', 'x=1']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^HTTP\/1\.1 403/);
    assert.match(r.out, /^x-caged-agent-block: no-matching-rule/im);
    const e = await decisionFor('other.test');
    assert.equal(e.type, 'block');
    assert.equal(e.reason, 'no-matching-rule');
    assert.equal(e.method, 'POST');
    assert.equal(e.path, '/secret/path');
    assert.equal(e.via, 'transparent');
    // The same request through the proxy settings carries no via.
    const p = await directCurl(`https://other.test:${T}/secret/proxied`, ['--proxy', proxy.url, '--noproxy', '']);
    assert.match(p.out, /HTTP\/1\.1 403/);
    const pe = await decisionFor('other.test', (x) => x.path === '/secret/proxied');
    assert.equal(pe.via, undefined);
  });

  test('an intercept: false host is tunnelled: the client sees the real server certificate', async () => {
    const r = await directCurl(`https://tunnel.test:${T}/t`, ['--resolve', `tunnel.test:${T}:127.0.0.2`, '--cacert', web().certFile]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^HTTP\/1\.1 200/);
    const e = await decisionFor('tunnel.test');
    assert.equal(e.type, 'allow');
    assert.equal(e.method, 'CONNECT');
    assert.equal(e.via, 'transparent', 'a tunnel too');
  });

  test('a ClientHello without a server name is refused: the connection closes and a block event says why', async () => {
    const before = proxy.decisions().length;
    await new Promise<void>((resolve) => {
      const s = tls.connect({ host: '127.0.0.2', port: T, ca: cage().certPem, rejectUnauthorized: false });
      s.on('error', () => resolve());
      s.on('close', () => resolve());
      s.on('secureConnect', () => assert.fail('a session without SNI must not be served'));
    });
    const e = await proxy.waitEvent((x) => x.type === 'block' && proxy.decisions().indexOf(x as DecisionEvent) >= before && (x as DecisionEvent).detail === 'no-sni');
    assert.equal((e as DecisionEvent).reason, 'sni-mismatch');
    assert.equal((e as DecisionEvent).host, '127.0.0.2');
    assert.equal((e as DecisionEvent).via, 'transparent');
  });

  test('bytes that are not TLS are refused with an event', async () => {
    await new Promise<void>((resolve) => {
      const s = net.connect(T, '127.0.0.2', () => s.write('GET / HTTP/1.1\r\nHost: api.test\r\n\r\n'));
      s.on('data', () => assert.fail('nothing is answered'));
      s.on('error', () => resolve());
      s.on('close', () => resolve());
    });
    await proxy.waitEvent((x) => x.type === 'block' && (x as DecisionEvent).detail === 'not-tls' && (x as DecisionEvent).port === upTls.port);
  });
});

describe('transparent HTTP (routed by Host)', () => {
  test('an allowed host answers, and each request on the connection is decided by its own Host', async () => {
    const r = await directCurl(`http://api.test:${H}/plain`, ['--resolve', `api.test:${H}:127.0.0.2`]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^HTTP\/1\.1 200/);
    const e = await decisionFor('api.test', (x) => x.path === '/plain');
    assert.equal(e.type, 'allow');
    const b = await directCurl(`http://other.test:${H}/nope`, ['--resolve', `other.test:${H}:127.0.0.2`]);
    assert.match(b.out, /^HTTP\/1\.1 403/);
    assert.match(b.out, /^x-caged-agent-block: no-matching-rule/im);
    const be = await decisionFor('other.test', (x) => x.path === '/nope');
    assert.equal(be.type, 'block');
    assert.deepEqual([e.via, be.via], ['transparent', 'transparent'], 'port 80 too');
  });

  test('keep-alive: a second request naming another host on the same connection is decided for that host', async () => {
    const got = await new Promise<string>((resolve) => {
      let buf = '';
      const s = net.connect(H, '127.0.0.2', () => {
        s.write(`GET /one HTTP/1.1\r\nHost: api.test:${upHttp.port}\r\n\r\n`);
        s.write(`GET /two HTTP/1.1\r\nHost: other.test:${upHttp.port}\r\nConnection: close\r\n\r\n`);
      });
      s.on('data', (d) => (buf += d.toString('latin1')));
      s.on('close', () => resolve(buf));
    });
    assert.match(got, /^HTTP\/1\.1 200/);
    assert.match(got, /HTTP\/1\.1 403[\s\S]*no-matching-rule/);
    await decisionFor('other.test', (x) => x.path === '/two' && x.type === 'block');
  });

  test('a request without a Host header, or for another port, is not forwarded', async () => {
    for (const head of ['GET / HTTP/1.0\r\n\r\n', `GET / HTTP/1.1\r\nHost: api.test:1\r\n\r\n`]) {
      const got = await new Promise<string>((resolve) => {
        let buf = '';
        const s = net.connect(H, '127.0.0.2', () => s.write(head));
        s.on('data', (d) => (buf += d.toString('latin1')));
        s.on('close', () => resolve(buf));
        s.on('error', () => resolve(buf));
      });
      assert.match(got, /^HTTP\/1\.1 400/, head);
    }
  });
});

describe('the cage DNS', () => {
  const resolver = () => {
    const r = new Resolver({ timeout: 2000, tries: 1 });
    r.setServers([`127.0.0.2:${D}`]);
    return r;
  };

  test('every name resolves to the proxy itself, allowed or not; nothing else is answered', async () => {
    for (const name of ['api.test', 'not-in-any-rule.example', 'x.y.z.example.org']) {
      assert.deepEqual(await resolver().resolve4(name, { ttl: true }), [{ address: '127.0.0.2', ttl: DNS_TTL }], name);
    }
    await assert.rejects(resolver().resolve6('api.test'), (e: NodeJS.ErrnoException) => e.code === 'ENODATA');
    await assert.rejects(resolver().resolveTxt('api.test'), (e: NodeJS.ErrnoException) => e.code === 'ENODATA');
    await assert.rejects(resolver().resolveMx('api.test'), (e: NodeJS.ErrnoException) => e.code === 'ENODATA');
  });

  test('a name carrying data gets the same answer: nothing the agent chose comes back but the question', () => {
    const q = packet.encode({ type: 'query', id: 7, flags: packet.RECURSION_DESIRED, questions: [{ type: 'TXT', name: 'c2VjcmV0.exfil.example' }] });
    const a = packet.decode(dnsAnswer(q, '10.9.8.7')!.reply);
    assert.equal(a.id, 7);
    assert.deepEqual(a.answers, []);
    const qa = packet.encode({ type: 'query', id: 8, questions: [{ type: 'A', name: 'c2VjcmV0.exfil.example' }] });
    const aa = packet.decode(dnsAnswer(qa, '10.9.8.7')!.reply);
    assert.deepEqual(aa.answers?.map((x) => (x as { data: unknown }).data), ['10.9.8.7']);
    assert.equal((aa as packet.DecodedPacket).flag_ra, false, 'no recursion offered');
  });

  test('malformed and odd messages: no answer, FORMERR or NOTIMP; never a crash', () => {
    assert.equal(dnsAnswer(Buffer.from([1, 2, 3]), '10.0.0.1'), undefined);
    const resp = packet.encode({ type: 'response', id: 1, questions: [{ type: 'A', name: 'a.example' }] });
    assert.equal(dnsAnswer(resp, '10.0.0.1'), undefined, 'a response is not answered (no reflection loops)');
    const two = packet.encode({ type: 'query', id: 2, questions: [{ type: 'A', name: 'a.example' }, { type: 'A', name: 'b.example' }] });
    assert.equal((packet.decode(dnsAnswer(two, '10.0.0.1')!.reply) as { rcode?: string }).rcode, 'FORMERR');
    const notify = Buffer.from(packet.encode({ type: 'query', id: 3, questions: [{ type: 'A', name: 'a.example' }] }));
    notify[2] |= 4 << 3; // opcode NOTIFY
    assert.equal((packet.decode(dnsAnswer(notify, '10.0.0.1')!.reply) as { rcode?: string }).rcode, 'NOTIMP');
    for (let i = 0; i < 500; i++) {
      const junk = Buffer.from(Array.from({ length: 12 + (i % 40) }, (_, k) => (i * 31 + k * 17) & 0xff));
      dnsAnswer(junk, '10.0.0.1'); // must not throw
    }
  });

  test('UDP junk gets no reply and the responder keeps answering', async () => {
    const u = dgram.createSocket('udp4');
    let replies = 0;
    u.on('message', () => replies++);
    await new Promise<void>((r) => u.send(Buffer.from('not dns at all'), D, '127.0.0.2', () => r()));
    await new Promise((r) => setTimeout(r, 200));
    u.close();
    assert.equal(replies, 0);
    assert.deepEqual(await resolver().resolve4('still.example'), ['127.0.0.2']);
  });

  test('DNS over TCP: length-prefixed queries on one connection are answered in turn', async () => {
    const msgs = ['a.example', 'b.example'].map((name, i) => {
      const m = packet.encode({ type: 'query', id: 100 + i, questions: [{ type: 'A', name }] });
      const out = Buffer.alloc(2 + m.length);
      out.writeUInt16BE(m.length, 0);
      m.copy(out, 2);
      return out;
    });
    const got = await new Promise<Buffer>((resolve, reject) => {
      let buf = Buffer.alloc(0);
      const s = net.connect(D, '127.0.0.2', () => s.write(Buffer.concat(msgs)));
      s.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        const l1 = buf.length >= 2 ? buf.readUInt16BE(0) : -1;
        if (l1 >= 0 && buf.length >= 2 + l1 + 2 && buf.length >= 4 + l1 + buf.readUInt16BE(2 + l1)) {
          s.destroy();
          resolve(buf);
        }
      });
      s.on('error', reject);
    });
    const l1 = got.readUInt16BE(0);
    const a1 = packet.decode(got.subarray(2, 2 + l1));
    const a2 = packet.decode(got.subarray(4 + l1));
    assert.deepEqual([a1.id, a2.id], [100, 101]);
    assert.deepEqual(a2.answers?.map((x) => (x as { data: unknown }).data), ['127.0.0.2']);
  });
});
