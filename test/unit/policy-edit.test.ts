// Comment-preserving edits: exact expected text, untouched parts byte-for-byte.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addAllow, addDeny, allowChoices, decide, moveEntry, parsePolicy, removeEntry, setDisabled, starterPolicy, updateEntry } from '../../src/policy';

const BASE = `# Team policy — keep this comment
version: 1   # schema

allow:
  # The model API
  - host: api.anthropic.com   # needed
  - host: github.com
    methods: [GET, HEAD]
    paths: ["/my-org/**"]  # our org only

  # Registry
  - host: '*.npmjs.org'
deny:
  - host: gist.github.com  # no pastes
# trailing comment
`;

function valid(text: string): void {
  const r = parsePolicy(text);
  assert.deepEqual(r.errors, [], `edited text must stay valid:\n${text}`);
}

test('addAllow appends after the last entry, keeping every other byte', () => {
  const out = addAllow(BASE, { host: 'pypi.org' }).text;
  assert.equal(
    out,
    BASE.replace("  - host: '*.npmjs.org'\n", "  - host: '*.npmjs.org'\n  - host: pypi.org\n"),
  );
  valid(out);
  const wild = addAllow(BASE, { host: '*.pythonhosted.org', methods: ['get', 'HEAD'], paths: ['/packages/**', '/simple/./x/..'] }).text;
  assert.equal(
    wild,
    BASE.replace(
      "  - host: '*.npmjs.org'\n",
      `  - host: '*.npmjs.org'\n  - host: "*.pythonhosted.org"\n    methods: [GET, HEAD]\n    paths: ["/packages/**", "/simple/"]\n`,
    ),
  );
  valid(wild);
  const port = addAllow(BASE, { host: 'internal.example.com', port: 8443, private: true, intercept: false }).text;
  assert.ok(port.includes("  - host: '*.npmjs.org'\n  - host: internal.example.com:8443\n    private: true\n    intercept: false\ndeny:"), port);
  valid(port);
  const v6 = addAllow(BASE, { host: '::1', port: 8080, private: true }).text;
  assert.ok(v6.includes('  - host: "[::1]:8080"\n    private: true\n'), v6);
  valid(v6);
});

test('addAllow does not duplicate an equivalent entry', () => {
  assert.equal(addAllow(BASE, { host: 'API.anthropic.com.' }).text, BASE);
  assert.equal(addAllow(BASE, { host: '*.NPMJS.org' }).text, BASE);
  assert.equal(addAllow(BASE, { host: 'github.com', methods: ['head', 'GET'], paths: ['/my-org/**'] }).text, BASE);
  // Different scope: a new entry.
  assert.notEqual(addAllow(BASE, { host: 'github.com' }).text, BASE);
  // A disabled equivalent is re-enabled instead of duplicated.
  const disabled = setDisabled(BASE, 'allow', 0, true).text;
  assert.equal(addAllow(disabled, { host: 'api.anthropic.com' }).text, BASE);
  // private requested on an existing entry: the flag is set on it.
  assert.equal(
    addAllow(BASE, { host: 'api.anthropic.com', private: true }).text,
    BASE.replace('  - host: api.anthropic.com   # needed\n', '  - host: api.anthropic.com   # needed\n    private: true\n'),
  );
});

