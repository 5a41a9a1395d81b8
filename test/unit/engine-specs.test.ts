// What the engine asks Docker for, without Docker: the proxy and agent container specs with their hardening, the
// agent's protected-path mounts (planned on a real folder, as a start does), the networks, the proxy's config
// files; and the cage state from container summaries.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import type Docker from 'dockerode';
import { cageInfo, cageState, type Summary } from '../../src/engine/discover';
import { prepareWorkspace, removePlaceholders } from '../../src/engine/protect-scan';
import {
  agentContainerSpec,
  cageAddressPlan,
  cageNetworkSpec,
  configVolumeSpec,
  egressNetworkSpec,
  placeholdersOf,
  protectionOf,
  proxyConfigFiles,
  proxyContainerSpec,
  secretWithLineBreak,
} from '../../src/engine/specs';

const ID = 'ca-0123456789';
const WS = '/home/u/project';

function proxySpec(over: Partial<Parameters<typeof proxyContainerSpec>[0]> = {}): Docker.ContainerCreateOptions {
  return proxyContainerSpec({ id: ID, workspace: WS, image: 'caged-agent/proxy:x', policyPath: `${WS}/.caged/policy.yaml`, upstreamCa: false, secrets: false, ...over });
}

const WS_STUB = {
  mounts: [
    { Type: 'bind' as const, Source: WS, Target: WS, ReadOnly: false },
    { Type: 'bind' as const, Source: `${WS}/.caged`, Target: `${WS}/.caged`, ReadOnly: true },
  ],
  workspaceInContainer: WS,
  record: { enabled: true, protected: [{ path: '.caged', kind: 'dir' as const, why: 'policy' }], writable: [], placeholders: [{ path: `${WS}/.vscode`, kind: 'dir' as const }], baseline: {} },
};

