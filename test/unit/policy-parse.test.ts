// Parsing and validation: the schema, error messages in plain words with positions, warnings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePolicy, type PolicyIssue } from '../../src/policy';

function errors(text: string): string[] {
  return parsePolicy(text).errors.map((e) => `${e.pos.line}:${e.pos.col} ${e.message}`);
}

function warnings(text: string): string[] {
  const r = parsePolicy(text);
  assert.deepEqual(r.errors, [], 'no errors');
  return r.warnings.map((e) => `${e.pos.line}:${e.pos.col} ${e.message}`);
}

function one(text: string): PolicyIssue {
  const r = parsePolicy(text);
  assert.equal(r.errors.length, 1, JSON.stringify(r.errors));
  assert.equal(r.policy, undefined);
  return r.errors[0];
}

test('parse: the schema of issue 2 reads into rules', () => {
  const r = parsePolicy(`version: 1
allow:
  - host: api.anthropic.com          # exact host (case-insensitive, trailing dot ignored), ports 80/443
  - host: "*.npmjs.org"              # any depth of subdomain, NOT the apex npmjs.org itself
  - host: github.com
    methods: [GET, head]             # optional
    paths: ["/my-org/**"]            # optional; matched on the normalised path (no dot-segment tricks)
  - host: internal.example.com:8443  # explicit port
  - host: api.github.com
    auth: { scheme: Bearer, secret: github }   # the proxy injects this credential (see the proxy issue)
  - host: pinned.example.com
    intercept: false                 # tunnel without TLS interception (host-level decision only)
  - host: git.intranet.example
    private: true                    # may resolve to a private/loopback address (refused otherwise)
  - host: Old.Example.com.
    disabled: true
deny:
  - host: gist.github.com            # deny beats allow
`);
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.warnings, []);
  const p = r.policy!;
  assert.equal(p.version, 1);
  assert.equal(p.allow.length, 8);
  assert.equal(p.deny.length, 1);
  assert.deepEqual(p.allow[0], {
    list: 'allow',
    index: 0,
    hostText: 'api.anthropic.com',
    host: 'api.anthropic.com',
    kind: 'exact',
    intercept: true,
    private: false,
    disabled: false,
    pos: { line: 3, col: 5, endLine: 3, endCol: 28 },
  });
  assert.equal(p.allow[1].kind, 'wildcard');
  assert.equal(p.allow[1].host, 'npmjs.org');
  assert.equal(p.allow[1].hostText, '*.npmjs.org');
  assert.deepEqual(p.allow[2].methods, ['GET', 'HEAD']);
  assert.deepEqual(p.allow[2].paths, ['/my-org/**']);
  assert.equal(p.allow[2].pos.line, 5);
  assert.equal(p.allow[2].pos.endLine, 7);
  assert.equal(p.allow[3].port, 8443);
  assert.equal(p.allow[3].host, 'internal.example.com');
  assert.equal(p.allow[3].hostText, 'internal.example.com');
  assert.deepEqual(p.allow[4].auth, { scheme: 'Bearer', secret: 'github' });
  assert.equal(p.allow[5].intercept, false);
  assert.equal(p.allow[6].private, true);
  assert.equal(p.allow[7].disabled, true);
  assert.equal(p.allow[7].host, 'old.example.com');
  assert.equal(p.deny[0].list, 'deny');
  assert.equal(p.deny[0].host, 'gist.github.com');
  // JSON-serialisable: survives a round trip unchanged.
  assert.deepEqual(JSON.parse(JSON.stringify(p)), p);
});

test('parse: IP literal rules are canonical', () => {
  const p = parsePolicy(`version: 1
allow:
  - host: "[0:0::1]:8080"
    private: true
  - host: "::1"
    private: true
  - host: 0x7f.1
    private: true
  - host: "2130706433"
    private: true
`).policy!;
  assert.deepEqual(
    p.allow.map((r) => [r.kind, r.host, r.port]),
    [
      ['ip', '::1', 8080],
      ['ip', '::1', undefined],
      ['ip', '127.0.0.1', undefined],
      ['ip', '127.0.0.1', undefined],
    ],
  );
});