test('addDeny, removeEntry, setDisabled, updateEntry, moveEntry: exact text', () => {
  const deny = addDeny(BASE, { host: 'paste.example.com', methods: ['POST'] }).text;
  assert.equal(deny, BASE.replace('  - host: gist.github.com  # no pastes\n', '  - host: gist.github.com  # no pastes\n  - host: paste.example.com\n    methods: [POST]\n'));
  valid(deny);

  const removed = removeEntry(BASE, 'allow', 1).text;
  assert.equal(removed, BASE.replace('  - host: github.com\n    methods: [GET, HEAD]\n    paths: ["/my-org/**"]  # our org only\n', ''));
  valid(removed);
  const removedFirst = removeEntry(BASE, 'allow', 0).text;
  assert.equal(removedFirst, BASE.replace('  - host: api.anthropic.com   # needed\n', ''));
  const removedDeny = removeEntry(BASE, 'deny', 0).text;
  assert.equal(removedDeny, BASE.replace('  - host: gist.github.com  # no pastes\n', ''));
  valid(removedDeny);
  assert.deepEqual(parsePolicy(removedDeny).policy?.deny, []);

  const off = setDisabled(BASE, 'allow', 1, true).text;
  assert.equal(off, BASE.replace('    paths: ["/my-org/**"]  # our org only\n', '    paths: ["/my-org/**"]  # our org only\n    disabled: true\n'));
  assert.equal(parsePolicy(off).policy?.allow[1].disabled, true);
  assert.equal(setDisabled(off, 'allow', 1, false).text, BASE);
  assert.equal(setDisabled(BASE, 'allow', 1, false).text, BASE, 're-enabling an enabled entry changes nothing');
  const offFalse = BASE.replace('  - host: api.anthropic.com   # needed\n', '  - host: api.anthropic.com   # needed\n    disabled: false # for now\n');
  assert.equal(setDisabled(offFalse, 'allow', 0, true).text, offFalse.replace('disabled: false # for now', 'disabled: true # for now'));

  const upd = updateEntry(BASE, 'allow', 1, { host: 'github.com', methods: ['GET'], paths: ['/my-org/**', '/other-org/**'] }).text;
  assert.equal(upd, BASE.replace('    methods: [GET, HEAD]\n    paths: ["/my-org/**"]  # our org only\n', '    methods: [GET]\n    paths: ["/my-org/**", "/other-org/**"]  # our org only\n'));
  valid(upd);
  const upd2 = updateEntry(BASE, 'allow', 1, { host: 'www.github.com', port: 8443 }).text;
  assert.equal(upd2, BASE.replace('  - host: github.com\n    methods: [GET, HEAD]\n    paths: ["/my-org/**"]  # our org only\n', '  - host: www.github.com:8443\n'));
  valid(upd2);
  const upd3 = updateEntry(BASE, 'allow', 0, { host: 'api.anthropic.com', methods: ['POST'] }).text;
  assert.equal(upd3, BASE.replace('  - host: api.anthropic.com   # needed\n', '  - host: api.anthropic.com   # needed\n    methods: [POST]\n'));

  const moved = moveEntry(BASE, 'allow', 1).text;
  assert.equal(
    moved,
    BASE.replace('  - host: github.com\n    methods: [GET, HEAD]\n    paths: ["/my-org/**"]  # our org only\n', '').replace(
      '  - host: gist.github.com  # no pastes\n',
      '  - host: gist.github.com  # no pastes\n  - host: github.com\n    methods: [GET, HEAD]\n    paths: ["/my-org/**"]  # our org only\n',
    ),
  );
  valid(moved);
  const back = moveEntry(moved, 'deny', 1).text;
  valid(back);
  assert.equal(parsePolicy(back).policy?.allow[2].host, 'github.com');
  assert.deepEqual(parsePolicy(back).policy?.allow[2].paths, ['/my-org/**']);
});

test('edits of an empty or missing file start from the starter policy', () => {
  for (const t of [undefined, '', '  \n']) {
    const out = addAllow(t, { host: 'api.example.com' }).text;
    assert.ok(out.startsWith(starterPolicy().split('allow:')[0]), 'keeps the starter header');
    assert.ok(out.includes('allow:\n  - host: api.example.com\n'), out);
    valid(out);
    const r = parsePolicy(out);
    assert.deepEqual(r.policy?.allow.map((x) => x.host), ['api.example.com']);
  }
  const denyOnly = addDeny(undefined, { host: 'gist.github.com' }).text;
  assert.deepEqual(parsePolicy(denyOnly).policy?.deny.map((x) => x.host), ['gist.github.com']);
  assert.deepEqual(parsePolicy(denyOnly).policy?.allow, []);
});

