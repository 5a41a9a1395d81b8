// Table tests for host/port/path matching and the decision reasons: the tricky cases users get bitten by.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalHost, classifyAddress, decide, isIpLiteral, normalizePath, parsePolicy, ruleLabel, type Policy, type ReasonCode } from '../../src/policy';

const POLICY = `version: 1
allow:
  - host: api.anthropic.com          # 0 exact
  - host: "*.npmjs.org"              # 1 any subdomain depth, not the apex
  - host: github.com                 # 2
    methods: [GET, HEAD]
    paths: ["/my-org/**"]
  - host: internal.example.com:8443  # 3 explicit port
  - host: api.github.com             # 4
    auth: { scheme: Bearer, secret: github }
  - host: pinned.example.com         # 5
    intercept: false
  - host: git.intranet.example       # 6
    private: true
  - host: example.org                # 7
  - host: "*.example.org"            # 8
  - host: "[::1]:8080"               # 9
    private: true
  - host: 10.0.0.5                   # 10
    private: true
  - host: files.example.net          # 11
    paths: ["/a%2Fb/*", "/pub/*.txt", "/exact"]
  - host: disabled.example.com       # 12
    disabled: true
  - host: api.example.net            # 13
    methods: [GET]
    paths: ["/v1/**"]
  - host: api.example.net            # 14
    methods: [POST]
    paths: ["/v1/upload"]
  - host: shop.example.com           # 15
deny:
  - host: gist.github.com            # 0
  - host: "*.evil.npmjs.org"         # 1
  - host: shop.example.com           # 2 conditional deny
    methods: [DELETE]
  - host: shop.example.com           # 3
    paths: ["/admin/**"]
  - host: api.anthropic.com          # 4 disabled deny is ignored
    disabled: true
`;

function load(text: string): Policy {
  const r = parsePolicy(text);
  assert.deepEqual(r.errors, [], 'policy parses');
  assert.ok(r.policy);
  return r.policy;
}

const policy = load(POLICY);

type Row = [host: string, port: number, method: string | undefined, path: string | undefined, action: 'allow' | 'deny', reason: ReasonCode, rule: string | null];

