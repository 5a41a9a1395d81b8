// The pure part of "ask instead of fail" (issue 17): the policy keys onUnknown / askTimeout with line and
// column errors, which reasons may be held, temporary entries as rules, durations.
import { describe, test } from 'node:test';
import { answerChoices, HELD_BUTTONS, heldDescription, heldMessage, narrowestSpec, PendingStore, temporaryDescription } from '../../src/extension/logic/pending';
import assert from 'node:assert/strict';
import { allowChoices, idnNote, mixedScript, uploadKind, UPLOAD_HOST_LIST, decide, entryKey, formatRemaining, isAskable, parseDuration, parsePolicy, ruleLabel, temporaryRule, withTemporaryAllows } from '../../src/policy';

const base = 'version: 1\nallow:\n  - host: api.example.com\ndeny:\n  - host: bad.example.com\n';

describe('onUnknown and askTimeout', () => {
  test('defaults: absent keys leave today\'s behaviour (deny)', () => {
    const p = parsePolicy(base).policy!;
    assert.equal(p.onUnknown, undefined);
    assert.equal(p.askTimeout, undefined);
  });

  test('ask with a timeout', () => {
    const p = parsePolicy('version: 1\nonUnknown: ask\naskTimeout: 120\nallow: []\n').policy!;
    assert.equal(p.onUnknown, 'ask');
    assert.equal(p.askTimeout, 120);
    assert.equal(parsePolicy('version: 1\nonUnknown: deny\nallow: []\n').policy!.onUnknown, 'deny');
  });

  for (const [text, line, col, re] of [
    ['version: 1\nonUnknown: maybe\n', 2, 12, /onUnknown must be "ask".*"deny"/],
    ['version: 1\naskTimeout: 0\n', 2, 13, /askTimeout must be a whole number of seconds from 1 to 600/],
    ['version: 1\naskTimeout: 601\n', 2, 13, /from 1 to 600/],
    ['version: 1\naskTimeout: 1.5\n', 2, 13, /whole number/],
    ['version: 1\naskTimeout: "60"\n', 2, 13, /whole number/],
  ] as const) {
    test(`refused with line and column: ${JSON.stringify(text.split('\n')[1])}`, () => {
      const r = parsePolicy(text);
      assert.equal(r.policy, undefined);
      assert.match(r.errors[0].message, re);
      assert.deepEqual([r.errors[0].pos.line, r.errors[0].pos.col], [line, col]);
    });
  }

  test('a misspelt key is suggested', () => {
    const r = parsePolicy('version: 1\nonUnkown: ask\n');
    assert.match(r.errors[0].message, /onUnknown/);
  });
});

describe('what may be held', () => {
  test('only requests no rule matches', () => {
    assert.equal(isAskable('no-matching-rule'), true);
    assert.equal(isAskable('ip-literal'), true);
    for (const r of ['denied-by-rule', 'private-address', 'secret-detected', 'sni-mismatch', 'policy-invalid', 'bad-path', 'path-not-allowed', 'method-not-allowed'] as const) assert.equal(isAskable(r), false, r);
  });
});

describe('temporary entries', () => {
  test('an entry becomes a rule after the file\'s own; the file\'s deny still wins', () => {
    const p = parsePolicy(base).policy!;
    const r = temporaryRule({ id: 't-1', kind: 'allow', host: 'new.example.com', methods: ['get'], paths: ['/v1/**'], created: 0 }, 0);
    assert.ok(!('error' in r));
    assert.equal(ruleLabel(r), 'temporary t-1');
    assert.equal(entryKey(r), 'allow new.example.com GET /v1/**');
    const eff = withTemporaryAllows(p, [r]);
    assert.equal(p.allow.length, 1, 'the file\'s policy is not changed');
    assert.equal(decide({ host: 'new.example.com', port: 443, method: 'GET', path: '/v1/x' }, eff).rule?.temporary?.id, 't-1');
    assert.equal(decide({ host: 'new.example.com', port: 443, method: 'POST', path: '/v1/x' }, eff).action, 'deny');
    const wide = temporaryRule({ id: 't-2', kind: 'allow', host: 'bad.example.com', created: 0 }, 0) as never;
    assert.equal(decide({ host: 'bad.example.com', port: 443 }, withTemporaryAllows(p, [wide])).reason, 'denied-by-rule');
  });

  test('bad entries are refused in plain words', () => {
    assert.match((temporaryRule({ id: 'x', kind: 'allow', host: '*.com', created: 0 }, 0) as { error: string }).error, /public suffix/);
    assert.match((temporaryRule({ id: 'x', kind: 'allow', host: 'a.example', methods: ['FETCH'], created: 0 }, 0) as { error: string }).error, /not an HTTP method/);
    assert.match((temporaryRule({ id: '', kind: 'allow', host: 'a.example', created: 0 }, 0) as { error: string }).error, /needs an id/);
  });

  test('durations and time left', () => {
    assert.equal(parseDuration('30s'), 30_000);
    assert.equal(parseDuration('15m'), 900_000);
    assert.equal(parseDuration('1h'), 3_600_000);
    assert.equal(parseDuration('1h30m'), 5_400_000);
    assert.equal(parseDuration('90'), 90_000);
    for (const bad of ['', '0', '0s', 'soon', '1x', '-5m']) assert.equal(parseDuration(bad), undefined, bad);
    assert.equal(formatRemaining(58_100), '59 s');
    assert.equal(formatRemaining(14 * 60_000), '14 min');
    assert.equal(formatRemaining(65 * 60_000), '1 h 5 min');
  });
});

