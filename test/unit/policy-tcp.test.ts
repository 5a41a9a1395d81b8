// Raw TCP rules (`tcp: [22]`): the schema and its errors, the decision (decideTcp), that they allow no HTTP, and
// the quick fix "Allow TCP 22 to github.com" written into the file and read back.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { addAllow, allowChoices, decide, decideTcp, entryKey, parsePolicy, TCP_METHOD } from '../../src/policy';
import { fixChoices, stillBlocked } from '../../src/extension/logic/fixes';

function policyOf(text: string) {
  const r = parsePolicy(text);
  assert.deepEqual(r.errors, [], JSON.stringify(r.errors));
  return r.policy!;
}

function errorsOf(entry: string): string[] {
  return parsePolicy(`version: 1\nallow:\n${entry}`).errors.map((e) => e.message);
}

describe('tcp rules: the schema', () => {
  test('a tcp entry reads into a rule with its ports (deduplicated), its key names the ports', () => {
    const p = policyOf(`version: 1\nallow:\n  - host: github.com\n    tcp: [22, 22, 2222]\n  - host: "*.db.example.com"\n    tcp: [5432]\n    private: true\n`);
    assert.deepEqual(p.allow[0].tcp, [22, 2222]);
    assert.equal(entryKey(p.allow[0]), 'allow github.com tcp 22,2222');
    assert.equal(p.allow[1].kind, 'wildcard');
    assert.equal(p.allow[1].private, true);
    // A tcp entry and an HTTP entry for the same host are not duplicates.
    assert.deepEqual(parsePolicy(`version: 1\nallow:\n  - host: github.com\n  - host: github.com\n    tcp: [22]\n`).errors, []);
  });

  test('bad ports and combinations are errors in plain words', () => {
    const cases: Array<[string, RegExp]> = [
      ['  - host: github.com\n    tcp: [0]\n', /"0" is not a port/],
      ['  - host: github.com\n    tcp: [70000]\n', /"70000" is not a port/],
      ['  - host: github.com\n    tcp: [ssh]\n', /"ssh" is not a port/],
      ['  - host: github.com\n    tcp: 22\n', /must be a list/],
      ['  - host: github.com\n    tcp: [443]\n', /port 443 is HTTPS, decided by host rules/],
      ['  - host: github.com\n    tcp: [80]\n', /port 80 is HTTP/],
      ['  - host: github.com\n    tcp: [53]\n', /port 53 is the cage's own DNS/],
      ['  - host: github.com\n    tcp: [3128]\n', /port 3128 is the egress proxy itself/],
      ['  - host: github.com\n    tcp: [22]\n    paths: ["/x"]\n', /"tcp" cannot be combined with methods or paths/],
      ['  - host: github.com\n    tcp: [22]\n    methods: [GET]\n', /"tcp" cannot be combined with methods or paths/],
      ['  - host: github.com\n    tcp: [22]\n    auth: { scheme: Bearer, secret: gh }\n', /"tcp" cannot be combined with auth/],
      ['  - host: github.com\n    tcp: [22]\n    intercept: false\n', /"tcp" cannot be combined with "intercept"/],
      ['  - host: github.com:22\n    tcp: [22]\n', /write the ports in "tcp" only/],
      ['  - host: 10.0.0.5\n    tcp: [22]\n    private: true\n', /names a host name/],
    ];
    for (const [entry, re] of cases) {
      const errs = errorsOf(entry);
      assert.equal(errs.length, 1, `${entry}: ${JSON.stringify(errs)}`);
      assert.match(errs[0], re, entry);
    }
    assert.match(parsePolicy(`version: 1\ndeny:\n  - host: github.com\n    tcp: [22]\n`).errors[0].message, /deny entries take no "tcp"/);
  });
});

describe('tcp rules: the decision', () => {
  const p = policyOf(`version: 1
allow:
  - host: github.com
    tcp: [22]
  - host: "*.db.example.com"
    tcp: [5432]
  - host: api.example.com
deny:
  - host: evil.db.example.com
`);

  test('decideTcp: the port and host must match a tcp entry; a deny without methods or paths wins on every port', () => {
    assert.equal(decideTcp('github.com', 22, p).action, 'allow');
    assert.equal(decideTcp('GitHub.com.', 22, p).rule, p.allow[0]);
    assert.equal(decideTcp('github.com', 2222, p).reason, 'no-matching-rule');
    assert.match(decideTcp('gitlab.com', 22, p).message, /add "- host: gitlab\.com" with "tcp: \[22\]"/);
    assert.equal(decideTcp('pg.db.example.com', 5432, p).action, 'allow');
    assert.equal(decideTcp('evil.db.example.com', 5432, p).reason, 'denied-by-rule');
    // An HTTP entry allows no raw TCP, not even on its own ports.
    assert.equal(decideTcp('api.example.com', 443, p).action, 'deny');
    assert.equal(decideTcp('api.example.com', 22, p).action, 'deny');
    assert.equal(decideTcp('github.com', 22, undefined).reason, 'policy-invalid');
  });

  test('a tcp entry allows no HTTP: requests and CONNECTs to its host are decided as if it were not there', () => {
    assert.equal(decide({ host: 'github.com', port: 443 }, p).reason, 'no-matching-rule');
    assert.equal(decide({ host: 'github.com', port: 22 }, p).reason, 'no-matching-rule');
    assert.equal(decide({ host: 'github.com', port: 443, method: 'GET', path: '/' }, p).action, 'deny');
    assert.equal(decide({ host: 'api.example.com', port: 443 }, p).action, 'allow');
  });
});

describe('tcp rules: the quick fix', () => {
  test('a TCP block offers "Allow TCP 22 to github.com" (and the parent domain), which writes a tcp entry that cures it', () => {
    const choices = allowChoices({ host: 'ssh.github.example.com', port: 22, method: TCP_METHOD });
    assert.deepEqual(choices.map((c) => c.title), ['Allow TCP 22 to ssh.github.example.com', 'Allow TCP 22 to *.github.example.com']);
    assert.deepEqual(allowChoices({ host: 'github.com', port: 22, method: TCP_METHOD }).map((c) => c.title), ['Allow TCP 22 to github.com']);
    const text = 'version: 1\nallow:\n  - host: api.example.com   # keep me\n';
    const fix = fixChoices({ host: 'github.com', port: 22, method: TCP_METHOD, path: '', reason: 'no-matching-rule' }, policyOf(text));
    assert.equal(fix[0].title, 'Allow TCP 22 to github.com');
    const edited = addAllow(text, fix[0].spec).text;
    assert.equal(edited, 'version: 1\nallow:\n  - host: api.example.com   # keep me\n  - host: github.com\n    tcp: [22]\n');
    const after = policyOf(edited);
    assert.equal(decideTcp('github.com', 22, after).action, 'allow');
    assert.equal(stillBlocked({ host: 'github.com', port: 22, method: TCP_METHOD, reason: 'no-matching-rule' }, after), false);
    assert.equal(stillBlocked({ host: 'github.com', port: 2222, method: TCP_METHOD, reason: 'no-matching-rule' }, after), true);
    // Applying the same fix again adds nothing.
    assert.equal(addAllow(edited, fix[0].spec).text, edited);
    // An HTTP fix for the same host is another entry.
    assert.notEqual(addAllow(edited, { host: 'github.com' }).text, edited);
  });

  test('a private-address TCP block: the fix keeps the tcp ports and adds private: true', () => {
    const p = policyOf('version: 1\nallow:\n  - host: db.internal.example.com\n    tcp: [5432]\n');
    const fix = fixChoices({ host: 'db.internal.example.com', port: 5432, method: TCP_METHOD, reason: 'private-address', ruleKey: entryKey(p.allow[0]) }, p);
    assert.equal(fix.length, 1);
    assert.deepEqual(fix[0].spec, { host: 'db.internal.example.com', tcp: [5432], private: true });
  });
});