const rows: Row[] = [
  // case and trailing dots
  ['api.anthropic.com', 443, 'POST', '/v1/messages', 'allow', 'allowed', 'allow[0]'],
  ['API.Anthropic.COM', 443, 'POST', '/v1/messages', 'allow', 'allowed', 'allow[0]'],
  ['api.anthropic.com.', 443, 'POST', '/v1/messages', 'allow', 'allowed', 'allow[0]'],
  ['api.anthropic.com..', 443, 'GET', '/', 'deny', 'no-matching-rule', null],
  ['xapi.anthropic.com', 443, 'GET', '/', 'deny', 'no-matching-rule', null],
  ['anthropic.com', 443, 'GET', '/', 'deny', 'no-matching-rule', null],
  ['sub.api.anthropic.com', 443, 'GET', '/', 'deny', 'no-matching-rule', null],
  // wildcards: any depth, never the apex, no suffix tricks
  ['registry.npmjs.org', 443, 'GET', '/', 'allow', 'allowed', 'allow[1]'],
  ['a.b.c.npmjs.org', 443, 'GET', '/', 'allow', 'allowed', 'allow[1]'],
  ['REGISTRY.NPMJS.ORG.', 443, 'GET', '/', 'allow', 'allowed', 'allow[1]'],
  ['npmjs.org', 443, 'GET', '/', 'deny', 'no-matching-rule', null],
  ['evilnpmjs.org', 443, 'GET', '/', 'deny', 'no-matching-rule', null],
  ['npmjs.org.evil.com', 443, 'GET', '/', 'deny', 'no-matching-rule', null],
  ['x.evil.npmjs.org', 443, 'GET', '/', 'deny', 'denied-by-rule', 'deny[1]'],
  ['evil.npmjs.org', 443, 'GET', '/', 'allow', 'allowed', 'allow[1]'],
  ['example.org', 443, 'GET', '/', 'allow', 'allowed', 'allow[7]'],
  ['www.example.org', 443, 'GET', '/', 'allow', 'allowed', 'allow[8]'],
  ['evilexample.org', 443, 'GET', '/', 'deny', 'no-matching-rule', null],
  ['example.org.evil', 443, 'GET', '/', 'deny', 'no-matching-rule', null],
  // ports
  ['api.anthropic.com', 80, 'GET', '/', 'allow', 'allowed', 'allow[0]'],
  ['api.anthropic.com', 8443, 'GET', '/', 'deny', 'no-matching-rule', null],
  ['api.anthropic.com', 22, undefined, undefined, 'deny', 'no-matching-rule', null],
  ['internal.example.com', 8443, 'GET', '/', 'allow', 'allowed', 'allow[3]'],
  ['internal.example.com', 443, 'GET', '/', 'deny', 'no-matching-rule', null],
  ['internal.example.com', 80, undefined, undefined, 'deny', 'no-matching-rule', null],
  // methods and paths
  ['github.com', 443, 'GET', '/my-org', 'allow', 'allowed', 'allow[2]'],
  ['github.com', 443, 'GET', '/my-org/', 'allow', 'allowed', 'allow[2]'],
  ['github.com', 443, 'HEAD', '/my-org/repo.git/info/refs?service=git-upload-pack', 'allow', 'allowed', 'allow[2]'],
  ['github.com', 443, 'get', '/my-org/x', 'allow', 'allowed', 'allow[2]'],
  ['github.com', 443, 'GET', '/my-orgx', 'deny', 'path-not-allowed', 'allow[2]'],
  ['github.com', 443, 'GET', '/other-org/repo', 'deny', 'path-not-allowed', 'allow[2]'],
  ['github.com', 443, 'POST', '/my-org/repo', 'deny', 'method-not-allowed', 'allow[2]'],
  ['github.com', 443, 'GET', '/my-org/../other-org', 'deny', 'path-not-allowed', 'allow[2]'],
  ['github.com', 443, 'GET', '/my-org/%2e%2e/other-org', 'deny', 'path-not-allowed', 'allow[2]'],
  ['github.com', 443, 'GET', '/my-org/%2E%2E/%2e%2E/other-org', 'deny', 'path-not-allowed', 'allow[2]'],
  ['github.com', 443, 'GET', '/my-org/.%2e/other-org', 'deny', 'path-not-allowed', 'allow[2]'],
  ['github.com', 443, 'GET', '/other-org/../my-org/x', 'allow', 'allowed', 'allow[2]'],
  ['github.com', 443, 'GET', '/%6dy-org/x', 'allow', 'allowed', 'allow[2]'],
  ['github.com', 443, 'GET', '//my-org//x', 'allow', 'allowed', 'allow[2]'],
  ['github.com', 443, 'GET', '/../../my-org/x', 'allow', 'allowed', 'allow[2]'],
  ['github.com', 443, 'GET', '/my-org%2F..%2Fother', 'deny', 'path-not-allowed', 'allow[2]'],
  ['github.com', 443, 'GET', '/my-org/..;/other-org', 'deny', 'bad-path', null],
  ['github.com', 443, 'GET', '/my-org/%zz', 'deny', 'bad-path', null],
  ['github.com', 443, 'GET', '/my-org/%00', 'deny', 'bad-path', null],
  ['github.com', 443, 'GET', 'my-org/x', 'deny', 'bad-path', null],
  ['github.com', 443, 'GET', '*', 'deny', 'bad-path', null],
  ['files.example.net', 443, 'GET', '/a%2fb/c', 'allow', 'allowed', 'allow[11]'],
  ['files.example.net', 443, 'GET', '/a/b/c', 'deny', 'path-not-allowed', 'allow[11]'],
  ['files.example.net', 443, 'GET', '/a%2Fb/c/d', 'deny', 'path-not-allowed', 'allow[11]'],
  ['files.example.net', 443, 'GET', '/pub/readme.txt', 'allow', 'allowed', 'allow[11]'],
  ['files.example.net', 443, 'GET', '/pub/sub/readme.txt', 'deny', 'path-not-allowed', 'allow[11]'],
  ['files.example.net', 443, 'GET', '/pub/readme.txt.exe', 'deny', 'path-not-allowed', 'allow[11]'],
  ['files.example.net', 443, 'GET', '/exact', 'allow', 'allowed', 'allow[11]'],
  ['files.example.net', 443, 'GET', '/exact/', 'deny', 'path-not-allowed', 'allow[11]'],
  ['files.example.net', 443, 'GET', '/exact#frag', 'allow', 'allowed', 'allow[11]'],
  ['api.example.net', 443, 'GET', '/v1/x', 'allow', 'allowed', 'allow[13]'],
  ['api.example.net', 443, 'POST', '/v1/upload', 'allow', 'allowed', 'allow[14]'],
  ['api.example.net', 443, 'POST', '/v1/other', 'deny', 'path-not-allowed', 'allow[14]'],
  ['api.example.net', 443, 'PUT', '/v1/upload', 'deny', 'method-not-allowed', 'allow[13]'],
  // deny beats allow, conditional denies
  ['gist.github.com', 443, 'GET', '/', 'deny', 'denied-by-rule', 'deny[0]'],
  ['gist.github.com', 443, undefined, undefined, 'deny', 'denied-by-rule', 'deny[0]'],
  ['shop.example.com', 443, 'GET', '/cart', 'allow', 'allowed', 'allow[15]'],
  ['shop.example.com', 443, 'DELETE', '/cart', 'deny', 'denied-by-rule', 'deny[2]'],
  ['shop.example.com', 443, 'GET', '/admin/users', 'deny', 'denied-by-rule', 'deny[3]'],
  ['shop.example.com', 443, 'GET', '/x/../admin', 'deny', 'denied-by-rule', 'deny[3]'],
  ['shop.example.com', 443, 'GET', '/%61dmin', 'deny', 'denied-by-rule', 'deny[3]'],
  ['shop.example.com', 443, undefined, undefined, 'allow', 'allowed', 'allow[15]'],
  // disabled entries are ignored (both lists)
  ['disabled.example.com', 443, 'GET', '/', 'deny', 'no-matching-rule', null],
  ['disabled.example.com', 443, undefined, undefined, 'deny', 'no-matching-rule', null],
  // CONNECT-time (host-level) decisions
  ['github.com', 443, undefined, undefined, 'allow', 'allowed', 'allow[2]'],
  ['pinned.example.com', 443, undefined, undefined, 'allow', 'allowed', 'allow[5]'],
  ['unknown.example.com', 443, undefined, undefined, 'deny', 'no-matching-rule', null],
  // IP literals: only rules naming the literal, canonical comparison
  ['[::1]', 8080, undefined, undefined, 'allow', 'allowed', 'allow[9]'],
  ['::1', 8080, 'GET', '/', 'allow', 'allowed', 'allow[9]'],
  ['0:0:0:0:0:0:0:1', 8080, 'GET', '/', 'allow', 'allowed', 'allow[9]'],
  ['[0000:0000::0001]', 8080, 'GET', '/', 'allow', 'allowed', 'allow[9]'],
  ['[::1]', 443, 'GET', '/', 'deny', 'ip-literal', null],
  ['[::2]', 8080, 'GET', '/', 'deny', 'ip-literal', null],
  ['10.0.0.5', 443, 'GET', '/', 'allow', 'allowed', 'allow[10]'],
  ['10.0.0.05', 443, 'GET', '/', 'allow', 'allowed', 'allow[10]'],
  ['167772165', 443, 'GET', '/', 'allow', 'allowed', 'allow[10]'],
  ['0xa.0.0.5', 443, 'GET', '/', 'allow', 'allowed', 'allow[10]'],
  ['10.5', 443, 'GET', '/', 'allow', 'allowed', 'allow[10]'],
  ['[::ffff:10.0.0.5]', 443, 'GET', '/', 'deny', 'ip-literal', null],
  ['127.0.0.1', 443, 'GET', '/', 'deny', 'ip-literal', null],
  ['2130706433', 80, undefined, undefined, 'deny', 'ip-literal', null],
  ['0x7f.1', 80, undefined, undefined, 'deny', 'ip-literal', null],
  ['127.1', 80, undefined, undefined, 'deny', 'ip-literal', null],
  ['0177.0.0.1', 80, undefined, undefined, 'deny', 'ip-literal', null],
  ['[2606:4700::1111]', 443, 'GET', '/', 'deny', 'ip-literal', null],
  // not a host at all
  ['exa mple.com', 443, 'GET', '/', 'deny', 'no-matching-rule', null],
  ['', 443, 'GET', '/', 'deny', 'no-matching-rule', null],
  ['api.anthropic.com', 0, 'GET', '/', 'deny', 'no-matching-rule', null],
  ['api.anthropic.com', 70000, 'GET', '/', 'deny', 'no-matching-rule', null],
];

