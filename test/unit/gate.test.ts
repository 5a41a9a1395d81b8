// The proxy's pure verdicts without sockets: planConnect() (CONNECT → reject | tunnel | intercept |
// intercept-blocked) and gate.ts (addresses, server names, the data-loss guard, credential injection, the
// upstream head). The same cases run on real sockets in test/proxy; here every branch is named.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decide, parsePolicy, type Policy } from '../../src/policy';
import { planConnect, type ConnectPlan } from '../../src/proxy/connect';
import { clientHelloBlock, gateRequest, newHostMemo, privateAddressBlock, privateLiteralBlock, secretInHost, sniBlock, type Forward, type Refused } from '../../src/proxy/gate';
import { parseRequestHead, type RequestHead } from '../../src/proxy/http1';

const policy: Policy = parsePolicy(`version: 1
allow:
  - host: api.example.com
  - host: tunnel.example.com
    intercept: false
  - host: 10.0.0.5
  - host: "*.internal.example"
    private: true
  - host: 93.184.216.34
    intercept: false
  - host: gh.example.com
    auth: { scheme: Bearer, secret: github }
  - host: "*.wild.example"
  - host: "*.tunnelwild.example"
    intercept: false
deny:
  - host: evil.example.com
`).policy!;

const hostLevel = (host: string, port: number) => decide({ host, port }, policy);
const plan = (authority: string): ConnectPlan => planConnect(authority, hostLevel);
const TOKEN = 'ghp_' + 'a'.repeat(36);

describe('planConnect', () => {
  it('an intercepted host: intercept, with its rule', () => {
    const p = plan('API.example.com:443');
    assert.equal(p.action, 'intercept');
    assert.ok(p.action === 'intercept' && p.rule.host === 'api.example.com' && p.host === 'api.example.com' && p.port === 443);
  });

  it('intercept: false: tunnel', () => {
    const p = plan('tunnel.example.com:443');
    assert.ok(p.action === 'tunnel' && p.rule.index === 1);
  });

  it('a target that is not host:port: reject 400, bad-connect-target, the authority kept (bounded)', () => {
    for (const a of ['api.example.com', 'user@api.example.com:443', '::1:443', 'x'.repeat(300) + ':443', '']) {
      const p = plan(a);
      assert.ok(p.action === 'reject' && p.status === 400, a);
      assert.equal(p.block.reason, 'bad-request');
      assert.equal(p.block.detail, 'bad-connect-target');
      assert.ok(p.host.length <= 255 && p.port === 0);
    }
  });

  it('a host the policy does not allow: intercept-blocked with the decision (so the 403 is read inside TLS)', () => {
    const none = plan('nowhere.example:443');
    assert.ok(none.action === 'intercept-blocked' && none.block.reason === 'no-matching-rule' && none.block.rule === undefined);
    const denied = plan('evil.example.com:443');
    assert.ok(denied.action === 'intercept-blocked' && denied.block.reason === 'denied-by-rule' && denied.block.rule?.list === 'deny');
    const port = plan('api.example.com:8443');
    assert.ok(port.action === 'intercept-blocked' && port.block.reason === 'no-matching-rule');
  });

  it('a credential in the host name: intercept-blocked before any lookup, even for a tunnel rule', () => {
    for (const host of [`${TOKEN}.wild.example`, `${TOKEN}.tunnelwild.example`, `akia${'a'.repeat(16)}.wild.example`]) {
      const p = plan(`${host}:443`);
      assert.ok(p.action === 'intercept-blocked', host);
      assert.deepEqual([p.block.reason, p.block.detail?.length ? 'has-detail' : ''], ['secret-detected', 'has-detail']);
      assert.ok(!p.block.message.includes(TOKEN), 'the message names the pattern, never the text');
    }
  });

  it('a non-public IP literal: intercept-blocked under an intercepting rule, reject 403 under a tunnel rule', () => {
    const lit = decide({ host: '10.0.0.5', port: 443 }, policy);
    assert.equal(lit.action, 'allow', 'a rule naming the literal opts in');
    assert.equal(plan('10.0.0.5:443').action, 'intercept');
    const tunnelPolicy = parsePolicy('version: 1\nallow:\n  - host: "*.t.example"\n    intercept: false\n').policy!;
    // An IP literal can only match a rule naming it; a literal rule opts in, so build the case by hand.
    const fakeRule = { ...tunnelPolicy.allow[0], kind: 'exact' as const, host: '127.0.0.1' };
    const p = planConnect('127.0.0.1:443', () => ({ action: 'allow', reason: 'allowed', rule: fakeRule, message: '' }));
    assert.ok(p.action === 'reject' && p.status === 403 && p.block.reason === 'private-address' && p.block.detail === 'loopback');
    const q = planConnect('127.0.0.1:443', () => ({ action: 'allow', reason: 'allowed', rule: { ...fakeRule, intercept: true }, message: '' }));
    assert.ok(q.action === 'intercept-blocked' && q.block.reason === 'private-address');
  });

  it('a public IP literal under a tunnel rule: tunnel', () => {
    assert.equal(plan('93.184.216.34:443').action, 'tunnel');
  });
});

