// The decision-event contract on real sockets: every decision event names its rule as data (`ruleKey`, the
// entry's entryKey()), which finds the rule in a newer parse of the file where "allow[N]" no longer does; and
// every request (or tunnel) that reached a decision gets exactly one event (record.ts). The issue-15 cases of
// aborted requests are in attacks-framing.test.ts (F7).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { Duplex } from 'node:stream';
import * as tls from 'node:tls';
import { entryKey, parsePolicy, ruleLabel } from '../../src/policy';
import type { DecisionEvent } from '../../src/policy/events';
import { askOn, connectTunnel, curl, startTestProxy, startUpstream, testResolver, tlsThroughProxy, type TestProxy, type Upstream } from './helpers';

let up: Upstream;
let proxy: TestProxy;
let S: number;
let policyText: string;

before(async () => {
  up = await startUpstream(true);
  S = up.port;
  policyText = `version: 1
allow:
  - host: other.test:${S}
    private: true
  - host: api.test:${S}
    methods: [GET]
    paths: ["/v1/**"]
    private: true
deny:
  - host: api.test:${S}
    paths: ["/v1/secret/**"]
`;
  proxy = await startTestProxy(policyText);
});

after(async () => {
  await proxy.close(500);
  await up.close();
});

async function eventFor(path: string): Promise<DecisionEvent> {
  return (await proxy.waitEvent((e) => (e.type === 'allow' || e.type === 'block') && (e as DecisionEvent).path === path)) as DecisionEvent;
}

describe('ruleKey: the rule as data', () => {
  test('allow and block events carry the entryKey of the rule that decided; no rule, no key', async () => {
    const parsed = parsePolicy(policyText).policy!;
    await curl(proxy.url, `https://api.test:${S}/v1/ok`);
    const allow = await eventFor('/v1/ok');
    assert.equal(allow.rule, 'allow[1]');
    assert.equal(allow.ruleKey, entryKey(parsed.allow[1]));
    assert.equal(allow.ruleKey, `allow api.test:${S} GET /v1/**`);

    await curl(proxy.url, `https://api.test:${S}/v1/secret/x`);
    const deny = await eventFor('/v1/secret/x');
    assert.deepEqual([deny.type, deny.rule, deny.ruleKey], ['block', 'deny[0]', entryKey(parsed.deny[0])]);

    await curl(proxy.url, `https://nowhere.test:${S}/none`);
    const none = (await proxy.waitEvent((e) => e.type === 'block' && (e as DecisionEvent).host === 'nowhere.test')) as DecisionEvent;
    assert.equal(none.rule, null);
    assert.equal('ruleKey' in none, false);
  });

  test('in a newer parse where entries moved, the key finds the rule and the label does not', async () => {
    await curl(proxy.url, `https://api.test:${S}/v1/moved`);
    const e = await eventFor('/v1/moved');
    // The user since added an entry at the top and gave the rule a comment and "private: true" elsewhere.
    const newer = parsePolicy(policyText.replace('allow:\n', 'allow:\n  - host: new.test  # added later\n')).policy!;
    const byKey = [...newer.allow, ...newer.deny].find((r) => entryKey(r) === e.ruleKey);
    assert.ok(byKey);
    assert.deepEqual([ruleLabel(byKey), byKey.host, byKey.paths], ['allow[2]', 'api.test', ['/v1/**']]);
    assert.notEqual(newer.allow[1].host, 'api.test', 'the old label now names another entry');
  });
});

/** A proxy tunnelling tunnel.test whose name resolution takes 300 ms: time for a client to act meanwhile. */
function slowTunnelProxy(): Promise<TestProxy> {
  return startTestProxy(`version: 1\nallow:\n  - host: tunnel.test:${S}\n    intercept: false\n    private: true\n`, {
    resolver: async (h) => {
      await new Promise((r) => setTimeout(r, 300));
      return testResolver(h);
    },
  });
}

