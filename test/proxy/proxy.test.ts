// The proxy in-process on 127.0.0.1 with real upstream servers, curl and Node clients.
// Upstreams live on 127.0.0.1, so every rule that reaches them opts in visibly with `private: true`
// (or names the IP literal); separate tests prove that without the opt-in they are refused.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { execFile } from 'node:child_process';
import {
  cage,
  curl,
  nodeHttp,
  nodeHttps,
  startTestProxy,
  startUpstream,
  tlsThroughProxy,
  type EchoReply,
  type TestProxy,
  type Upstream,
} from './helpers';

let plain: Upstream;
let secure: Upstream;
let proxy: TestProxy;
let H: number; // plain upstream port
let S: number; // TLS upstream port

function policy(): string {
  return `version: 1
allow:
  - host: api.test:${H}
    private: true                   # the test upstream lives on 127.0.0.1
  - host: api.test:${S}
    private: true
  - host: other.test:${S}
    private: true
    methods: [GET]
    paths: ["/docs/**"]
  - host: localhost:${H}            # no private: true -> must be refused (resolves to 127.0.0.1)
  - host: 127.0.0.1:${H}            # an IP-literal rule names the literal: that is the opt-in
  - host: auth.test:${S}
    private: true
    auth: { scheme: Bearer, secret: test_token }
  - host: auth.test:${H}
    private: true
    auth: { scheme: token, secret: not_set_anywhere }
  - host: tunnel.test:${S}
    private: true
    auth: { scheme: token, secret: not_set_anywhere }
  - host: dlp.test:${S}
    private: true
  - host: public.test:${S}          # resolves to a public address in the test resolver
deny:
  - host: api.test:${S}
    paths: ["/admin/**"]
`;
}

before(async () => {
  plain = await startUpstream(false);
  secure = await startUpstream(true);
  H = plain.port;
  S = secure.port;
  proxy = await startTestProxy(policy(), { env: { CAGED_SECRET_TEST_TOKEN: 'ghp_abcdefghijklmnopqrstuvwxyz0123456789' } });
});

after(async () => {
  await proxy.close(500);
  await plain.close();
  await secure.close();
});

describe('allowed traffic', () => {
  test('plain HTTP (absolute-form) with curl', async () => {
    const r = await curl(proxy.url, `http://api.test:${H}/hello?token=abc`);
    assert.equal(r.status, 200, r.stderr + r.body);
    const echo = JSON.parse(r.body) as EchoReply;
    assert.equal(echo.url, '/hello?token=abc');
    assert.equal(echo.headers.host, `api.test:${H}`);
    assert.equal(echo.headers['proxy-connection'], undefined);
    const e = proxy.lastDecision()!;
    assert.equal(e.type, 'allow');
    assert.equal(e.host, 'api.test');
    assert.equal(e.port, H);
    assert.equal(e.method, 'GET');
    assert.equal(e.path, '/hello', 'query string stripped from events');
    assert.equal(e.rule, 'allow[0]');
    assert.equal(e.status, 200);
    assert.ok(!JSON.stringify(proxy.events).includes('token=abc'));
  });

  test('HTTPS intercepted with curl: 200 and curl trusts the cage CA', async () => {
    const r = await curl(proxy.url, `https://api.test:${S}/v1/things`, ['-X', 'POST', '-d', 'x=1']);
    assert.equal(r.status, 200, r.stderr + r.body);
    const echo = JSON.parse(r.body) as EchoReply;
    assert.equal(echo.secure, true, 'the proxy re-encrypted to the TLS upstream');
    assert.equal(echo.method, 'POST');
    assert.equal(echo.bodyBytes, 3);
    const e = proxy.lastDecision()!;
    assert.deepEqual([e.type, e.method, e.path, e.rule, e.status], ['allow', 'POST', '/v1/things', 'allow[1]', 200]);
  });

  test('the served leaf chains to the cage CA (Node client)', async () => {
    const r = await nodeHttps(proxy.address.port, 'api.test', S, '/x');
    assert.equal(r.status, 200);
    const leaf = new crypto.X509Certificate(r.peer.raw);
    const ca = new crypto.X509Certificate(cage().certPem);
    assert.ok(leaf.checkIssued(ca));
    assert.ok(leaf.verify(ca.publicKey));
    assert.equal(leaf.checkHost('api.test'), 'api.test');
  });

  test('keep-alive: many requests over one intercepted connection', async () => {
    const urls = Array.from({ length: 5 }, (_, i) => `https://api.test:${S}/k${i}`);
    const r = await curl(proxy.url, urls[0], urls.slice(1).flatMap((u) => ['--next', '--proxy', proxy.url, '--cacert', cage().certFile, '-s', '-i', u]));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^$/);
    const count = proxy.decisions().filter((e) => e.path.startsWith('/k')).length;
    assert.equal(count, 5);
  });
});

