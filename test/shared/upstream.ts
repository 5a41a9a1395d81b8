// The "outside" for every suite that runs a real cage (engine, extension host, browser): one HTTPS+HTTP server
// container on the shared egress network, answering to the host names the caller gives (network aliases), each
// with a certificate from a test CA of its own (caPem, for the proxy's upstream CA). It replies
// "hello from <host> <METHOD> <path>", and /echo-headers returns the request headers as JSON (what arrived
// upstream, e.g. an injected Authorization header). With `tcpEcho`, it also echoes raw TCP on those ports.
//
// Names: Docker's DNS round-robins duplicate aliases on one network, so two suites using the same host name at the
// same time could reach each other's upstream. Each test file passes names of its own (and a container name of
// its own); nothing here has a default.
import type Docker from 'dockerode';
import { EGRESS_NETWORK, type CageEngine } from '../../src/engine';
import { createCA, LeafMinter } from '../../src/pki';

/** The label on every test object that is not a cage's (sweeps remove them). */
export const TEST_LABEL = 'caged-agent.test';
export const TEST_NODE_IMAGE = process.env.CAGED_TEST_NODE_IMAGE ?? 'caged-agent-test/node:20';

// What both server scripts share: a TLS context per host name (UP_CERTS), and after the listeners the raw TCP
// echo ports (UP_TCP_ECHO) and the line startUpstream waits for.
const CERTS = `const certs = JSON.parse(process.env.UP_CERTS);
const names = Object.keys(certs);
const ctx = {};
for (const n of names) ctx[n] = tls.createSecureContext({ cert: certs[n].cert, key: certs[n].key });`;
const READY = `for (const port of JSON.parse(process.env.UP_TCP_ECHO || '[]')) require('net').createServer((s) => s.pipe(s)).listen(port);
console.log('upstream listening');`;

const SERVER_SCRIPT = `
const https = require('https'), http = require('http'), tls = require('tls');
${CERTS}
const reply = (req, res) => {
  res.setHeader('content-type', 'text/plain');
  if (req.url.startsWith('/echo-headers')) return res.end(JSON.stringify(req.headers) + '\\n');
  res.end('hello from ' + String(req.headers.host || '').split(':')[0] + ' ' + req.method + ' ' + req.url + '\\n');
};
https.createServer({ SNICallback: (n, cb) => cb(null, ctx[n] || ctx[names[0]]) }, reply).listen(443);
http.createServer(reply).listen(80);
${READY}
`;

// The same over HTTP/2 on 443 (node:http2, ALPN h2 and http/1.1): the reply also names the protocol the request
// arrived in ("over HTTP/2.0", or "over HTTP/1.1" when the proxy's leg to it fell back), and a request with
// content-type application/grpc is a bidirectional echo: every DATA chunk is written back as it arrives (the
// gRPC length-prefixed messages stay intact), then trailers grpc-status 0 and grpc-message "echoed N bytes".
const H2_SERVER_SCRIPT = `
const http2 = require('http2'), http = require('http'), tls = require('tls');
${CERTS}
const reply = (req, res) => {
  if (String(req.headers['content-type'] || '').startsWith('application/grpc')) {
    res.writeHead(200, { 'content-type': 'application/grpc' });
    let n = 0;
    req.on('data', (d) => { n += d.length; res.write(d); });
    req.on('end', () => { res.addTrailers({ 'grpc-status': '0', 'grpc-message': 'echoed ' + n + ' bytes' }); res.end(); });
    return;
  }
  res.setHeader('content-type', 'text/plain');
  const host = String(req.authority || req.headers.host || '').split(':')[0];
  res.end('hello from ' + host + ' ' + req.method + ' ' + req.url + ' over HTTP/' + req.httpVersion + '\\n');
};
http2.createSecureServer({ SNICallback: (n, cb) => cb(null, ctx[n] || ctx[names[0]]), allowHTTP1: true }, reply).listen(443);
http.createServer(reply).listen(80);
${READY}
`;

export interface Upstream {
  caPem: string;
  containerId: string;
  ip: string;
  hosts: string[];
  stop(): Promise<void>;
}

export interface UpstreamOptions {
  /** The container's name (a leftover of the same name is replaced). */
  name: string;
  /** The host names it answers to; the first also answers unknown SNI names. */
  hosts: string[];
  /** Ports a raw TCP echo server listens on (raw TCP rules). */
  tcpEcho?: number[];
  /** Extra labels (e.g. which suite started it). */
  labels?: Record<string, string>;
  /** Serve HTTP/2 (and http/1.1) on 443, with the gRPC-shaped echo (H2_SERVER_SCRIPT above). */
  h2?: boolean;
}

export async function startUpstream(docker: Docker, engine: CageEngine, o: UpstreamOptions): Promise<Upstream> {
  if (!o.hosts.length) throw new Error('startUpstream needs at least one host name');
  await engine.ensureEgressNetwork();
  const ca = createCA({ commonName: 'Caged Agent Test Upstream CA' });
  const minter = new LeafMinter(ca.certPem, ca.keyPem);
  const certs: Record<string, { cert: string; key: string }> = {};
  for (const h of o.hosts) certs[h] = { cert: minter.mint(h).certPem, key: minter.leafKeyPem };
  await docker.getContainer(o.name).remove({ force: true }).catch(() => undefined);
  const c = await docker.createContainer({
    name: o.name,
    Image: TEST_NODE_IMAGE,
    Entrypoint: ['node', '-e', o.h2 ? H2_SERVER_SCRIPT : SERVER_SCRIPT],
    Cmd: [],
    Env: [`UP_CERTS=${JSON.stringify(certs)}`, `UP_TCP_ECHO=${JSON.stringify(o.tcpEcho ?? [])}`],
    Labels: { [TEST_LABEL]: '1', ...(o.labels ?? {}) },
    HostConfig: { NetworkMode: EGRESS_NETWORK },
    NetworkingConfig: { EndpointsConfig: { [EGRESS_NETWORK]: { Aliases: o.hosts } } },
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
    return { caPem: ca.certPem, containerId: c.id, ip: info.NetworkSettings.Networks[EGRESS_NETWORK].IPAddress, hosts: o.hosts, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** A string as a literal inside a RegExp (assertions on host names). */
export function esc(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A policy allowing `host` (the test upstream lives on a Docker bridge address, hence private: true). */
export function allowPolicy(host: string): string {
  return `version: 1
allow:
  # The test upstream lives on a Docker bridge address: the opt-in is visible here.
  - host: ${host}
    private: true
`;
}
