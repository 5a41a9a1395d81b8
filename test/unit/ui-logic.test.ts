// The editor's pure logic: grouping of blocks, notification batching/rate limits, presets, fix choices, which
// blocks a policy cures, what a failed push says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BlockStore, blockMessage, describeSeen } from '../../src/extension/logic/blocks';
import { formatEvent } from '../../src/cli/common';
import { NotifyThrottle } from '../../src/extension/logic/throttle';
import { PRESETS, presetById } from '../../src/extension/logic/presets';
import type { DecisionEvent } from '../../src/policy/events';
import { fixChoices, looksInternal, ruleOfEvent, stillBlocked } from '../../src/extension/logic/fixes';
import { pushFailureReport } from '../../src/extension/logic/pushReport';
import { entryKey, parsePolicy } from '../../src/policy';

function block(host: string, over: Partial<DecisionEvent> = {}): DecisionEvent {
  return { time: '2026-11-22T12:01:00.000Z', type: 'block', host, port: 443, method: 'GET', path: '/v1/x', reason: 'no-matching-rule', rule: null, ...over };
}

test('blocks group by host:port, case-insensitively, counting methods and paths', () => {
  const s = new BlockStore();
  assert.equal(s.add(block('API.example.com')).isNew, true);
  assert.equal(s.add(block('api.example.com', { method: 'POST', path: '/v1/y' })).isNew, false);
  assert.equal(s.add(block('api.example.com', { port: 8443 })).isNew, true);
  assert.equal(s.size, 2);
  const g = s.get('api.example.com:443')!;
  assert.equal(g.count, 2);
  assert.deepEqual([...g.methods.entries()], [['GET', 1], ['POST', 1]]);
  assert.deepEqual(g.paths, ['/v1/y', '/v1/x']);
  assert.equal(s.totalBlocked(), 3);
});

test('the diagnostic message says host, what was seen, how often and when', () => {
  const s = new BlockStore();
  for (let i = 0; i < 3; i++) s.add(block('api.example.com'));
  const msg = blockMessage(s.get('api.example.com:443')!);
  assert.match(msg, /^Caged agent blocked api\.example\.com:443 — GET \/v1\/x, 3 times, last at \d\d:\d\d \(no-matching-rule\)$/);
  s.add(block('tunnel.example.com', { method: 'CONNECT', path: '' }));
  assert.equal(describeSeen(s.get('tunnel.example.com:443')!), 'CONNECT');
});