describe('addresses', () => {
  const rule = policy.allow[0];
  it('IP literals are refused unless the rule opts in; names wait for their resolution', () => {
    assert.equal(privateLiteralBlock('api.example.com', rule), undefined);
    assert.equal(privateLiteralBlock('93.184.216.34', rule), undefined);
    for (const [host, cls] of [['127.0.0.1', 'loopback'], ['10.1.2.3', 'private'], ['169.254.169.254', 'link-local'], ['::1', 'loopback'], ['fd00::1', 'unique-local'], ['0.0.0.0', 'unspecified']]) {
      const b = privateLiteralBlock(host, rule);
      assert.deepEqual([b?.reason, b?.detail], ['private-address', cls], host);
      assert.match(b!.message, /add "private: true" to allow\[0\]/);
    }
    assert.equal(privateLiteralBlock('127.0.0.1', { ...rule, private: true }), undefined);
    assert.equal(privateLiteralBlock('127.0.0.1', { ...rule, kind: 'ip' }), undefined);
  });

  it('one message per situation: a literal, and a name that resolved to a private address', () => {
    assert.equal(privateAddressBlock('10.0.0.1', rule, 'private').message, '10.0.0.1 is a private address; add "private: true" to allow[0] if the agent may reach it.');
    assert.equal(
      privateAddressBlock('db.example', rule, 'private', '10.0.0.9').message,
      'db.example resolves to a private address (10.0.0.9); connections to loopback, private and link-local addresses are refused unless the rule says "private: true" (allow[0]).',
    );
    assert.match(privateAddressBlock('::1', rule, 'loopback').message, /^\[::1\] is a loopback address/);
  });
});