test('parse: empty "allow:" and "deny:" are empty lists', () => {
  const r = parsePolicy('version: 1\nallow:\n  # nothing yet\ndeny:\n');
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.policy, { version: 1, allow: [], deny: [] });
  assert.deepEqual(parsePolicy('version: 1\nallow: []\n').policy, { version: 1, allow: [], deny: [] });
});

test('parse: error messages name the place and say what is wrong', () => {
  const text = `version: 1
allow:
  - hots: api.example.com
  - host: "*.com"
  - host: x.example.com:70000
  - host: a.example.com
    methods: [GET, FETCH]
  - host: a.*.example.com
  - host: "*"
  - host: b.example.com
    paths: ["v1/**", "/x?y=1", "/a**"]
  - host: c.example.com
    intercept: "no"
  - host: https://d.example.com/path
  - host: e.example.com
    methods: GET
  - host: f.example.com
    port: 8080
  - host: g.example.com
    auth: { scheme: Bearer }
  - host: "*.co.uk"
  - host: "*.github.io"
  - host: h.example.com
    methods: []
  - api.example.com
deny:
  - host: 300.1.2.3
`;
  assert.deepEqual(errors(text), [
    '3:5 allow[0]: unknown field "hots" — did you mean "host"?',
    '4:11 allow[1].host: "*.com" would allow a whole public suffix (every site under ".com"); name the sites the agent needs instead',
    '5:11 allow[2].host: "x.example.com:70000": port 70000 is out of range (1-65535)',
    '7:20 allow[3].methods: "FETCH" is not an HTTP method',
    '8:11 allow[4].host: "a.*.example.com": a wildcard is only allowed as a leading "*." label, like "*.example.com"',
    '9:11 allow[5].host: "*" would allow every host; list the hosts the agent needs instead',
    '11:13 allow[6].paths: "v1/**" must start with "/"',
    '11:22 allow[6].paths: "/x?y=1" contains "?": paths are matched without the query string',
    '11:32 allow[6].paths: "/a**": "**" must be a whole path segment, like "/v1/**"',
    '13:16 allow[7].intercept must be true or false, not "no"',
    '14:11 allow[8].host: "https://d.example.com/path" contains a URL scheme; write only the host name, like "d.example.com"',
    '16:14 allow[9].methods must be a list, like [GET, HEAD]',
    '18:5 allow[10]: unknown field "port" — write the port in the host, like "host: example.com:8443"',
    '20:11 allow[11].auth needs both "scheme" and "secret", like { scheme: Bearer, secret: github }',
    '21:11 allow[12].host: "*.co.uk" would allow a whole public suffix (every site under ".co.uk"); name the sites the agent needs instead',
    '22:11 allow[13].host: "*.github.io" would allow a whole public suffix (every site under ".github.io"); name the sites the agent needs instead',
    '24:14 allow[14].methods is empty, so the entry would match nothing; remove "methods" to match any',
    '25:5 allow[15]: expected an entry like "- host: api.example.com", got a plain value',
    '27:11 deny[0].host: "300.1.2.3" is not a valid IP address',
  ]);
});