describe('risk notes', () => {
  test('upload, paste, webhook and tunnel hosts carry a note on every choice; ordinary hosts none', () => {
    assert.equal(uploadKind('gist.github.com'), 'paste');
    assert.equal(uploadKind('x.ngrok-free.app'), 'tunnel');
    assert.equal(uploadKind('*.webhook.site'), 'webhook catcher');
    assert.equal(uploadKind('github.com'), undefined);
    assert.equal(uploadKind('api.github.com'), undefined);
    assert.ok(UPLOAD_HOST_LIST.length >= 40);
    const c = allowChoices({ host: 'gist.github.com', port: 443, method: 'POST', path: '/gists' });
    assert.equal(c[0].scope, 'method-path');
    assert.ok(c.every((x) => x.spec.host === '*.github.com' || /paste host/.test(x.risk ?? '')), JSON.stringify(c));
    assert.ok(allowChoices({ host: 'registry.npmjs.org', port: 443 }).every((x) => x.risk === undefined));
    assert.equal(mixedScript('аpple.com'), true, 'Cyrillic а with Latin');
    assert.equal(mixedScript('яндекс.рф'), false);
    assert.equal(mixedScript('bücher.example'), false);
    assert.equal(idnNote('example.com', 'example.com'), undefined);
    assert.equal(idnNote('xn--bcher-kva.example', 'bücher.example'), 'bücher.example is xn--bcher-kva.example in the form clients send');
    assert.match(idnNote('xn--pple-43d.com', 'аpple.com')!, /mixes Latin and Cyrillic letters, as look-alike \(homograph\) names do/);
    assert.match(heldMessage({ key: 'k', host: 'xn--pple-43d.com', port: 443, method: 'GET', path: '/', count: 1, since: 0, until: 0 }, 'аpple.com'), /Careful: аpple\.com is xn--pple-43d\.com .*homograph/);
  });
});

describe('held requests in the editor (pure)', () => {
  test('one group per host:port from pending events, gone at resolved or past its time; words and choices', () => {
    const s = new PendingStore();
    const now = Date.parse('2026-12-03T14:00:00Z');
    const ev = (count: number) => ({ type: 'pending' as const, time: '', host: 'api.example.com', port: 443, method: 'GET', path: '/v1/x', count, since: '2026-12-03T14:00:00.000Z', until: '2026-12-03T14:01:00.000Z' });
    assert.equal(s.apply(ev(1)).isNew, true);
    assert.equal(s.apply(ev(3)).isNew, false);
    assert.equal(s.waiting(now), 3);
    const g = s.get('api.example.com:443')!;
    assert.equal(heldMessage(g), 'Caged agent: 3 requests are waiting for your answer — GET api.example.com/v1/x.');
    assert.equal(heldDescription(g, now + 18_000), '3 waiting · GET /v1/x · 42 s left');
    assert.deepEqual(HELD_BUTTONS.map((b) => b.title), ['Allow once', 'Allow for 1 hour', 'Allow always', 'Deny', 'More…']);
    assert.deepEqual(narrowestSpec(g), { host: 'api.example.com', methods: ['GET'], paths: ['/v1/**'] });
    const more = answerChoices(g);
    assert.equal(more[0].label, 'Allow GET /v1/** on api.example.com once');
    assert.ok(more.some((c) => c.label === 'Allow *.example.com always (written to the policy file)'));
    assert.ok(!more.some((c) => c.action === 'once' && c.spec?.host.startsWith('*.')), 'no wildcard for once');
    assert.equal(more.at(-1)!.action, 'deny');
    assert.match(heldMessage({ ...g, host: 'gist.github.com' }), /Careful: gist\.github\.com is a paste host/);
    assert.equal(s.list(now + 70_000).length, 0, 'past its time it goes');
    s.apply(ev(1));
    s.apply({ type: 'resolved', time: '', host: 'api.example.com', port: 443, outcome: 'allowed', count: 1 });
    assert.equal(s.waiting(now), 0);
  });

  test('a temporary entry in the sidebar: its kind, scope and the time left (or until the cage stops)', () => {
    const now = Date.parse('2026-12-03T14:00:00Z');
    assert.equal(temporaryDescription({ id: 't-1', kind: 'allow', host: 'api.example.com', created: now, expires: now + 5 * 60_000 }, now), 'allow · 5 min left');
    assert.equal(temporaryDescription({ id: 't-2', kind: 'allow', host: 'api.example.com', methods: ['GET'], paths: ['/v1/**'], created: now, expires: now + 42_000 }, now), 'allow GET /v1/** · 42 s left');
    assert.equal(temporaryDescription({ id: 't-3', kind: 'deny', host: 'x.example.com', created: now }, now), 'deny · until the cage stops');
  });
});
