// The contracts every room shares, each defined once: splitHostPort (and the three readers built on it),
// entryKey (the rule as data), secretEnvName (the proxy's secret variables), policyHash, the default policy path.
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { describe, it } from 'node:test';
import { DEFAULT_POLICY_PATH, decide, entryKey, parseHostPattern, parsePolicy, secretEnvName, splitHostPort } from '../../src/policy';
import { parseListen, parseSecretsFile } from '../../src/proxy/config';
import { parseAuthority } from '../../src/proxy/target';
import { policyHash } from '../../src/shared/policyHash';

describe('splitHostPort', () => {
  it('splits every form the rooms read', () => {
    const cases: Array<[string, ReturnType<typeof splitHostPort>]> = [
      ['api.example.com', { host: 'api.example.com' }],
      ['api.example.com:8443', { host: 'api.example.com', port: '8443' }],
      ['host:', { host: 'host', port: '' }],
      [':3128', { host: '', port: '3128' }],
      ['[::1]', { host: '[::1]' }],
      ['[::1]:8443', { host: '[::1]', port: '8443' }],
      ['::1', { host: '::1' }], // a bare IPv6 literal has no port
      ['2001:db8::1:443', { host: '2001:db8::1:443' }],
      ['[::1', { error: 'no-closing-bracket' }],
      ['[::1]8443', { error: 'text-after-bracket' }],
    ];
    for (const [text, want] of cases) assert.deepEqual(splitHostPort(text), want, text);
  });

  it('authorities refuse what policies accept: a bare IPv6 literal, userinfo, a bad port', () => {
    assert.deepEqual(parseAuthority('API.Example.com:443', undefined), { host: 'api.example.com', port: 443 });
    assert.deepEqual(parseAuthority('[::1]', 443), { host: '::1', port: 443 });
    assert.deepEqual(parseAuthority('127.1:80', undefined), { host: '127.0.0.1', port: 80 });
    for (const bad of ['::1', '[::1]x', 'u@host:443', 'host:', 'host:0', 'host:65536', 'host:123456', 'host:+1', 'host']) assert.equal(parseAuthority(bad, undefined), undefined, bad);
    const p = parseHostPattern('::1');
    assert.ok(!('error' in p) && p.kind === 'ip' && p.host === '::1' && p.port === undefined);
  });

  it('listen addresses: HOST:PORT, [v6]:PORT, :PORT (every address); the port is required', () => {
    assert.deepEqual(parseListen('127.0.0.1:3128'), { host: '127.0.0.1', port: 3128 });
    assert.deepEqual(parseListen(' [::1]:3128 '), { host: '::1', port: 3128 });
    assert.deepEqual(parseListen(':3128'), { host: '0.0.0.0', port: 3128 });
    assert.deepEqual(parseListen('localhost:80'), { host: 'localhost', port: 80 });
    for (const bad of ['127.0.0.1', '::1:3128', '[]:80', '[x]:80', 'a]:80', 'h:99999', 'h:', '[::1]']) assert.equal(parseListen(bad), undefined, bad);
  });
});

describe('entryKey', () => {
  const rulesOf = (text: string) => {
    const p = parsePolicy(text).policy!;
    return [...p.allow, ...p.deny];
  };

  it('names list, host pattern, port, methods and paths, in a fixed order', () => {
    const [a, w, v6, d] = rulesOf(`version: 1
allow:
  - host: api.example.com:8443
    methods: [HEAD, GET]
    paths: ["/v2/*", "/v1/**"]
  - host: "*.example.org"
  - host: "[2001:db8::1]"
deny:
  - host: gist.github.com
`);
    assert.equal(entryKey(a), 'allow api.example.com:8443 GET,HEAD /v1/** /v2/*');
    assert.equal(entryKey(w), 'allow *.example.org * *');
    assert.equal(entryKey(v6), 'allow [2001:db8::1] * *');
    assert.equal(entryKey(d), 'deny gist.github.com * *');
  });

  it('survives edits that do not change what the entry matches, and changes with those that do', () => {
    const base = '  - host: api.example.com\n    paths: ["/a/**"]\n';
    const key = (entry: string, before = '') => entryKey(rulesOf(`version: 1\nallow:\n${before}${entry}`).at(before ? 1 : 0)!);
    const k = key(base);
    assert.equal(key(base, '  - host: other.example\n'), k, 'moved down one place');
    assert.equal(key(base + '    private: true\n    auth: { scheme: Bearer, secret: gh }\n    disabled: true\n'), k, 'flags and credentials');
    assert.equal(key('  # a comment\n' + base.replace('api.example.com', 'API.example.com.')), k, 'comments and spelling');
    assert.notEqual(key(base.replace('/a/**', '/b/**')), k);
    assert.notEqual(key(base.replace('api.example.com', 'api.example.com:8443')), k);
    assert.notEqual(key(base + '    methods: [GET]\n'), k);
    assert.notEqual(entryKey({ ...rulesOf(`version: 1\nallow:\n${base}`)[0], list: 'deny' }), k, 'the list is part of it');
  });

  it('is what the parser calls a duplicate', () => {
    const r = parsePolicy('version: 1\nallow:\n  - host: a.example\n    methods: [GET, HEAD]\n  - host: a.example\n    methods: [HEAD, GET]\n    private: true\n');
    assert.match(r.warnings.map((w) => w.message).join('\n'), /allow\[1\] is the same as allow\[0\]/);
  });
});

describe('secretEnvName', () => {
  it('upper-cases and replaces everything but A-Z, 0-9 and "_"', () => {
    assert.equal(secretEnvName('github'), 'CAGED_SECRET_GITHUB');
    assert.equal(secretEnvName('my-token.v2'), 'CAGED_SECRET_MY_TOKEN_V2');
    assert.equal(secretEnvName('Open_AI'), 'CAGED_SECRET_OPEN_AI');
    assert.equal(secretEnvName('é'), 'CAGED_SECRET__');
  });

  it('a secrets-file line NAME=VALUE is the variable secretEnvName(NAME), which the proxy injects', () => {
    const r = parseSecretsFile('# comment\n my-token = v1\nGitHub=v2\n');
    assert.ok('env' in r);
    assert.deepEqual(r.env, { [secretEnvName('my-token')]: ' v1', [secretEnvName('GitHub')]: 'v2' });
    assert.deepEqual(Object.keys(r.env), ['CAGED_SECRET_MY_TOKEN', 'CAGED_SECRET_GITHUB']);
  });
});

describe('policyHash and the default policy path', () => {
  it('policyHash is sha256 hex of the text as written', () => {
    assert.equal(policyHash(''), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    const text = 'version: 1\nallow: []\n';
    assert.equal(policyHash(text), crypto.createHash('sha256').update(text, 'utf8').digest('hex'));
    assert.notEqual(policyHash(text), policyHash(text + ' '));
  });

  it('the no-policy message names the default policy path', () => {
    assert.equal(DEFAULT_POLICY_PATH, '.caged/policy.yaml');
    assert.ok(decide({ host: 'a.example', port: 443 }, undefined).message.includes(DEFAULT_POLICY_PATH));
  });
});