function env(spec: Docker.ContainerCreateOptions): Record<string, string> {
  return Object.fromEntries((spec.Env ?? []).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
}

describe('container specs', () => {
  it('the proxy runs hardened: no capabilities, no new privileges, read-only root, limits, non-root, its own log limits', () => {
    const s = proxySpec();
    const h = s.HostConfig!;
    assert.deepEqual(h.CapDrop, ['ALL']);
    assert.deepEqual(h.SecurityOpt, ['no-new-privileges:true']);
    assert.equal(h.ReadonlyRootfs, true);
    assert.match(h.Tmpfs!['/tmp'], /noexec/);
    assert.match(h.Tmpfs!['/tmp'], /nosuid/);
    assert.equal(h.PidsLimit, 256);
    // Ports 53/80/443 (and raw TCP rules' ports) without a capability: a namespaced sysctl, not NET_BIND_SERVICE.
    assert.deepEqual(h.Sysctls, { 'net.ipv4.ip_unprivileged_port_start': '0' });
    assert.equal(h.CapAdd, undefined);
    assert.equal(h.Memory, 512 * 1024 * 1024);
    assert.equal(s.User, '1000:1000');
    assert.deepEqual(h.LogConfig, { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } });
    assert.equal(h.RestartPolicy?.Name, 'unless-stopped');
    // On the cage network only at creation (the engine connects it to the egress network), known as caged-proxy.
    assert.equal(h.NetworkMode, `caged-agent-${ID}`);
    assert.deepEqual(s.NetworkingConfig?.EndpointsConfig, { [`caged-agent-${ID}`]: { Aliases: ['caged-proxy'] } });
    assert.deepEqual(h.Mounts, [{ Type: 'volume', Source: `caged-agent-${ID}-config`, Target: '/etc/caged-agent', ReadOnly: false }]);
    assert.deepEqual(s.Healthcheck?.Test, ['CMD', 'node', '/app/proxy.js', '--health', '--listen', 'caged-proxy:3128']);
    assert.equal(s.Labels?.['caged-agent.role'], 'proxy');
    assert.equal(s.Labels?.['caged-agent.policy'], `${WS}/.caged/policy.yaml`);
  });

  it('the proxy reads secrets and upstream settings from its config volume, never from its environment', () => {
    assert.deepEqual(proxySpec().Cmd, ['--policy', '/etc/caged-agent/policy.yaml', '--ca-cert', '/etc/caged-agent/ca.crt', '--ca-key', '/etc/caged-agent/ca.key', '--listen', 'caged-proxy:3128', '--control-socket', '/tmp/caged-control.sock', '--transparent']);
    const s = proxySpec({ secrets: true, upstreamCa: true, upstreamProxy: 'http://corp:8080' });
    assert.deepEqual(s.Cmd!.slice(11), ['--upstream-ca', '/etc/caged-agent/upstream-ca.pem', '--upstream-proxy', 'http://corp:8080', '--secrets-file', '/etc/caged-agent/secrets.env']);
    assert.equal(s.Env, undefined, 'the proxy container has no environment of its own');
  });

  it('the agent: cage network only, the proxy as its DNS server, no raw sockets or device nodes, an init', () => {
    const input = { id: ID, workspace: WS, image: { tag: 'caged-agent/agent:x', keepalive: ['/usr/bin/sleep', '2147483647'] }, baseImage: 'node:20', policyPath: `${WS}/.caged/policy.yaml`, ws: WS_STUB };
    // Without the proxy's address, a forwarder to nowhere: external lookups fail.
    assert.deepEqual(agentContainerSpec(input).spec.HostConfig!.Dns, ['127.0.0.1']);
    const { spec, ownCommand } = agentContainerSpec({ ...input, proxyIp: '172.30.0.2' });
    const h = spec.HostConfig!;
    assert.equal(ownCommand, false);
    assert.equal(h.NetworkMode, `caged-agent-${ID}`);
    assert.deepEqual(spec.NetworkingConfig?.EndpointsConfig, { [`caged-agent-${ID}`]: {} });
    assert.deepEqual(h.Dns, ['172.30.0.2']);
    assert.deepEqual(h.DnsSearch, []);
    assert.deepEqual(h.DnsOptions, ['timeout:1', 'attempts:1']);
    assert.deepEqual(h.CapDrop, ['NET_RAW', 'MKNOD']);
    assert.equal(h.Init, true);
    assert.equal(h.PublishAllPorts, false);
    assert.equal(h.RestartPolicy?.Name, 'no');
    assert.deepEqual([spec.Entrypoint, spec.Cmd], [['/usr/bin/sleep'], ['2147483647']]);
    assert.equal(spec.WorkingDir, WS);
    assert.equal(spec.Labels?.['caged-agent.workspace-in-container'], WS);
    assert.equal(spec.Labels?.['caged-agent.base-image'], 'node:20');
    // What the cage protects travels as data on the container, for status, the sidebar, verify and down.
    assert.deepEqual(protectionOf(spec.Labels!), WS_STUB.record);
    assert.deepEqual(placeholdersOf(spec.Labels!), WS_STUB.record.placeholders);
    assert.equal(protectionOf({ 'caged-agent.protect': '{not json' }), undefined);
  });

  it("the agent's command: the user's, else the image's way to idle, else its own", () => {
    const base = { id: ID, workspace: WS, baseImage: 'x', policyPath: 'p', ws: WS_STUB };
    const own = agentContainerSpec({ ...base, image: { tag: 't' } });
    assert.equal(own.ownCommand, true);
    assert.equal(own.spec.Entrypoint, undefined);
    const cmd = agentContainerSpec({ ...base, image: { tag: 't', keepalive: ['/bin/sleep', '1'] }, agentCommand: ['/usr/bin/curl', '-sS', 'https://x/'] });
    assert.deepEqual([cmd.spec.Entrypoint, cmd.spec.Cmd, cmd.ownCommand], [['/usr/bin/curl'], ['-sS', 'https://x/'], false]);
  });

  it("the agent's environment has the proxy and telemetry opt-outs, git's safe.directory, and never a secret", () => {
    const { spec } = agentContainerSpec({
      id: ID, workspace: WS, image: { tag: 't' }, baseImage: 'x', policyPath: 'p', ws: WS_STUB,
      agentEnv: { FOO: 'bar', CAGED_SECRET_TOKEN: 'leak', caged_secret_x: 'leak', HTTPS_PROXY: 'http://elsewhere:1' },
    });
    const e = env(spec);
    assert.equal(e.FOO, 'bar');
    assert.equal(e.HTTPS_PROXY, 'http://caged-proxy:3128', 'the proxy settings win over the caller\'s');
    assert.equal(e.https_proxy, 'http://caged-proxy:3128');
    assert.equal(e.DO_NOT_TRACK, '1');
    assert.equal(e.GIT_CONFIG_KEY_0, 'safe.directory');
    assert.ok(!Object.keys(e).some((k) => /^caged_secret_/i.test(k)), Object.keys(e).join(' '));
    assert.ok(!(spec.Env ?? []).some((x) => x.includes('leak')));
  });

  it('the protected paths of a real folder become read-only binds over the read-write workspace', () => {
    const ws = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'caged-specs-')));
    try {
      assert.equal(spawnSync('git', ['init', '-q', ws]).status, 0);
      fs.mkdirSync(path.join(ws, '.caged'));
      fs.writeFileSync(path.join(ws, '.caged', 'policy.yaml'), 'version: 1\nallow: []\n');
      const prepared = prepareWorkspace({ workspace: ws, policyPath: path.join(ws, '.caged', 'policy.yaml'), protect: true });
      try {
        const { spec } = agentContainerSpec({ id: ID, workspace: ws, image: { tag: 't' }, baseImage: 'x', policyPath: 'p', ws: prepared });
        const mounts = spec.HostConfig!.Mounts!;
        const at = (rel: string) => mounts.find((m) => m.Target === (rel ? path.join(ws, rel) : ws));
        assert.deepEqual(at(''), { Type: 'bind', Source: ws, Target: ws, ReadOnly: false }, 'the workspace itself stays writable');
        for (const rel of ['.git/hooks', '.git/config', '.caged', '.vscode', '.mcp.json']) {
          assert.equal(at(rel)?.ReadOnly, true, `${rel} is a read-only mount: ${JSON.stringify(mounts.map((m) => [m.Target, m.ReadOnly]))}`);
          assert.equal(at(rel)?.Type, 'bind');
        }
        assert.ok(mounts.every((m) => m.Target === ws || m.Target.startsWith(ws + '/')), 'nothing outside the workspace is mounted');
        assert.deepEqual(protectionOf(spec.Labels!)?.protected.map((p) => p.path).sort(), prepared.record.protected.map((p) => p.path).sort());
      } finally {
        removePlaceholders(prepared.record.placeholders);
      }
    } finally {
      fs.rmSync(ws, { recursive: true, force: true });
    }
  });

  it("the proxy's config: the CA key and the secrets are readable by the proxy's user only", () => {
    const files = proxyConfigFiles({ certPem: 'CERT', keyPem: 'KEY' }, 'version: 1\n', 'UPCA', [['github-token', 'v1'], ['npm', 'v2']]);
    const by = Object.fromEntries(files.map((f) => [f.name, f]));
    assert.deepEqual(Object.keys(by), ['ca.crt', 'ca.key', 'policy.yaml', 'upstream-ca.pem', 'secrets.env']);
    assert.equal(by['ca.key'].mode, 0o600);
    assert.equal(by['secrets.env'].mode, 0o600);
    assert.equal(by['ca.crt'].mode, 0o644);
    assert.ok(files.every((f) => f.uid === 1000 && f.gid === 1000));
    assert.equal(by['secrets.env'].data, 'GITHUB_TOKEN=v1\nNPM=v2\n');
    assert.deepEqual(proxyConfigFiles({ certPem: 'C', keyPem: 'K' }, undefined, undefined, []).map((f) => f.name), ['ca.crt', 'ca.key'], 'no policy file: the proxy blocks everything');
    assert.equal(secretWithLineBreak([['a', 'x'], ['b', 'y\nz']]), 'b');
    assert.equal(secretWithLineBreak([['a', 'x']]), undefined);
  });

  it('networks: the cage network is internal with no host address on its bridge; the egress network reaches out', () => {
    const n = cageNetworkSpec(ID, WS, true);
    assert.equal(n.Internal, true);
    assert.deepEqual(n.Options, { 'com.docker.network.bridge.inhibit_ipv4': 'true' });
    assert.equal(n.Labels?.['caged-agent.role'], 'network');
    assert.equal(cageNetworkSpec(ID, WS, false).Options, undefined);
    assert.equal(cageNetworkSpec(ID, WS, false).Internal, true);
    const e = egressNetworkSpec();
    assert.deepEqual([e.Name, e.Internal, e.Labels?.['caged-agent.role']], ['caged-agent-egress', undefined, 'egress']);
    assert.deepEqual(configVolumeSpec(ID, WS).Labels, { 'caged-agent': '1', 'caged-agent.role': 'volume', 'caged-agent.cage': ID, 'caged-agent.workspace': WS });
  });

  it("the address plan pins the proxy in the lower half of the engine's subnet and hands the upper half out", () => {
    const p = cageAddressPlan('172.30.0.0/16', '172.30.0.1')!;
    assert.deepEqual(p, { subnet: '172.30.0.0/16', gateway: '172.30.0.1', dynamicRange: '172.30.128.0/17', proxyIp: '172.30.0.2' });
    assert.deepEqual(cageAddressPlan('192.168.16.0/20', undefined), { subnet: '192.168.16.0/20', gateway: '192.168.16.1', dynamicRange: '192.168.24.0/21', proxyIp: '192.168.16.2' });
    assert.equal(cageAddressPlan('10.9.8.0/24', '10.9.8.2')!.proxyIp, '10.9.8.3', 'never the gateway');
    assert.equal(cageAddressPlan('10.9.8.8/29', '10.9.8.9')!.dynamicRange, '10.9.8.12/30');
    for (const [subnet, gw] of [['10.0.0.0/30', undefined], ['fd00::/64', undefined], ['10.0.0.0/24', '10.0.1.1'], ['300.0.0.0/16', undefined], ['garbage', undefined]] as const) {
      assert.equal(cageAddressPlan(subnet, gw), undefined, subnet);
    }
    const n = cageNetworkSpec(ID, WS, true, p);
    assert.deepEqual(n.IPAM, { Driver: 'default', Config: [{ Subnet: '172.30.0.0/16', Gateway: '172.30.0.1', IPRange: '172.30.128.0/17' }] });
    assert.equal(cageNetworkSpec(ID, WS, true).IPAM, undefined);
  });

  it("the proxy with a planned address: pinned there, and it listens there only (not on the egress side)", () => {
    const s = proxySpec({ proxyIp: '172.30.0.2' });
    const cmd = s.Cmd as string[];
    assert.equal(cmd[cmd.indexOf('--listen') + 1], '172.30.0.2:3128');
    assert.deepEqual(s.NetworkingConfig?.EndpointsConfig?.[`caged-agent-${ID}`], { Aliases: ['caged-proxy'], IPAMConfig: { IPv4Address: '172.30.0.2' } });
    const unplanned = proxySpec().Cmd as string[];
    assert.equal(unplanned[unplanned.indexOf('--listen') + 1], 'caged-proxy:3128', 'unplanned: the alias, the cage address at start');
    assert.deepEqual((s.Healthcheck?.Test ?? []).slice(-2), ['--listen', 'caged-proxy:3128'], 'the health check asks the cage address');
  });
});