test('how a block arrived, when not through the proxy settings, is in the message and the events line (the via field)', () => {
  const s = new BlockStore();
  s.add(block('direct.example.com', { via: 'transparent' }));
  assert.match(blockMessage(s.get('direct.example.com:443')!), /\(no-matching-rule; a client that ignores the proxy settings\)$/);
  s.add(block('db.example.com', { port: 5432, method: 'TCP', path: '', via: 'tcp' }));
  assert.match(blockMessage(s.get('db.example.com:5432')!), /— TCP, once, .*\(no-matching-rule; raw TCP\)$/);
  assert.match(formatEvent(block('direct.example.com', { via: 'transparent', status: 403 })), / no-matching-rule -> 403 \[transparent\]$/);
  assert.doesNotMatch(formatEvent(block('api.example.com')), /\[/);
  assert.match(formatEvent(block('h2.example.com', { via: 'transparent', proto: 'h2', status: 403 })), / -> 403 \[transparent, h2\]$/);
  assert.match(formatEvent(block('h2.example.com', { proto: 'h2', status: 403 })), / -> 403 \[h2\]$/);
});

test('prune drops the groups the policy now allows', () => {
  const s = new BlockStore();
  s.add(block('a.test'));
  s.add(block('b.test'));
  assert.deepEqual(s.prune((g) => g.host !== 'a.test'), ['a.test:443']);
  assert.deepEqual(s.list().map((g) => g.host), ['b.test']);
});

test('the store is bounded: the oldest group is evicted', () => {
  const s = new BlockStore();
  for (let i = 0; i < 510; i++) s.add(block(`h${i}.test`, { time: new Date(1_000_000 + i * 1000).toISOString() }));
  assert.equal(s.size, 500);
  assert.equal(s.get('h0.test:443'), undefined);
  assert.ok(s.get('h509.test:443'));
});

test('notifications batch a burst into one and rate-limit the next', () => {
  const t = new NotifyThrottle<string>({ batchMs: 800, minIntervalMs: 10_000 });
  assert.equal(t.due(), undefined);
  t.push('a', 'a', 0);
  t.push('b', 'b', 100);
  t.push('a', 'a', 200);
  assert.equal(t.flush(500), undefined, 'not before the batch window closes');
  assert.deepEqual(t.flush(800)?.items, ['a', 'b']);
  t.push('c', 'c', 1000);
  assert.equal(t.due(), 10_800, 'the next one waits for the interval');
  assert.equal(t.flush(5000), undefined);
  assert.deepEqual(t.flush(10_800)?.items, ['c']);
  assert.equal(t.due(), undefined, 'nothing pending after the flush');
  t.setMinInterval(60_000);
  t.push('e', 'e', 31_000);
  assert.equal(t.due(), 70_800, 'a changed interval applies to the next notification');
});

test('presets name the hosts their agent needs', () => {
  assert.deepEqual(PRESETS.map((p) => p.id), ['claude-code', 'codex', 'aider', 'custom']);
  assert.ok(presetById('claude-code')!.hosts.some((h) => h.host === 'api.anthropic.com'));
  assert.ok(presetById('codex')!.hosts.some((h) => h.host === 'api.openai.com'));
  assert.ok(presetById('aider')!.hosts.some((h) => h.host === 'pypi.org'));
  assert.equal(presetById('nope'), undefined);
});

test('fix choices follow the block reason', () => {
  const policy = parsePolicy('version: 1\nallow:\n  - host: a.example.com\n  - host: up.test\n    paths: ["/v1/**"]\n').policy!;
  const add = fixChoices({ host: 'api.example.com', port: 443, method: 'GET', path: '/v1/x', reason: 'no-matching-rule' }, policy);
  assert.deepEqual(add.map((c) => c.title), ['Allow GET /v1/** on api.example.com', 'Allow /v1/** on api.example.com (any method)', 'Allow api.example.com', 'Allow *.example.com'], 'narrowest first');
  const priv = fixChoices({ host: 'up.test', port: 443, method: 'GET', path: '/v1/x', reason: 'private-address', rule: 'allow[1]' }, policy);
  assert.equal(priv.length, 1);
  assert.equal(priv[0].title, 'Allow up.test to reach a private address');
  assert.deepEqual(priv[0], { title: priv[0].title, scope: 'private', action: 'update', list: 'allow', index: 1, spec: { host: 'up.test', paths: ['/v1/**'], private: true } });
  assert.deepEqual(fixChoices({ host: 'x.test', port: 443, reason: 'secret-detected' }, policy), [], 'allowing does not cure a leaked secret');
  assert.equal(fixChoices({ host: 'late.example.com', port: 443, method: 'GET', path: '/v1/x', reason: 'no-decision' }, policy)[0]?.title, 'Allow GET /v1/** on late.example.com', 'a held request nobody answered can still be allowed');
  assert.deepEqual(fixChoices({ host: 'x.test', port: 443, reason: 'private-address', rule: null }, policy), []);
});

test('the rule of an event is found by its key in a newer parse where entries moved', () => {
  const before = parsePolicy('version: 1\nallow:\n  - host: a.example.com\n  - host: up.test\n    paths: ["/v1/**"]\n').policy!;
  const key = entryKey(before.allow[1]);
  const after = parsePolicy('version: 1\nallow:\n  - host: new.example.com\n  - host: a.example.com\n  - host: up.test\n    paths: ["/v1/**"]\n').policy!;
  assert.equal(ruleOfEvent(after, { rule: 'allow[1]', ruleKey: key })?.hostText, 'up.test', 'the key wins over the shifted label');
  assert.equal(ruleOfEvent(after, { rule: 'allow[1]' })?.hostText, 'a.example.com', 'without a key, the label');
  assert.equal(ruleOfEvent(parsePolicy('version: 1\nallow:\n  - host: a.example.com\n').policy!, { rule: 'allow[0]', ruleKey: key }), undefined, 'a removed rule is not guessed');
  const priv = fixChoices({ host: 'up.test', port: 443, method: 'GET', path: '/v1/x', reason: 'private-address', rule: 'allow[1]', ruleKey: key }, after);
  assert.equal(priv[0]?.action === 'update' && priv[0].index, 2, 'the private-address fix edits the rule that decided');
});

test('Allow Host asks about private addresses only for hosts that look internal', () => {
  for (const h of ['git.intranet.lan', 'svc.internal', 'api.blocked.test', '*.corp', 'printer', '10.0.0.5', '[::1]', '192.168.1.2']) assert.equal(looksInternal(h), true, h);
  for (const h of ['api.github.com', '*.npmjs.org', 'example.co.uk', 'pypi.dev', '1.1.1.1']) assert.equal(looksInternal(h), false, h);
});

test('a saved policy cures the blocks it now allows, and only those the policy itself caused', () => {
  const policy = parsePolicy('version: 1\nallow:\n  - host: api.example.com\n  - host: up.test\n  - host: pub.test\n    private: true\n  - host: "*.cdn.test"\n    methods: [GET]\n').policy!;
  assert.equal(stillBlocked(block('api.example.com'), policy), false, 'an allowed host is cured');
  assert.equal(stillBlocked(block('other.example.com'), policy), true, 'an unlisted host stays');
  assert.equal(stillBlocked(block('a.cdn.test', { method: 'POST' }), policy), true, 'a method the rule does not allow stays');
  assert.equal(stillBlocked(block('a.cdn.test', { method: 'CONNECT', path: '' }), policy), false, 'a tunnel to the host is cured at host level');
  assert.equal(stillBlocked(block('up.test', { reason: 'private-address' }), policy), true, 'private address: cured only when the rule opts in');
  assert.equal(stillBlocked(block('pub.test', { reason: 'private-address' }), policy), false);
  for (const reason of ['secret-detected', 'secret-missing', 'sni-mismatch', 'insecure-auth'] as const) {
    assert.equal(stillBlocked(block('api.example.com', { reason }), policy), true, `${reason} is not cured by allowing`);
  }
});

test('an event finds its rule in the current parse through one lookup', () => {
  const policy = parsePolicy('version: 1\nallow:\n  - host: a.test\n  - host: b.test\ndeny:\n  - host: c.test\n').policy!;
  assert.equal(ruleOfEvent(policy, { rule: 'allow[1]' })?.host, 'b.test');
  assert.equal(ruleOfEvent(policy, { rule: 'deny[0]' })?.host, 'c.test');
  assert.equal(ruleOfEvent(policy, { rule: 'allow[7]' }), undefined);
  assert.equal(ruleOfEvent(policy, { rule: null }), undefined);
  assert.equal(ruleOfEvent(undefined, { rule: 'allow[0]' }), undefined);
});

test('a failed push says what is known: refused and kept, refused and nothing in force, or not confirmed', () => {
  assert.match(pushFailureReport({ message: 'm', inForce: 'previous' }).log, /^proxy kept its previous policy: m$/);
  assert.match(pushFailureReport({ message: 'm', inForce: 'none' }).log, /blocks everything/);
  const t = pushFailureReport({ message: 'the proxy did not confirm the new policy within 10 s', inForce: 'unknown' });
  assert.doesNotMatch(t.log, /kept its previous policy/);
  assert.doesNotMatch(t.notice, /rejected/);
  assert.match(t.notice, /may or may not be in force/);
});
