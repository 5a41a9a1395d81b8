// Command-line entry of the egress proxy (bundled to dist/proxy.js). A thin wrapper over startProxy().
import * as dns from 'node:dns';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as v8 from 'node:v8';
import { DEFAULT_BUSY_POLL_US, setBusyPoll } from './busypoll';
import { HELP, parseCli, parseSecretsFile, type ListenAddress } from './config';
import { startProxy } from './server';
import { controlClient, DEFAULT_CONTROL_SOCKET } from './control';
import type { TransparentOptions } from './transparent';

function fail(message: string, code = 2): never {
  process.stderr.write(`caged-agent proxy: ${message}\n`);
  process.exit(code);
}

function readFile(file: string, what: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    return fail(`cannot read the ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

/** --health: exit 0 when a proxy answers GET /__caged/health on the listen address. */
function healthCheck(listen: ListenAddress): void {
  const host = listen.host === '0.0.0.0' || listen.host === '' ? '127.0.0.1' : listen.host === '::' ? '::1' : listen.host;
  const req = http.get({ host, port: listen.port, path: '/__caged/health', timeout: 3000, agent: false }, (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (d) => (body += d));
    res.on('end', () => {
      if (res.statusCode === 200) {
        process.stdout.write(body + '\n');
        process.exit(0);
      }
      process.stderr.write(`unhealthy: HTTP ${res.statusCode}\n`);
      process.exit(1);
    });
  });
  req.on('timeout', () => req.destroy(new Error('timed out')));
  req.on('error', (e) => {
    process.stderr.write(`unhealthy: ${e.message}\n`);
    process.exit(1);
  });
}

/**
 * Keep V8's young generation at its initial size. Each intercepted connection leaves a few KB of
 * handshake garbage; by default the new space grows with it and never gives the memory back, which costs
 * ~8 KB of RSS per idle connection. This flag is read when the new space would grow, so setting it at
 * start-up takes effect. Opt out with CAGED_PROXY_V8_DEFAULTS=1.
 */
function tuneHeap(): void {
  if (process.env.CAGED_PROXY_V8_DEFAULTS === '1') return;
  try {
    v8.setFlagsFromString('--semi-space-growth-factor=1');
  } catch {}
}

/** The proxy's own IPv4 addresses (one per network it is on): each gets a DNS responder answering with itself. */
function ownAddresses(): string[] {
  return Object.values(os.networkInterfaces()).flatMap((list) => (list ?? []).filter((a) => a.family === 'IPv4' && !a.internal).map((a) => a.address));
}

/**
 * Where the transparent listeners go: on the --listen address when that is one address (the engine gives the
 * proxy's cage address, so nothing listens on the egress side), DNS on 53, TLS on 443, HTTP on 80; with
 * --listen on every address, the same on every address (a DNS responder per own address); or
 * `HOST:TLS,HTTP,DNS` (--transparent-at).
 */
function transparentOptions(at: string | undefined, listen: ListenAddress): TransparentOptions {
  if (!at) {
    if (listen.host === '0.0.0.0' || listen.host === '' || listen.host === '::') return { dns: ownAddresses().map((host) => ({ host })) };
    return { host: listen.host, dns: [{ host: listen.host }] };
  }
  const m = /^(.+):(\d+),(\d+),(\d+)$/.exec(at);
  if (!m) return fail(`--transparent-at must look like 127.0.0.2:443,80,53, got "${at}"`);
  return { host: m[1], tlsPort: Number(m[2]), httpPort: Number(m[3]), dns: [{ host: m[1], port: Number(m[4]) }] };
}

/**
 * --listen by name (the engine's fallback when the proxy's address is not pinned: its alias on the cage network)
 * is the one address the name has when the proxy starts, so that everything binds there and DNS answers with it.
 */
async function resolveListen(l: ListenAddress): Promise<ListenAddress> {
  if (!l.host || net.isIP(l.host)) return l;
  try {
    return { ...l, host: (await dns.promises.lookup(l.host, { family: 4 })).address };
  } catch (e) {
    return fail(`cannot resolve the --listen host ${l.host}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, 1);
  }
}

async function main(): Promise<void> {
  const parsed = parseCli(process.argv.slice(2), process.env);
  if ('error' in parsed) fail(`${parsed.error}\n\n${HELP}`);
  const cfg = parsed.config;
  if (cfg.help) {
    process.stdout.write(HELP + '\n');
    return;
  }
  if (cfg.health) return healthCheck(cfg.listen);
  if (cfg.control !== undefined) return controlClient(cfg.controlSocket ?? DEFAULT_CONTROL_SOCKET, cfg.control);
  tuneHeap();
  setBusyPoll(cfg.busyPollUs ?? DEFAULT_BUSY_POLL_US);

  const caCertPem = readFile(cfg.caCertFile!, 'CA certificate');
  const caKeyPem = readFile(cfg.caKeyFile!, 'CA key');
  const upstreamCaPem = cfg.upstreamCaFile ? readFile(cfg.upstreamCaFile, 'upstream CA file') : undefined;
  let env: NodeJS.ProcessEnv = process.env;
  if (cfg.secretsFile) {
    const parsedSecrets = parseSecretsFile(readFile(cfg.secretsFile, 'secrets file'));
    if ('error' in parsedSecrets) fail(`the secrets file ${cfg.secretsFile}: ${parsedSecrets.error}`);
    else env = { ...process.env, ...parsedSecrets.env };
  }
  const listen = await resolveListen(cfg.listen);
  let proxy: Awaited<ReturnType<typeof startProxy>>;
  try {
    proxy = await startProxy({
      policyFile: cfg.policyFile,
      caCertPem,
      caKeyPem,
      host: listen.host,
      port: listen.port,
      upstreamCaPem,
      upstreamProxy: cfg.upstreamProxy,
      env,
      controlSocket: cfg.controlSocket,
      transparent: cfg.transparent ? transparentOptions(cfg.transparentAt, listen) : undefined,
    });
  } catch (e) {
    return fail(`cannot start: ${e instanceof Error ? e.message : String(e)}`, 1);
  }
  // One bad connection must not take the cage's only way out down with it: report and keep serving.
  process.on('uncaughtException', (e) => {
    process.stdout.write(JSON.stringify({ time: new Date().toISOString(), type: 'error', message: `uncaught: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`.slice(0, 2000) }) + '\n');
  });
  process.on('SIGHUP', () => proxy.reload());
  const stop = () => {
    proxy.close(5000).then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

void main();
