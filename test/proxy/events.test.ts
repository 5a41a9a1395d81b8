// The decision-event contract on real sockets: every decision event names its rule as data (`ruleKey`, the
// entry's entryKey()), which finds the rule in a newer parse of the file where "allow[N]" no longer does; and
// every request that reached a decision gets exactly one event.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { entryKey, parsePolicy, ruleLabel } from '../../src/policy';
import type { DecisionEvent } from '../../src/policy/events';
import { curl, startTestProxy, startUpstream, type TestProxy, type Upstream } from './helpers';

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