describe('exactly one event per request that reached a decision', () => {
  test('a tunnel whose client leaves before its ClientHello gets one allow event (client-aborted), at once', async () => {
    // The client is gone before the tunnel's upstream connection exists.
    const slow = await slowTunnelProxy();
    try {
      const leave = async (how: 'end' | 'reset', afterMs: number) => {
        const sock = net.connect(slow.address.port, '127.0.0.1');
        sock.on('error', () => undefined);
        await new Promise<void>((r) => sock.once('connect', () => r()));
        sock.write(`CONNECT tunnel.test:${S} HTTP/1.1\r\nHost: tunnel.test:${S}\r\n\r\n`);
        await new Promise((r) => setTimeout(r, afterMs));
        if (how === 'end') sock.end();
        else sock.resetAndDestroy();
      };
      const t0 = Date.now();
      await leave('end', 50); // during the upstream connect
      await leave('reset', 50);
      await leave('end', 600); // after the 200
      await new Promise((r) => setTimeout(r, 1000));
      const es = slow.decisions();
      assert.deepEqual(
        es.map((e) => [e.type, e.method, e.reason, e.rule, e.status, e.detail]),
        Array.from({ length: 3 }, () => ['allow', 'CONNECT', 'allowed', 'allow[0]', undefined, 'client-aborted']),
      );
      assert.ok(Date.now() - t0 < 5000, 'not after the 15 s handshake deadline');
    } finally {
      await slow.close(200);
    }
  });

  test('a ClientHello sent before the 200 arrived is kept while the tunnel connects', async () => {
    const slow = await slowTunnelProxy();
    try {
      const sock = net.connect(slow.address.port, '127.0.0.1');
      await new Promise<void>((r) => sock.once('connect', () => r()));
      sock.write(`CONNECT tunnel.test:${S} HTTP/1.1\r\nHost: tunnel.test:${S}\r\n\r\n`);
      await new Promise((r) => setTimeout(r, 50));
      // A real ClientHello, written while the proxy is still resolving (as a client that does not wait for the 200).
      const hello = await new Promise<Buffer>((resolve) => {
        const capture = new Duplex({
          read() {},
          write(chunk: Buffer, _enc, cb) {
            resolve(Buffer.from(chunk));
            cb();
          },
        });
        tls.connect({ socket: capture, servername: 'tunnel.test' }).on('error', () => undefined);
      });
      sock.write(hello);
      const e = (await slow.waitEvent((x) => x.type === 'allow' || x.type === 'block', 5000)) as DecisionEvent;
      sock.destroy();
      assert.deepEqual([e.type, e.reason, e.status], ['allow', 'allowed', 200]);
    } finally {
      await slow.close(200);
    }
  });

  test('a blocked CONNECT: one event per request inside it, none for the CONNECT itself', async () => {
    const s = await tlsThroughProxy(proxy.address.port, 'blocked.test', S);
    for (const p of ['/one', '/two']) assert.match(await askOn(s, `GET ${p} HTTP/1.1\r\nHost: blocked.test:${S}\r\n\r\n`), /^HTTP\/1\.1 403 /);
    await new Promise<void>((r) => {
      s.once('close', () => r());
      s.destroy();
    });
    await new Promise((r) => setTimeout(r, 100));
    const es = proxy.decisions().filter((e) => e.host === 'blocked.test');
    assert.deepEqual(es.map((e) => [e.method, e.path, e.reason]), [['GET', '/one', 'no-matching-rule'], ['GET', '/two', 'no-matching-rule']]);
  });

  test('a blocked CONNECT that never carries a request gets one CONNECT event', async () => {
    const t = await connectTunnel(proxy.address.port, `silent.test:${S}`);
    await new Promise<void>((r) => {
      t.socket.once('close', () => r());
      t.socket.end();
    });
    const e = (await proxy.waitEvent((x) => (x as DecisionEvent).host === 'silent.test')) as DecisionEvent;
    assert.deepEqual([e.type, e.method, e.path, e.reason, e.status], ['block', 'CONNECT', '', 'no-matching-rule', 403]);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(proxy.decisions().filter((x) => x.host === 'silent.test').length, 1);
  });
});