function summary(role: 'proxy' | 'agent', State: string, labels: Record<string, string> = {}): Summary {
  return { Id: `${role}-id`, Names: [`/${role}`], Image: `${role}-image`, Created: role === 'proxy' ? 1000 : 1005, State, Labels: { 'caged-agent': '1', 'caged-agent.role': role, 'caged-agent.cage': ID, 'caged-agent.workspace': WS, ...labels } } as unknown as Summary;
}

describe('cage state', () => {
  it('follows from the two containers and the proxy health', () => {
    const p = (s: string) => ({ State: s });
    const cases: Array<[ReturnType<typeof p> | undefined, ReturnType<typeof p> | undefined, string | undefined, string]> = [
      [undefined, undefined, undefined, 'stopped'],
      [p('exited'), p('exited'), undefined, 'stopped'],
      [p('exited'), p('running'), undefined, 'proxy-down'],
      [undefined, p('running'), undefined, 'proxy-down'],
      [p('running'), p('paused'), 'healthy', 'paused'],
      [p('running'), p('exited'), 'healthy', 'agent-down'],
      [p('running'), undefined, 'healthy', 'agent-down'],
      [p('running'), p('running'), 'unhealthy', 'unhealthy'],
      [p('running'), p('running'), 'starting', 'starting'],
      [p('running'), p('running'), 'healthy', 'healthy'],
      [p('running'), p('running'), undefined, 'healthy'],
    ];
    for (const [proxy, agent, health, want] of cases) assert.equal(cageState(proxy, agent, health), want, JSON.stringify({ proxy, agent, health }));
  });

  it('a cage is described by its labelled containers', () => {
    assert.equal(cageInfo(ID, [], undefined), undefined);
    const info = cageInfo(ID, [summary('proxy', 'running', { 'caged-agent.policy': '/p.yaml' }), summary('agent', 'running', { 'caged-agent.policy': '/p.yaml', 'caged-agent.base-image': 'node:20', 'caged-agent.workspace-in-container': WS })], 'healthy')!;
    assert.deepEqual(info, {
      id: ID,
      workspace: WS,
      state: 'healthy',
      agentContainerId: 'agent-id',
      proxyContainerId: 'proxy-id',
      networkName: `caged-agent-${ID}`,
      agentImage: 'agent-image',
      createdAt: new Date(1000 * 1000).toISOString(),
      workspaceInContainer: WS,
      policyPath: '/p.yaml',
      baseImage: 'node:20',
      protection: undefined,
    });
    const orphan = cageInfo(ID, [summary('proxy', 'running', { 'caged-agent.policy': '/p.yaml' })], 'healthy')!;
    assert.deepEqual([orphan.state, orphan.policyPath, orphan.agentContainerId], ['agent-down', '/p.yaml', undefined]);
  });
});