test('parse: more field errors', () => {
  assert.match(one('version: 1\nallow:\n  - host: a.example.com\n    auth: { scheme: Bearer, secret: "my-token!" }\n').message, /auth\.secret: "my-token!" must be a name made of letters, digits and "_"/);
  assert.match(one('version: 1\nallow:\n  - host: a.example.com\n    auth: { schem: Bearer, secret: x }\n').message, /allow\[0\]\.auth: unknown field "schem" — did you mean "scheme"\?/);
  assert.match(one('version: 1\nallow:\n  - host: a.example.com\n    intercept: false\n    paths: ["/x"]\n').message, /"intercept: false" cannot be combined with methods or paths/);
  assert.match(one('version: 1\nallow:\n  - host: a.example.com\n    intercept: false\n    auth: { scheme: Bearer, secret: x }\n').message, /cannot be combined with auth/);
  assert.match(one('version: 1\nallow:\n  - methods: [GET]\n').message, /allow\[0\]: missing "host:"/);
  assert.match(one('version: 1\nallow:\n  - host: "a.example.com/x"\n').message, /contains a path; write only the host here and put paths under "paths:"/);
  assert.match(one('version: 1\nallow:\n  - host: ""\n').message, /host is empty/);
  assert.match(one('version: 1\nallow:\n  - host: 8080\n').message, /"8080" looks like a port number; write the host and the port together, like "example.com:8080"/);
  assert.match(one('version: 1\nallow:\n  - host: a.example.com:http\n').message, /port "http" is not a number/);
  assert.match(one('version: 1\nallow:\n  - host: "*.127.0.0.1"\n').message, /wildcard cannot be used with an IP address/);
  assert.match(one('version: 1\nallow:\n  - host: a.example.com\n    methods: ["*"]\n').message, /leave "methods" out to allow any method/);
  assert.match(one('version: 1\nallow:\n  - host: a.example.com\n    methods: [CONNECT]\n').message, /"CONNECT" is how HTTPS tunnels open/);
  assert.match(one('version: 1\nallow:\n  - host: [a.example.com]\n').message, /allow\[0\]\.host must be a host name, not a list/);
  assert.match(one('version: 1\nallow:\n  host: a.example.com\n').message, /allow must be a list of entries, like "- host: api.example.com", not a mapping/);
  assert.match(one('version: 1\nalow:\n  - host: a.example.com\n').message, /unknown field "alow" — did you mean "allow"\?/);
  assert.match(one('version: 2\nallow: []\n').message, /version: 2 is not supported; this extension understands "version: 1"/);
  assert.match(one('version: "1"\nallow: []\n').message, /version: "1" is not supported/);
  assert.match(one('allow: []\n').message, /missing "version: 1"/);
  assert.match(one('- host: a.example.com\n').message, /the policy must be a mapping with "version", "allow" and "deny", not a list/);
  assert.match(one('just words\n').message, /the policy must be a mapping/);
});

test('parse: empty files and YAML syntax errors have positions', () => {
  for (const t of ['', '   \n\n', '# only a comment\n']) {
    const e = one(t);
    assert.match(e.message, /^policy is empty/);
    assert.deepEqual([e.pos.line, e.pos.col], [1, 1]);
  }
  const bad = parsePolicy('version: 1\nallow:\n  - host: a.example.com\n   - host: b.example.com\n');
  assert.ok(bad.errors.length >= 1);
  assert.match(bad.errors[0].message, /^YAML syntax error: /);
  assert.equal(bad.errors[0].pos.line, 4);
  const flow = parsePolicy('version: 1\nallow: [\n');
  assert.match(flow.errors[0].message, /^YAML syntax error: /);
  const dup = parsePolicy('version: 1\nallow: []\nallow: []\n');
  assert.match(dup.errors[0].message, /YAML syntax error: Map keys must be unique/);
  assert.equal(dup.errors[0].pos.line, 3);
  const tab = parsePolicy('version: 1\nallow:\n\t- host: a.example.com\n');
  assert.ok(tab.errors.length >= 1);
  assert.equal(tab.errors[0].pos.line, 3);
  const two = parsePolicy('version: 1\n---\nversion: 1\n');
  assert.match(two.errors[0].message, /multiple documents/);
});

test('parse: warnings for odd but valid things', () => {
  assert.deepEqual(
    warnings(`version: 1
allow:
  - host: a.example.com
  - host: A.example.com.
  - host: b.example.com
    methods: [GET]
  - host: x.shop.example.com
  - host: "*.sub.shop.example.com"
  - host: c.example.com:8443
  - host: c.example.com:443
  - host: "*.lan"
  - host: 10.0.0.1
deny:
  - host: b.example.com
    methods: [GET, POST]
  - host: "*.shop.example.com"
  - host: c.example.com
    private: true
`),
    [
      '4:5 allow[1] is the same as allow[0]; one of them can go',
      '5:5 allow[2] never applies: deny[0] blocks everything it would allow',
      '7:5 allow[3] never applies: deny[1] blocks everything it would allow',
      '8:5 allow[4] never applies: deny[1] blocks everything it would allow',
      '10:5 allow[6] never applies: deny[2] blocks everything it would allow',
      '11:11 allow[7].host: "*.lan" matches every host under the top-level domain ".lan"',
      '12:11 allow[8].host: 10.0.0.1 is a private address; add "private: true" or the proxy will refuse to connect to it',
      '18:5 deny[2].private has no effect on a deny entry',
    ],
  );
  // Disabled duplicates and partial overlaps do not warn.
  assert.deepEqual(
    warnings(`version: 1
allow:
  - host: a.example.com
  - host: a.example.com
    disabled: true
  - host: b.example.com
deny:
  - host: b.example.com
    paths: ["/admin/**"]
  - host: a.example.com:8443
`),
    [],
  );
});