test('decide: table of matching cases', () => {
  for (const [host, port, method, path, action, reason, rule] of rows) {
    const d = decide({ host, port, method, path }, policy);
    const label = `${method ?? 'CONNECT'} ${host}:${port}${path ?? ''}`;
    assert.equal(d.action, action, `${label}: action (${d.message})`);
    assert.equal(d.reason, reason, `${label}: reason (${d.message})`);
    assert.equal(d.rule ? ruleLabel(d.rule) : null, rule, `${label}: rule`);
    assert.ok(d.message.length > 10 && !d.message.includes('\n'), `${label}: message is one line`);
    if (path !== undefined && reason !== 'bad-path') assert.equal(d.normalizedPath, normalizePath(path), `${label}: normalizedPath`);
  }
});

test('decide: no policy denies everything with policy-invalid', () => {
  const d = decide({ host: 'api.anthropic.com', port: 443, method: 'GET', path: '/' }, undefined);
  assert.equal(d.action, 'deny');
  assert.equal(d.reason, 'policy-invalid');
  assert.match(d.message, /policy/);
});

test('decide: CONNECT-time decisions return the rule the proxy needs (intercept, auth, private)', () => {
  const pinned = decide({ host: 'pinned.example.com', port: 443 }, policy);
  assert.equal(pinned.rule?.intercept, false);
  const gh = decide({ host: 'api.github.com', port: 443 }, policy);
  assert.deepEqual(gh.rule?.auth, { scheme: 'Bearer', secret: 'github' });
  assert.equal(gh.rule?.intercept, true);
  const intranet = decide({ host: 'git.intranet.example', port: 443 }, policy);
  assert.equal(intranet.rule?.private, true);
  assert.equal(decide({ host: 'api.anthropic.com', port: 443 }, policy).rule?.private, false);
});

