// Shared setup for the engine tests: a Docker engine that answers, the local test images, the proxy
// bundle, an "outside" HTTPS upstream on the egress network (aliases allowed.test / blocked.test) with
// its own test CA, and cleanup of everything a test file created.
import Docker from 'dockerode';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CageEngine, EGRESS_NETWORK, LABEL, LABEL_CAGE } from '../../src/engine';
import { createCA, LeafMinter } from '../../src/pki';

export const ROOT = path.resolve(__dirname, '..', '..', '..');
export const PROXY_BUNDLE = path.join(ROOT, 'dist', 'proxy.js');
export const CLI = path.join(ROOT, 'dist', 'cli.js');
export const DEBIAN_IMAGE = 'caged-agent-test/debian:bookworm';
export const NODE_IMAGE = 'caged-agent-test/node:20';
export const NOSHELL_IMAGE = 'caged-agent-test/noshell:1';
/** The Debian image plus git, node and npm (scripts/build-test-images.sh). */
export const DEV_IMAGE = 'caged-agent-test/dev:1';
export const TEST_LABEL = 'caged-agent.test';

let prepared = false;

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'], timeout: 15 * 60_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status})`);
}

/** Engine up, test images present, bundles built. Once per test process. */
export function prepare(): void {
  if (prepared) return;
  run('bash', [path.join(ROOT, 'scripts', 'ensure-docker.sh')]);
  run('bash', [path.join(ROOT, 'scripts', 'build-test-images.sh')]);
  try {
    run(process.execPath, [path.join(ROOT, 'scripts', 'build.mjs')]);
  } catch (e) {
    // Another bundle (e.g. the extension) may fail to build; the engine tests need only these two.
    if (!fs.existsSync(PROXY_BUNDLE) || !fs.existsSync(CLI)) throw e;
    console.error(`# build failed (${(e as Error).message}); using the existing dist/proxy.js and dist/cli.js`);
  }
  if (!fs.existsSync(PROXY_BUNDLE)) throw new Error(`${PROXY_BUNDLE} is missing after the build`);
  prepared = true;
}

export function tmpDir(prefix: string): string {
  return fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), prefix)));
}

export function makeEngine(stateDir: string): CageEngine {
  return new CageEngine({ stateDir, proxyBundlePath: PROXY_BUNDLE, proxyBaseImage: NODE_IMAGE, agentImage: DEBIAN_IMAGE });
}

/** A workspace folder with a policy allowing allowed.test (a Docker bridge address, hence private: true). */
export function makeWorkspace(prefix: string, policy = ALLOW_POLICY): string {
  const ws = tmpDir(prefix);
  fs.mkdirSync(path.join(ws, '.caged'));
  fs.writeFileSync(path.join(ws, '.caged', 'policy.yaml'), policy);
  fs.writeFileSync(path.join(ws, 'README.md'), 'a test workspace\n');
  return ws;
}

export const ALLOW_POLICY = `version: 1
allow:
  # The test upstream lives on a Docker bridge address: the opt-in is visible here.
  - host: allowed.test
    private: true
`;

const UPSTREAM_SCRIPT = `
const https = require('https'); const http = require('http'); const tls = require('tls');
const certs = JSON.parse(process.env.UP_CERTS);
const ctx = {}; for (const [h, c] of Object.entries(certs)) ctx[h] = tls.createSecureContext({ cert: c.cert, key: c.key });
const handler = (req, res) => {
  res.setHeader('content-type', 'text/plain');
  // /echo-headers: what arrived upstream (tests of credential injection read the Authorization header here).
  if (req.url.startsWith('/echo-headers')) return res.end(JSON.stringify(req.headers) + '\\n');
  res.end('hello from ' + String(req.headers.host).split(':')[0] + ' ' + req.method + ' ' + req.url + '\\n');
};
https.createServer({ SNICallback: (name, cb) => cb(null, ctx[name] || ctx['allowed.test']) }, handler).listen(443);
http.createServer(handler).listen(80);
console.log('upstream listening');
`;

export interface Upstream {
  caPem: string;
  containerId: string;
  ip: string;
  stop(): Promise<void>;
}

/** An HTTPS+HTTP server on the egress network, names allowed.test and blocked.test, certs from a test CA. */
export async function startUpstream(docker: Docker, engine: CageEngine, name: string): Promise<Upstream> {
  await engine.ensureEgressNetwork();
  const ca = createCA({ commonName: 'Caged Agent Test Upstream CA' });
  const minter = new LeafMinter(ca.certPem, ca.keyPem);
  const certs: Record<string, { cert: string; key: string }> = {};
  for (const h of ['allowed.test', 'blocked.test']) certs[h] = { cert: minter.mint(h).certPem, key: minter.leafKeyPem };
  await docker.getContainer(name).remove({ force: true }).catch(() => {});
  const c = await docker.createContainer({
    name,
    Image: NODE_IMAGE,
    Entrypoint: ['node', '-e', UPSTREAM_SCRIPT],
    Cmd: [],
    Env: [`UP_CERTS=${JSON.stringify(certs)}`],
    Labels: { [TEST_LABEL]: '1' },
    HostConfig: { NetworkMode: EGRESS_NETWORK },
    NetworkingConfig: { EndpointsConfig: { [EGRESS_NETWORK]: { Aliases: ['allowed.test', 'blocked.test'] } } },
  } as Docker.ContainerCreateOptions);
  await c.start();
  const deadline = Date.now() + 15_000;
  for (;;) {
    const logs = String(await c.logs({ stdout: true, stderr: true } as any));
    if (logs.includes('upstream listening')) break;
    if (Date.now() > deadline) throw new Error(`the test upstream did not start: ${logs}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const info = await c.inspect();
  return {
    caPem: ca.certPem,
    containerId: c.id,
    ip: info.NetworkSettings.Networks[EGRESS_NETWORK].IPAddress,
    stop: async () => { await c.remove({ force: true }).catch(() => {}); },
  };
}

/** Every labelled object (containers, networks, volumes) of the given cages. */
export async function leftovers(docker: Docker, cageIds: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const id of cageIds) {
    const filters = { label: [`${LABEL}=1`, `${LABEL_CAGE}=${id}`] };
    for (const c of await docker.listContainers({ all: true, filters })) out.push(`container ${c.Names[0]}`);
    for (const n of await docker.listNetworks({ filters })) out.push(`network ${n.Name}`);
    for (const v of (await docker.listVolumes({ filters })).Volumes ?? []) out.push(`volume ${v.Name}`);
  }
  return out;
}

export function rmrf(p: string): void {
  try { fs.rmSync(p, { recursive: true, force: true }); } catch {}
}