test('parse: aliases and anchors resolve', () => {
  const r = parsePolicy(`version: 1
allow:
  - &base
    host: a.example.com
    methods: &m [GET]
  - host: b.example.com
    methods: *m
`);
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.policy!.allow[1].methods, ['GET']);
});

test('parse: wildcards over any Public Suffix List entry are refused, shared hosting (private section) included', () => {
  for (const parent of ['co.ke', 'blob.core.windows.net', 's3.us-east-2.amazonaws.com', 'compute.amazonaws.com', 'pages.dev', 'com.br']) {
    const r = parsePolicy(`version: 1\nallow:\n  - host: "*.${parent}"\n`);
    assert.equal(r.policy, undefined, parent);
    assert.match(r.errors[0].message, new RegExp(`would allow a whole public suffix \\(every site under "\\.${parent.replace(/\./g, '\\.')}"\\)`), parent);
  }
  // One owner's domain under a shared suffix, an unknown top-level domain's second level, a company domain: fine.
  for (const parent of ['me.github.io', 'uxtrial.test', 'amazonaws.com', 'npmjs.org']) {
    assert.ok(parsePolicy(`version: 1\nallow:\n  - host: "*.${parent}"\n`).policy, parent);
  }
});

test('parse: deny entries may name a public suffix; ambiguous and loopback hosts warn', () => {
  const r = parsePolicy('version: 1\nallow:\n  - host: localhost:3000\n  - host: "::1:8080"\n    private: true\ndeny:\n  - host: "*.zip"\n  - host: "*.co.uk"\n');
  assert.deepEqual(r.errors, []);
  assert.deepEqual(
    r.warnings.map((w) => `${w.pos.line}:${w.pos.col} ${w.message}`),
    [
      '3:11 allow[0].host: localhost resolves to a loopback address; add "private: true" or the proxy will refuse to connect to it',
      '4:11 allow[1].host: "::1:8080" is read as the IPv6 address ::1:8080; for a port write it in brackets, like "[::1]:8080"',
      '7:11 deny[0].host: "*.zip" matches every host under the top-level domain ".zip"',
    ],
  );
  assert.equal(r.policy!.deny[1].host, 'co.uk');
});

test('parse: path globs are normalised like request paths, with a warning when that changes them', () => {
  const r = parsePolicy('version: 1\nallow:\n  - host: a.example.com\n    paths: ["/a/../../b/**", "/%7euser/*", "/ok/**"]\n');
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.policy!.allow[0].paths, ['/b/**', '/~user/*', '/ok/**']);
  assert.deepEqual(
    r.warnings.map((w) => `${w.pos.line}:${w.pos.col} ${w.message}`),
    ['4:13 allow[0].paths: "/a/../../b/**" is matched as "/b/**" (paths are normalised before matching)', '4:30 allow[0].paths: "/%7euser/*" is matched as "/~user/*" (paths are normalised before matching)'],
  );
});

test('parse: an unclosed [ or { is reported on the line where it opens, not where the parser gave up', () => {
  const cases: Array<[string, number, string]> = [
    ['version: 1\nallow:\n  - host: a.test\n    methods: [GET, POST\n  - host: b.test\n', 4, '['],
    ['version: 1\nallow: [a.test, "b]" # ] in a comment\n', 2, '['],
    ['version: 1\nallow:\n  - {host: a.test\n', 3, '{'],
  ];
  for (const [text, line, bracket] of cases) {
    const r = parsePolicy(text);
    assert.equal(r.policy, undefined);
    const e = r.errors[0];
    assert.equal(e.pos.line, line, `${JSON.stringify(text)}: ${e.message} at ${e.pos.line}`);
    assert.equal(text.split('\n')[line - 1][e.pos.col - 1], bracket, 'the column is the bracket');
    assert.match(e.message, new RegExp(`this \\${bracket} is never closed`));
  }
});