test('decide: a tunnelled host with a conditional deny is never tunnelled blind', () => {
  const p = load(`version: 1
allow:
  - host: a.example.com
    intercept: false
  - host: a.example.com
deny:
  - host: a.example.com
    paths: ["/secret/**"]
`);
  const d = decide({ host: 'a.example.com', port: 443 }, p);
  assert.equal(d.action, 'allow');
  assert.equal(d.rule?.index, 1, 'the intercepting rule is returned');
  assert.equal(d.rule?.intercept, true);
  const only = load(`version: 1
allow:
  - host: a.example.com
    intercept: false
deny:
  - host: a.example.com
    methods: [POST]
`);
  const d2 = decide({ host: 'a.example.com', port: 443 }, only);
  assert.equal(d2.action, 'deny');
  assert.equal(d2.reason, 'denied-by-rule');
});

test('decide: normalizedPath and forwardPath keep the query, drop the fragment', () => {
  const d = decide({ host: 'github.com', port: 443, method: 'GET', path: '/x/../my-org/%7erepo?q=%2e%2e&a=1#frag' }, policy);
  assert.equal(d.action, 'allow');
  assert.equal(d.normalizedPath, '/my-org/~repo');
  assert.equal(d.forwardPath, '/my-org/~repo?q=%2e%2e&a=1');
  const noQuery = decide({ host: 'github.com', port: 443, method: 'GET', path: '/my-org/' }, policy);
  assert.equal(noQuery.forwardPath, '/my-org/');
});

test('decide: messages tell the agent what to do', () => {
  const none = decide({ host: 'pypi.org', port: 443, method: 'GET', path: '/simple/' }, policy);
  assert.match(none.message, /No allow rule matches pypi\.org/);
  assert.match(none.message, /- host: pypi\.org/);
  const port = decide({ host: 'pypi.org', port: 8080 }, policy);
  assert.match(port.message, /pypi\.org:8080/);
  const method = decide({ host: 'github.com', port: 443, method: 'POST', path: '/my-org/x' }, policy);
  assert.match(method.message, /POST is not allowed on github\.com: allow\[2\] permits only GET, HEAD/);
  const path = decide({ host: 'github.com', port: 443, method: 'GET', path: '/other' }, policy);
  assert.match(path.message, /\/other on github\.com is not allowed: allow\[2\] permits only the paths \/my-org\/\*\*/);
  const denied = decide({ host: 'gist.github.com', port: 443 }, policy);
  assert.match(denied.message, /blocked by deny\[0\]/);
  const ip = decide({ host: '127.1', port: 80 }, policy);
  assert.match(ip.message, /127\.0\.0\.1 is an IP address/);
});