describe('blocked traffic', () => {
  test('a host with no rule: 403 inside TLS with header and a body for the agent', async () => {
    const r = await curl(proxy.url, `https://nowhere.test:${S}/some/path?secret=1`);
    assert.equal(r.status, 403, r.stderr);
    assert.equal(r.headers['x-caged-agent-block'], 'no-matching-rule');
    assert.match(r.body, /blocked GET https:\/\/nowhere\.test:\d+\/some\/path/);
    assert.match(r.body, /No allow rule matches nowhere\.test/);
    assert.match(r.body, /allow it from the editor/);
    assert.doesNotMatch(r.body, /secret=1/);
    // One event for the request inside the tunnel, with its method and path (no query), none for the CONNECT.
    const es = proxy.decisions().filter((d) => d.host === 'nowhere.test');
    assert.deepEqual(es.map((e) => [e.type, e.method, e.path, e.reason, e.rule]), [['block', 'GET', '/some/path', 'no-matching-rule', null]]);
  });

  test('a blocked tunnel with no request inside is logged at CONNECT level', async () => {
    // curl without the cage CA rejects our certificate: no request is ever sent inside the tunnel.
    const code = await new Promise<number | null>((resolve) => {
      execFile('curl', ['-sS', '--max-time', '5', '--proxy', proxy.url, `https://norequest.test:${S}/x`], (err) => resolve(err ? ((err as { code?: number }).code ?? 1) : 0));
    });
    assert.notEqual(code, 0, 'curl rejects the certificate of a CA it was not told to trust');
    let e = proxy.decisions().find((d) => d.host === 'norequest.test');
    for (let i = 0; !e && i < 50; i++) {
      await new Promise((r) => setTimeout(r, 20));
      e = proxy.decisions().find((d) => d.host === 'norequest.test');
    }
    assert.ok(e, 'a block event for the tunnel');
    assert.deepEqual([e.type, e.method, e.path, e.reason], ['block', 'CONNECT', '', 'no-matching-rule']);
  });

  test('a plain-HTTP host with no rule', async () => {
    const r = await curl(proxy.url, `http://nowhere.test:${H}/`);
    assert.equal(r.status, 403);
    assert.equal(r.headers['x-caged-agent-block'], 'no-matching-rule');
  });

  test('path and method rules', async () => {
    const ok = await curl(proxy.url, `https://other.test:${S}/docs/a/b`);
    assert.equal(ok.status, 200);
    const badPath = await curl(proxy.url, `https://other.test:${S}/private/x`);
    assert.equal(badPath.status, 403);
    assert.equal(badPath.headers['x-caged-agent-block'], 'path-not-allowed');
    assert.match(badPath.body, /\/docs\/\*\*/);
    const badMethod = await curl(proxy.url, `https://other.test:${S}/docs/a`, ['-X', 'DELETE']);
    assert.equal(badMethod.status, 403);
    assert.equal(badMethod.headers['x-caged-agent-block'], 'method-not-allowed');
    // Dot-segment tricks do not escape the path rule.
    const tricky = await curl(proxy.url, `https://other.test:${S}/docs/%2e%2e/private`, ['--path-as-is']);
    assert.equal(tricky.status, 403);
    assert.equal(tricky.headers['x-caged-agent-block'], 'path-not-allowed');
  });

  test('deny beats allow', async () => {
    const r = await curl(proxy.url, `https://api.test:${S}/admin/users`);
    assert.equal(r.status, 403);
    assert.equal(r.headers['x-caged-agent-block'], 'denied-by-rule');
    assert.equal(proxy.lastDecision()!.rule, 'deny[0]');
    const fine = await curl(proxy.url, `https://api.test:${S}/public`);
    assert.equal(fine.status, 200);
  });

  test('IP literals need a rule that names them', async () => {
    const r = await curl(proxy.url, `http://127.0.0.2:${H}/`);
    assert.equal(r.status, 403);
    assert.equal(r.headers['x-caged-agent-block'], 'ip-literal');
    const ok = await curl(proxy.url, `http://127.0.0.1:${H}/ip`);
    assert.equal(ok.status, 200, 'the IP rule is the opt-in for a loopback literal');
  });

  test('a name resolving to a private address is refused without private: true', async () => {
    const r = await curl(proxy.url, `http://localhost:${H}/`);
    assert.equal(r.status, 403);
    assert.equal(r.headers['x-caged-agent-block'], 'private-address');
    assert.match(r.body, /loopback/);
    const e = proxy.lastDecision()!;
    assert.deepEqual([e.type, e.reason, e.detail], ['block', 'private-address', 'loopback']);
  });

  test('every resolved address is checked (public + private answer is refused)', async () => {
    // public.test resolves to a public address only; the rule for it exists but the test resolver's
    // mixed.test answer includes 10.1.2.3: refused before any connection is made.
    const p2 = await startTestProxy(`version: 1\nallow:\n  - host: mixed.test:${S}\n`);
    try {
      const r = await curl(p2.url, `http://mixed.test:${S}/`);
      assert.equal(r.status, 403);
      assert.equal(r.headers['x-caged-agent-block'], 'private-address');
    } finally {
      await p2.close(200);
    }
  });
});

