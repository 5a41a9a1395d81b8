// An "outside" HTTPS+HTTP server for the browser flows: one container on the shared egress network that
// answers to several host names (network aliases), each with a certificate from a test CA of its own
// (returned as caPem, for the cagedAgent.upstreamCaFile setting). It replies "hello from <host> <METHOD> <path>".
// Unlike test/engine/setup.ts's startUpstream, the names are chosen by the caller, so a flow can use names no
// other test puts on the shared network at the same time (duplicate aliases would round-robin in Docker's DNS).
import type Docker from 'dockerode';
import { EGRESS_NETWORK, type CageEngine } from '../../../src/engine';
import { createCA, LeafMinter } from '../../../src/pki';

export const UPSTREAM_LABEL = 'caged-agent.test';

const SERVER_SCRIPT = `
const https = require('https'), http = require('http'), tls = require('tls');
const certs = JSON.parse(process.env.UP_CERTS);
const names = Object.keys(certs);
const ctx = {};
for (const n of names) ctx[n] = tls.createSecureContext({ cert: certs[n].cert, key: certs[n].key });
const reply = (req, res) => {
  const host = String(req.headers.host || '').split(':')[0];
  res.setHeader('content-type', 'text/plain');
  res.end('hello from ' + host + ' ' + req.method + ' ' + req.url + '\\n');
};
https.createServer({ SNICallback: (n, cb) => cb(null, ctx[n] || ctx[names[0]]) }, reply).listen(443);
http.createServer(reply).listen(80);
console.log('upstream listening');
`;

export interface NamedUpstream {
  caPem: string;
  containerId: string;
  ip: string;
  hosts: string[];
  stop(): Promise<void>;
}

/** Starts the upstream named `name` (replacing a leftover of the same name) answering to `hosts`. */
export async function startNamedUpstream(docker: Docker, engine: CageEngine, name: string, hosts: string[]): Promise<NamedUpstream> {
  await engine.ensureEgressNetwork();
  const ca = createCA({ commonName: 'Caged Agent Browser Test Upstream CA' });
  const minter = new LeafMinter(ca.certPem, ca.keyPem);
  const certs: Record<string, { cert: string; key: string }> = {};
  for (const h of hosts) certs[h] = { cert: minter.mint(h).certPem, key: minter.leafKeyPem };
  await docker.getContainer(name).remove({ force: true }).catch(() => undefined);
  const image = (process.env.CAGED_TEST_NODE_IMAGE ?? 'caged-agent-test/node:20');
  const c = await docker.createContainer({
    name,
    Image: image,
    Entrypoint: ['node', '-e', SERVER_SCRIPT],
    Cmd: [],
    Env: [`UP_CERTS=${JSON.stringify(certs)}`],
    Labels: { [UPSTREAM_LABEL]: '1', 'caged-agent.test-suite': 'browser' },
    HostConfig: { NetworkMode: EGRESS_NETWORK },
    NetworkingConfig: { EndpointsConfig: { [EGRESS_NETWORK]: { Aliases: hosts } } },
  } as Docker.ContainerCreateOptions);
  const stop = async () => {
    await c.remove({ force: true }).catch(() => undefined);
  };
  try {
    await c.start();
    const deadline = Date.now() + 15_000;
    for (;;) {
      const logs = String(await c.logs({ stdout: true, stderr: true, follow: false }));
      if (logs.includes('upstream listening')) break;
      if (Date.now() > deadline) throw new Error(`the test upstream did not start: ${logs}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const info = await c.inspect();
    return { caPem: ca.certPem, containerId: c.id, ip: info.NetworkSettings.Networks[EGRESS_NETWORK].IPAddress, hosts, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