describe('the one server-name rule', () => {
  it('the SNI must name the CONNECT host; none passes only for an IP literal', () => {
    assert.equal(sniBlock('api.example.com', 'api.example.com', undefined), undefined);
    assert.equal(sniBlock('api.example.com', 'API.Example.com.', undefined), undefined);
    assert.equal(sniBlock('10.0.0.5', undefined, undefined), undefined);
    assert.equal(sniBlock('2001:db8::1', undefined, undefined), undefined);
    assert.deepEqual([sniBlock('api.example.com', undefined, undefined)?.reason, sniBlock('api.example.com', undefined, undefined)?.detail], ['sni-mismatch', 'no-sni']);
    assert.deepEqual([sniBlock('api.example.com', '', undefined)?.detail], ['no-sni']);
    const other = sniBlock('api.example.com', 'other.example', policy.allow[0]);
    assert.deepEqual([other?.reason, other?.detail, other?.rule?.index], ['sni-mismatch', 'sni-mismatch', 0]);
    assert.equal(sniBlock('api.example.com', 'not a name', undefined)?.detail, 'sni-mismatch');
  });

  it('a tunnel ClientHello goes through the same rule; unreadable bytes are refused with their own detail', () => {
    const rule = policy.allow[1];
    assert.equal(clientHelloBlock('tunnel.example.com', { state: 'ok', sni: 'tunnel.example.com' }, rule), undefined);
    assert.equal(clientHelloBlock('tunnel.example.com', { state: 'ok' }, rule)?.detail, 'no-sni');
    assert.equal(clientHelloBlock('93.184.216.34', { state: 'ok' }, rule), undefined);
    assert.equal(clientHelloBlock('tunnel.example.com', { state: 'ok', sni: 'evil.example' }, rule)?.detail, 'sni-mismatch');
    assert.equal(clientHelloBlock('tunnel.example.com', { state: 'not-tls' }, rule)?.detail, 'not-tls');
    assert.equal(clientHelloBlock('tunnel.example.com', { state: 'invalid' }, rule)?.detail, 'bad-client-hello');
    for (const hello of [{ state: 'ok' }, { state: 'not-tls' }, { state: 'invalid' }] as const) assert.equal(clientHelloBlock('tunnel.example.com', hello, rule)?.reason, 'sni-mismatch');
  });
});