describe('credentials', () => {
  test('injection strips the agent Authorization and injects the secret', async () => {
    const r = await nodeHttps(proxy.address.port, 'auth.test', S, '/me', { headers: { Authorization: 'Bearer agent-made-this-up' } });
    assert.equal(r.status, 200, r.body);
    const echo = JSON.parse(r.body) as EchoReply;
    // The echo server reflects the header it got: the secret was injected (and did not trip the DLP guard),
    // and what came back to the agent has it overwritten, same length.
    assert.equal(echo.headers.authorization, 'Bearer ' + '*'.repeat('ghp_abcdefghijklmnopqrstuvwxyz0123456789'.length));
    assert.equal(proxy.lastDecision()!.detail, 'credential-redacted');
    assert.ok(!JSON.stringify(proxy.events).includes('ghp_abcdefghijklmnopqrstuvwxyz0123456789'));
    assert.ok(!JSON.stringify(proxy.events).includes('agent-made-this-up'));
  });

  test('a missing secret blocks with a clear reason', async () => {
    const r = await curl(proxy.url, `https://tunnel.test:${S}/`);
    assert.equal(r.status, 403);
    assert.equal(r.headers['x-caged-agent-block'], 'secret-missing');
    assert.match(r.body, /CAGED_SECRET_NOT_SET_ANYWHERE/);
  });

  test('plain HTTP to a host with credential injection is blocked, nothing injected', async () => {
    const r = await curl(proxy.url, `http://auth.test:${H}/`);
    assert.equal(r.status, 403);
    assert.equal(r.headers['x-caged-agent-block'], 'insecure-auth');
    assert.match(r.body, /unencrypted/);
  });
});

describe('data-loss guard', () => {
  const ghToken = 'ghp_' + 'A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8';
  const awsKey = 'AKIA' + 'IOSFODNN7EXAMPLE';
  test('a token in a header is blocked; the event names the pattern only', async () => {
    const r = await curl(proxy.url, `https://dlp.test:${S}/`, ['-H', `X-Debug: ${ghToken}`]);
    assert.equal(r.status, 403);
    assert.equal(r.headers['x-caged-agent-block'], 'secret-detected');
    const e = proxy.lastDecision()!;
    assert.deepEqual([e.reason, e.detail], ['secret-detected', 'github-token']);
    assert.ok(!JSON.stringify(proxy.events).includes(ghToken));
    assert.ok(!r.body.includes(ghToken));
  });

  test('a token in the query string is blocked', async () => {
    const r = await curl(proxy.url, `https://dlp.test:${S}/search?q=${awsKey}`);
    assert.equal(r.status, 403);
    assert.equal(proxy.lastDecision()!.detail, 'aws-access-key-id');
  });

  test('a private key in the body is blocked, an ordinary body passes', async () => {
    const body = 'config=1\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n';
    const r = await nodeHttps(proxy.address.port, 'dlp.test', S, '/upload', { method: 'POST', body });
    assert.equal(r.status, 403);
    assert.equal(r.headers['x-caged-agent-block'], 'secret-detected');
    assert.equal(proxy.lastDecision()!.detail, 'private-key-block');
    const ok = await nodeHttps(proxy.address.port, 'dlp.test', S, '/upload', { method: 'POST', body: 'just some text sk-not-a-key' });
    assert.equal(ok.status, 200);
    assert.equal((JSON.parse(ok.body) as EchoReply).bodyBytes, 27);
  });

  test('Anthropic and OpenAI keys in a plain-HTTP body', async () => {
    const r = await nodeHttp(proxy.address.port, `http://api.test:${H}/p`, { method: 'POST', body: `{"k":"sk-ant-api03-${'x'.repeat(40)}"}` });
    assert.equal(r.status, 403);
    assert.equal(proxy.lastDecision()!.detail, 'anthropic-api-key');
    const r2 = await nodeHttp(proxy.address.port, `http://api.test:${H}/p`, { method: 'POST', body: `key=sk-proj-${'Ab3'.repeat(20)}` });
    assert.equal(r2.status, 403);
    assert.equal(proxy.lastDecision()!.detail, 'openai-api-key');
  });
});

describe('certificates', () => {
  test('concurrent first connections to one host share one mint', async () => {
    const before = proxy.stats().certsMinted;
    const socks = await Promise.all(Array.from({ length: 12 }, () => tlsThroughProxy(proxy.address.port, 'fresh.test', S)));
    for (const s of socks) s.destroy();
    assert.equal(proxy.stats().certsMinted - before, 1);
  });
});

describe('health', () => {
  test('GET /__caged/health on the listener', async () => {
    const r = await curl(proxy.url, `http://127.0.0.1:${proxy.address.port}/__caged/health`, ['--noproxy', '*']);
    assert.equal(r.status, 200);
    const h = JSON.parse(r.body);
    assert.equal(h.ok, true);
    assert.equal(h.policyValid, true);
    assert.match(h.policy, /^[0-9a-f]{64}$/);
  });
});