test('decide: works on a policy that went through JSON (no hidden state needed)', () => {
  const copy = JSON.parse(JSON.stringify(policy)) as Policy;
  for (const [host, port, method, path, action, reason] of rows) {
    const d = decide({ host, port, method, path }, copy);
    assert.equal(d.action, action, `${host}${path ?? ''}`);
    assert.equal(d.reason, reason, `${host}${path ?? ''}`);
  }
  // Rules stay plain data.
  assert.deepEqual(Object.keys(policy.allow[2]).sort(), ['disabled', 'host', 'hostText', 'index', 'intercept', 'kind', 'list', 'methods', 'paths', 'pos', 'private'].sort());
});

test('decide: is fast (hot path)', () => {
  // 400 exact hosts + 50 wildcards; 200k decisions must take well under a second or two.
  const lines = ['version: 1', 'allow:'];
  for (let i = 0; i < 400; i++) lines.push(`  - host: h${i}.example.com`, `    paths: ["/v${i}/**"]`);
  for (let i = 0; i < 50; i++) lines.push(`  - host: "*.w${i}.example.net"`);
  const big = load(lines.join('\n') + '\n');
  const t0 = process.hrtime.bigint();
  let allowed = 0;
  for (let i = 0; i < 200_000; i++) {
    const d = decide({ host: i % 2 ? `h${i % 400}.example.com` : `a.b.w${i % 50}.example.net`, port: 443, method: 'GET', path: `/v${i % 400}/x/y?z=1` }, big);
    if (d.action === 'allow') allowed++;
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  assert.equal(allowed, 200_000);
  assert.ok(ms < 3000, `200k decisions took ${ms.toFixed(0)} ms`);
});

test('canonicalHost: names, IPv4 spellings, IPv6 forms', () => {
  const cases: [string, ReturnType<typeof canonicalHost>][] = [
    ['Example.COM.', { kind: 'name', host: 'example.com' }],
    ['under_score.example.com', { kind: 'name', host: 'under_score.example.com' }],
    ['127.0.0.1', { kind: 'ipv4', host: '127.0.0.1' }],
    ['2130706433', { kind: 'ipv4', host: '127.0.0.1' }],
    ['0x7f.1', { kind: 'ipv4', host: '127.0.0.1' }],
    ['0x7F000001', { kind: 'ipv4', host: '127.0.0.1' }],
    ['127.1', { kind: 'ipv4', host: '127.0.0.1' }],
    ['127.0.1', { kind: 'ipv4', host: '127.0.0.1' }],
    ['0177.0.0.1', { kind: 'ipv4', host: '127.0.0.1' }],
    ['017700000001', { kind: 'ipv4', host: '127.0.0.1' }],
    ['127.0.0.1.', { kind: 'ipv4', host: '127.0.0.1' }],
    ['0', { kind: 'ipv4', host: '0.0.0.0' }],
    ['[::1]', { kind: 'ipv6', host: '::1' }],
    ['::1', { kind: 'ipv6', host: '::1' }],
    ['0:0:0:0:0:0:0:1', { kind: 'ipv6', host: '::1' }],
    ['[0000:0000:0000:0000:0000:0000:0000:0001]', { kind: 'ipv6', host: '::1' }],
    ['2001:DB8:0:0:1:0:0:1', { kind: 'ipv6', host: '2001:db8::1:0:0:1' }],
    ['2001:db8::0:1', { kind: 'ipv6', host: '2001:db8::1' }],
    ['1:0:1:1:1:1:1:1', { kind: 'ipv6', host: '1:0:1:1:1:1:1:1' }],
    ['::ffff:127.0.0.1', { kind: 'ipv6', host: '::ffff:7f00:1' }],
    ['[::FFFF:7F00:1]', { kind: 'ipv6', host: '::ffff:7f00:1' }],
    ['::', { kind: 'ipv6', host: '::' }],
    ['256.0.0.1', undefined],
    ['1.2.3.4.5', undefined],
    ['0x', { kind: 'ipv4', host: '0.0.0.0' }],
    ['foo.1', undefined],
    ['089.0.0.1', undefined],
    ['4294967296', undefined],
    ['a..b', undefined],
    ['-a.com', undefined],
    ['exa mple.com', undefined],
    ['', undefined],
    ['.', undefined],
    ['[::1', undefined],
    ['::1::2', undefined],
    ['1:2:3:4:5:6:7:8:9', undefined],
    ['[fe80::1%eth0]', undefined],
    ['::ffff:1.2.3.04', undefined],
    ['example.com:443', undefined],
    ['ex*ample.com', undefined],
    ['é.example', undefined],
  ];
  for (const [input, want] of cases) assert.deepEqual(canonicalHost(input), want, JSON.stringify(input));
  assert.equal(isIpLiteral('[::1]'), true);
  assert.equal(isIpLiteral('2130706433'), true);
  assert.equal(isIpLiteral('example.com'), false);
  assert.equal(isIpLiteral('not a host'), false);
});

test('classifyAddress: private, loopback, link-local and friends', () => {
  const cases: [string, ReturnType<typeof classifyAddress>][] = [
    ['127.0.0.1', 'loopback'],
    ['127.255.1.2', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['172.32.0.1', 'public'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'private'],
    ['100.127.255.255', 'private'],
    ['100.128.0.1', 'public'],
    ['169.254.169.254', 'link-local'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['255.255.255.255', 'private'],
    ['8.8.8.8', 'public'],
    ['93.184.216.34', 'public'],
    ['::1', 'loopback'],
    ['[::1]', 'loopback'],
    ['::', 'unspecified'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:169.254.169.254', 'link-local'],
    ['::ffff:8.8.8.8', 'public'],
    ['64:ff9b::7f00:1', 'loopback'],
    ['fc00::1', 'unique-local'],
    ['fd12:3456::1', 'unique-local'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['febf::1', 'link-local'],
    ['ff02::1', 'multicast'],
    ['2606:4700:4700::1111', 'public'],
    ['2001:db8::1', 'public'],
    ['2130706433', 'loopback'],
    ['not-an-ip', 'unspecified'],
    ['', 'unspecified'],
  ];
  for (const [ip, want] of cases) assert.equal(classifyAddress(ip), want, ip);
});

test('normalizePath: table', () => {
  const cases: [string, string | undefined][] = [
    ['/', '/'],
    ['/a/b', '/a/b'],
    ['/a/b/', '/a/b/'],
    ['/a//b///c', '/a/b/c'],
    ['/a/./b', '/a/b'],
    ['/a/b/..', '/a/'],
    ['/a/b/../c', '/a/c'],
    ['/../../etc/passwd', '/etc/passwd'],
    ['/a/%2e%2e/b', '/b'],
    ['/a/%2E%2e/b', '/b'],
    ['/a/.%2e/b', '/b'],
    ['/a/%2e/b', '/a/b'],
    ['/a%2fb', '/a%2Fb'],
    ['/a%2Fb/..', '/'],
    ['/%7Euser/%41%42', '/~user/AB'],
    ['/a%20b', '/a%20b'],
    ['/a b', '/a%20b'],
    ['/a\\b', '/a%5Cb'],
    ['/é', '/%C3%A9'],
    ['/a?x=1', '/a'],
    ['/a#frag', '/a'],
    ['/a/..?x=/../..', '/'],
    ['/a;b=c/d', '/a;b=c/d'],
    ['/a/..;/b', undefined],
    ['/a/.;x/b', undefined],
    ['/%zz', undefined],
    ['/%2', undefined],
    ['/%00', undefined],
    ['/%0a', undefined],
    ['/a\nb', undefined],
    ['a/b', undefined],
    ['', undefined],
    ['*', undefined],
    ['http://example.com/a', undefined],
  ];
  for (const [raw, want] of cases) assert.equal(normalizePath(raw), want, JSON.stringify(raw));
});

test('decide: messages stay one short line whatever the request holds', () => {
  const long = '/my-orgx/' + 'a'.repeat(5000);
  const d = decide({ host: 'github.com', port: 443, method: 'GET', path: long }, policy);
  assert.equal(d.reason, 'path-not-allowed');
  assert.ok(d.message.length < 400, String(d.message.length));
  const weird = decide({ host: 'a\r\nInjected: header'.repeat(50), port: 443, method: 'GET', path: '/' }, policy);
  assert.ok(!/[\r\n]/.test(weird.message) && weird.message.length < 300, weird.message);
  const m = decide({ host: 'github.com', port: 443, method: 'X'.repeat(1000), path: '/my-org' }, policy);
  assert.equal(m.reason, 'method-not-allowed');
  assert.ok(m.message.length < 300);
});