test('starterPolicy: valid, commented, presets seed hosts', () => {
  const plain = starterPolicy();
  const r = parsePolicy(plain);
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.warnings, []);
  assert.deepEqual(r.policy, { version: 1, allow: [], deny: [] });
  assert.match(plain, /^# /);
  assert.match(plain, /# - host: api\.example\.com/);
  assert.ok(!plain.includes('allow: []'));
  const preset = starterPolicy({
    title: 'Caged Agent policy for Claude Code',
    hosts: [
      { host: 'api.anthropic.com', comment: 'model API' },
      { host: 'statsig.anthropic.com' },
      { host: '*.sentry.io', comment: 'error reports' },
      { host: 'registry.npmjs.org' },
    ],
  });
  assert.match(preset, /^# Caged Agent policy for Claude Code\n/);
  assert.ok(preset.includes('  - host: api.anthropic.com  # model API\n  - host: statsig.anthropic.com\n  - host: "*.sentry.io"  # error reports\n  - host: registry.npmjs.org\n'), preset);
  const p = parsePolicy(preset);
  assert.deepEqual(p.errors, []);
  assert.deepEqual(p.policy?.allow.map((x) => x.hostText), ['api.anthropic.com', 'statsig.anthropic.com', '*.sentry.io', 'registry.npmjs.org']);
  // Adding to a preset goes after the seeded hosts, before the commented example.
  const added = addAllow(preset, { host: 'pypi.org' }).text;
  assert.ok(added.includes('  - host: registry.npmjs.org\n  - host: pypi.org\n  # - host: api.example.com'), added);
});

test('edit layouts: empty lists, flow lists, missing lists, no trailing newline, CRLF, zero-indent lists', () => {
  assert.equal(addAllow('version: 1\nallow:\ndeny:\n', { host: 'a.example.com' }).text, 'version: 1\nallow:\n  - host: a.example.com\ndeny:\n');
  assert.equal(addAllow('version: 1\nallow: []  # none yet\n', { host: 'a.example.com' }).text, 'version: 1\nallow:  # none yet\n  - host: a.example.com\n');
  assert.equal(addAllow('version: 1\nallow: ~\n', { host: 'a.example.com' }).text, 'version: 1\nallow:\n  - host: a.example.com\n');
  assert.equal(addDeny('version: 1\nallow: []\n', { host: 'a.example.com' }).text, 'version: 1\nallow: []\ndeny:\n  - host: a.example.com\n');
  assert.equal(addAllow('version: 1\nallow:\n  - host: a.example.com', { host: 'b.example.com' }).text, 'version: 1\nallow:\n  - host: a.example.com\n  - host: b.example.com');
  assert.equal(addAllow('version: 1', { host: 'b.example.com' }).text, 'version: 1\nallow:\n  - host: b.example.com\n');
  const crlf = 'version: 1\r\nallow:\r\n  - host: a.example.com # x\r\ndeny: []\r\n';
  const crlfOut = addAllow(crlf, { host: 'b.example.com', methods: ['GET'] }).text;
  assert.equal(crlfOut, 'version: 1\r\nallow:\r\n  - host: a.example.com # x\r\n  - host: b.example.com\r\n    methods: [GET]\r\ndeny: []\r\n');
  assert.equal(removeEntry(crlfOut, 'allow', 0).text, 'version: 1\r\nallow:\r\n  - host: b.example.com\r\n    methods: [GET]\r\ndeny: []\r\n');
  assert.equal(setDisabled(crlf, 'allow', 0, true).text, 'version: 1\r\nallow:\r\n  - host: a.example.com # x\r\n    disabled: true\r\ndeny: []\r\n');
  const zero = 'version: 1\nallow:\n- host: a.example.com\n  methods: [GET]\n';
  assert.equal(addAllow(zero, { host: 'b.example.com', paths: ['/x'] }).text, zero + '- host: b.example.com\n  paths: ["/x"]\n');
  const wide = 'version: 1\nallow:\n    -   host: a.example.com\n        methods: [GET]\n';
  assert.equal(addAllow(wide, { host: 'b.example.com', paths: ['/x'] }).text, wide + '    -   host: b.example.com\n        paths: ["/x"]\n');
  // Flow-style root: falls back to re-rendering, still valid.
  const flow = addAllow('{version: 1, allow: []}', { host: 'a.example.com' }).text;
  assert.deepEqual(parsePolicy(flow).policy?.allow.map((r) => r.host), ['a.example.com']);
  const flowList = removeEntry('version: 1\nallow: [{host: a.example.com}, {host: b.example.com}] # keep\n', 'allow', 0).text;
  assert.deepEqual(parsePolicy(flowList).policy?.allow.map((r) => r.host), ['b.example.com']);
  assert.match(flowList, /# keep/);
});

test('edits refuse invalid YAML and missing entries with clear errors', () => {
  assert.throws(() => addAllow('version: 1\nallow: [\n', { host: 'a.example.com' }), /not valid YAML \(line \d+, column \d+: .*\); fix it before editing/);
  assert.throws(() => addAllow('- a\n- b\n', { host: 'a.example.com' }), /must be a mapping/);
  assert.throws(() => removeEntry(BASE, 'allow', 9), /There is no allow\[9\]/);
  assert.throws(() => setDisabled(BASE, 'deny', -1, true), /There is no deny\[-1\]/);
  assert.throws(() => addAllow(BASE, { host: '*.com' }), /public suffix/);
  assert.throws(() => addAllow(BASE, { host: 'a.example.com', port: 70000 }), /out of range/);
  assert.throws(() => addAllow(BASE, { host: 'a.example.com', paths: ['nope'] }), /must start with "\/"/);
  assert.throws(() => addAllow('version: 1\nallow: 5\n', { host: 'a.example.com' }), /"allow" in the policy file is not a list/);
});

test('edits keep schema-invalid files editable (structure only)', () => {
  const broken = 'version: 1\nallow:\n  - hots: typo.example.com\n';
  const out = addAllow(broken, { host: 'a.example.com' }).text;
  assert.equal(out, broken + '  - host: a.example.com\n');
  assert.equal(removeEntry(out, 'allow', 0).text, 'version: 1\nallow:\n  - host: a.example.com\n');
});

test('allowChoices: narrowest first — method+path, path, exact, parent', () => {
  assert.deepEqual(allowChoices({ host: 'API.Example.com.', port: 443, method: 'get', path: '/v1/messages/123?x=1' }), [
    { title: 'Allow GET /v1/** on api.example.com', spec: { host: 'api.example.com', methods: ['GET'], paths: ['/v1/**'] }, scope: 'method-path' },
    { title: 'Allow /v1/** on api.example.com (any method)', spec: { host: 'api.example.com', paths: ['/v1/**'] }, scope: 'path' },
    { title: 'Allow api.example.com', spec: { host: 'api.example.com' }, scope: 'exact' },
    { title: 'Allow *.example.com', spec: { host: '*.example.com' }, scope: 'parent' },
  ]);
  assert.deepEqual(
    allowChoices({ host: 'example.com', port: 8443 }).map((c) => [c.title, c.spec]),
    [['Allow example.com:8443', { host: 'example.com', port: 8443 }]],
  );
  assert.deepEqual(
    allowChoices({ host: 'a.b.example.co.uk', port: 80, method: 'GET', path: '/' }).map((c) => c.title),
    ['Allow a.b.example.co.uk', 'Allow *.b.example.co.uk'],
  );
  assert.deepEqual(allowChoices({ host: 'example.co.uk', port: 443 }).map((c) => c.title), ['Allow example.co.uk']);
  assert.deepEqual(allowChoices({ host: 'me.github.io', port: 443 }).map((c) => c.title), ['Allow me.github.io']);
  // The Public Suffix List's private section (shared hosting: anyone can have a name there) and ICANN suffixes
  // the old built-in list did not know: never offered as a wildcard.
  for (const host of ['acct.blob.core.windows.net', 'bucket.s3.us-east-2.amazonaws.com', 'shop.co.ke', 'x.azurestaticapps.net', 'app.fly.dev']) {
    assert.deepEqual(allowChoices({ host, port: 443 }).map((c) => c.title), [`Allow ${host}`], host);
  }
  // A registrable domain under a shared-hosting suffix is one owner's: its wildcard is offered.
  assert.deepEqual(allowChoices({ host: 'api.me.github.io', port: 443 }).map((c) => c.title), ['Allow api.me.github.io', 'Allow *.me.github.io']);
  assert.deepEqual(
    allowChoices({ host: '::1', port: 8080, method: 'POST', path: '/favicon.ico' }).map((c) => [c.title, c.spec]),
    [
      ['Allow POST /favicon.ico on [::1]:8080', { host: '[::1]', port: 8080, methods: ['POST'], paths: ['/favicon.ico'] }],
      ['Allow /favicon.ico on [::1]:8080 (any method)', { host: '[::1]', port: 8080, paths: ['/favicon.ico'] }],
      ['Allow [::1]:8080', { host: '[::1]', port: 8080 }],
    ],
  );
  assert.deepEqual(allowChoices({ host: '127.1', port: 80, method: 'CONNECT', path: '/x' }).map((c) => c.title), ['Allow 127.0.0.1']);
  assert.deepEqual(allowChoices({ host: 'bad host', port: 443 }), []);
  for (const c of allowChoices({ host: 'x.y.example.org', port: 443, method: 'GET', path: '/a/b' })) assert.match(c.title, /^Allow /);
});

test('allowChoices + addAllow: every choice, once applied, allows the blocked request', () => {
  const blocks = [
    { host: 'api.example.com', port: 443, method: 'GET', path: '/v1/messages' },
    { host: 'deep.sub.example.org', port: 8443, method: 'POST', path: '/upload/a/b?x=1' },
    { host: '[::1]', port: 8080, method: 'GET', path: '/' },
    { host: '10.1.2.3', port: 443, method: 'DELETE', path: '/x' },
  ];
  for (const b of blocks) {
    assert.equal(decide(b, parsePolicy(starterPolicy()).policy).action, 'deny');
    for (const c of allowChoices(b)) {
      const text = addAllow(starterPolicy(), c.spec).text;
      const r = parsePolicy(text);
      assert.deepEqual(r.errors, [], text);
      const d = decide(b, r.policy);
      assert.equal(d.action, 'allow', `${c.title} must allow ${JSON.stringify(b)}: ${d.message}`);
    }
  }
});

test('edits: removing the first field of an entry pulls the next one up; moving into a missing list', () => {
  const t = 'version: 1\nallow:\n  - private: true  # lab box\n    host: lab.example.com\n';
  assert.equal(
    updateEntry(t, 'allow', 0, { host: 'lab.example.com', private: false }).text,
    'version: 1\nallow:\n  - host: lab.example.com\n',
  );
  const noDeny = 'version: 1\nallow:\n  - host: a.example.com  # A\n    methods: [GET]\n  - host: b.example.com\n';
  assert.equal(
    moveEntry(noDeny, 'allow', 0).text,
    'version: 1\nallow:\n  - host: b.example.com\ndeny:\n  - host: a.example.com  # A\n    methods: [GET]\n',
  );
  assert.equal(addDeny(BASE, { host: '*.zip' }).text, BASE.replace('  - host: gist.github.com  # no pastes\n', '  - host: gist.github.com  # no pastes\n  - host: "*.zip"\n'));
  assert.equal(addDeny(BASE, { host: '*.com' }).text.includes('  - host: "*.com"\n'), true);
});

test('updateEntry keeps flags the spec does not mention; hosts may carry their port', () => {
  const t = 'version: 1\nallow:\n  - host: lab.example.com  # lab\n    private: true\n    intercept: false\n';
  assert.equal(updateEntry(t, 'allow', 0, { host: 'lab2.example.com:8443' }).text, t.replace('lab.example.com', 'lab2.example.com:8443'));
  assert.equal(updateEntry(t, 'allow', 0, { host: 'lab.example.com', private: false, intercept: true }).text, 'version: 1\nallow:\n  - host: lab.example.com  # lab\n');
  assert.equal(updateEntry(t, 'allow', 0, { host: 'lab.example.com:1', port: 8443 }).text, t.replace('lab.example.com', 'lab.example.com:8443'));
  assert.equal(updateEntry(t, 'allow', 0, { host: '::1' }).text, t.replace('lab.example.com', '"[::1]"'));
  assert.equal(updateEntry(t, 'allow', 0, { host: '[::1]:8080' }).text, t.replace('lab.example.com', '"[::1]:8080"'));
});