describe('gateRequest', () => {
  const head = (text: string): RequestHead => {
    const buf = Buffer.from(text, 'latin1');
    return parseRequestHead(buf, buf.length);
  };
  const run = (host: string, port: number, req: RequestHead, opts: { secure?: boolean; env?: NodeJS.ProcessEnv } = {}) =>
    gateRequest(decide({ host, port, method: req.method, path: req.target }, policy), req, host, port, opts.secure ?? true, req.target, opts.env ?? {}, newHostMemo());
  const forwarded = (r: Forward | Refused): Forward => {
    assert.ok('head' in r, `expected a forward, got ${'reason' in r ? r.reason : ''}`);
    return r;
  };
  const refused = (r: Forward | Refused): Refused => {
    assert.ok(!('head' in r), 'expected a refusal');
    return r;
  };

  it('an allowed request: the rewritten head with the checked Host first, hop-by-hop headers gone', () => {
    const f = forwarded(run('api.example.com', 443, head('GET /a/./b?q=1 HTTP/1.1\r\nHost: api.example.com\r\nConnection: keep-alive, x-drop\r\nX-Drop: 1\r\nProxy-Authorization: x\r\nAccept: */*\r\n\r\n')));
    assert.equal(f.head, 'GET /a/b?q=1 HTTP/1.1\r\nHost: api.example.com\r\nAccept: */*\r\n\r\n');
    assert.equal(f.path, '/a/b');
    assert.equal(f.allowPrivate, false);
    assert.equal(f.secret, undefined);
  });

  it('the decision refuses first, with its own reason, message and rule', () => {
    const r = refused(run('evil.example.com', 443, head('GET /x HTTP/1.1\r\n\r\n')));
    assert.deepEqual([r.reason, r.rule?.list, r.path], ['denied-by-rule', 'deny', '/x']);
  });

  it('the Host header must name host and port (the port may be left out); the connection remembers a match', () => {
    assert.equal(refused(run('api.example.com', 443, head('GET / HTTP/1.1\r\nHost: other.example\r\n\r\n'))).detail, 'host-mismatch');
    assert.equal(refused(run('api.example.com', 443, head('GET / HTTP/1.1\r\nHost: api.example.com:444\r\n\r\n'))).detail, 'host-mismatch');
    forwarded(run('api.example.com', 443, head('GET / HTTP/1.1\r\nHost: API.example.com:443\r\n\r\n')));
    const seen = newHostMemo();
    const req = head('GET / HTTP/1.1\r\nHost: api.example.com\r\n\r\n');
    const d = decide({ host: 'api.example.com', port: 443, method: 'GET', path: '/' }, policy);
    forwarded(gateRequest(d, req, 'api.example.com', 443, true, '/', {}, seen));
    assert.deepEqual(seen, { header: 'api.example.com', host: 'api.example.com', port: 443 });
  });

  it('TRACE and TRACK are refused; a credential is never injected into plain HTTP', () => {
    assert.equal(refused(run('api.example.com', 443, head('TRACE / HTTP/1.1\r\n\r\n'))).reason, 'method-refused');
    assert.equal(refused(run('api.example.com', 443, head('TRACK / HTTP/1.1\r\n\r\n'))).reason, 'method-refused');
    const r = refused(run('gh.example.com', 80, head('GET / HTTP/1.1\r\n\r\n'), { secure: false, env: { CAGED_SECRET_GITHUB: 's3cret' } }));
    assert.deepEqual([r.reason, r.detail], ['insecure-auth', 'github']);
    assert.match(r.message, /send it to https:\/\/gh\.example\.com instead/);
  });

  it('the data-loss guard scans what is forwarded: host, decoded path and query, header names and values', () => {
    const wild = `${TOKEN}.wild.example`;
    for (const [host, text] of [
      ['api.example.com', `GET /x?t=${TOKEN} HTTP/1.1\r\n\r\n`],
      ['api.example.com', `GET /x?t=${TOKEN.replace('_', '%5F')} HTTP/1.1\r\n\r\n`],
      ['api.example.com', `GET / HTTP/1.1\r\nX-Token: ${TOKEN}\r\n\r\n`],
      ['api.example.com', `GET / HTTP/1.1\r\nX-${TOKEN}: 1\r\n\r\n`],
      [wild, 'GET / HTTP/1.1\r\n\r\n'],
    ]) {
      const r = refused(run(host, 443, head(text)));
      assert.deepEqual([r.reason, r.detail], ['secret-detected', 'github-token'], text);
      assert.ok(!r.message.includes(TOKEN));
    }
    assert.equal(secretInHost('api.example.com'), undefined);
  });

  it('credential injection: the client Authorization is replaced; a missing secret is refused', () => {
    const req = head(`GET /u HTTP/1.1\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`);
    const f = forwarded(run('gh.example.com', 443, req, { env: { CAGED_SECRET_GITHUB: 'injected' } }));
    assert.equal(f.head, 'GET /u HTTP/1.1\r\nHost: gh.example.com\r\nAuthorization: Bearer injected\r\n\r\n');
    assert.deepEqual(f.secret, Buffer.from('injected'));
    const r = refused(run('gh.example.com', 443, req, { env: {} }));
    assert.deepEqual([r.reason, r.detail], ['secret-missing', 'github']);
    assert.match(r.message, /CAGED_SECRET_GITHUB is empty/);
  });

  it('framing is restated and upgrades are kept; HTTP/1.0 closes', () => {
    assert.match(forwarded(run('api.example.com', 443, head('POST /p HTTP/1.1\r\nContent-Length: 5\r\n\r\n'))).head, /\r\nContent-Length: 5\r\n\r\n$/);
    assert.match(forwarded(run('api.example.com', 443, head('POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n'))).head, /\r\nTransfer-Encoding: chunked\r\n\r\n$/);
    assert.match(forwarded(run('api.example.com', 443, head('GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'))).head, /\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n$/);
    assert.match(forwarded(run('api.example.com', 443, head('GET / HTTP/1.0\r\n\r\n'))).head, /^GET \/ HTTP\/1\.0\r\n[\s\S]*Connection: close\r\n\r\n$/);
  });

  it('a private IP literal is refused after the decision allowed it', () => {
    const lit = parsePolicy('version: 1\nallow:\n  - host: "*.example"\n').policy!;
    const req = head('GET / HTTP/1.1\r\n\r\n');
    const r = refused(gateRequest({ action: 'allow', reason: 'allowed', rule: { ...lit.allow[0], kind: 'exact', host: '10.9.9.9' }, message: '', normalizedPath: '/' }, req, '10.9.9.9', 443, true, '/', {}, newHostMemo()));
    assert.deepEqual([r.reason, r.detail], ['private-address', 'private']);
  });
});
