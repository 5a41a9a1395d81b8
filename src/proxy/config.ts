// Command-line and environment configuration of the proxy program.
import { DEFAULT_POLICY_PATH, secretEnvName, splitHostPort } from '../policy';
import { DEFAULT_CONTROL_SOCKET } from './control';

export interface ListenAddress {
  host: string;
  port: number;
}

export interface CliConfig {
  policyFile?: string;
  caCertFile?: string;
  caKeyFile?: string;
  listen: ListenAddress;
  upstreamCaFile?: string;
  upstreamProxy?: string;
  secretsFile?: string;
  /** The control channel's unix socket (control.ts). */
  controlSocket?: string;
  /** Client mode: send this JSON request to the control socket and print the reply. */
  control?: string;
  /** Busy-polling window in microseconds (0: off; unset: the default, see busypoll.ts). */
  busyPollUs?: number;
  /** Transparent capture: TLS on 443 (by SNI), HTTP on 80 (by Host), DNS on 53 of every own address. */
  transparent: boolean;
  /** Where the transparent listeners bind instead (benchmarks, tests): the address, then TLS, HTTP, DNS ports. */
  transparentAt?: string;
  health: boolean;
  help: boolean;
}

export const DEFAULT_LISTEN = '127.0.0.1:3128';

export const HELP = `Usage: node dist/proxy.js --policy FILE --ca-cert FILE --ca-key FILE --listen HOST:PORT
                          [--upstream-ca FILE] [--upstream-proxy URL] [--secrets-file FILE]
                          [--busy-poll-us N] [--transparent]
       node dist/proxy.js --health [--listen HOST:PORT]
       node dist/proxy.js --control JSON [--control-socket FILE]

Caged Agent egress proxy: an explicit HTTP/HTTPS forward proxy that enforces a default-deny policy,
intercepts TLS with the cage CA, and prints one JSON event per decision on stdout.

Options (each may also come from the environment variable in brackets):
  --policy FILE          policy file (${DEFAULT_POLICY_PATH}) [CAGED_POLICY]. Missing or invalid: everything
                         is blocked and a policy-error event says why. SIGHUP re-reads it; an invalid
                         file is reported and the last good policy stays in force.
  --ca-cert FILE         cage CA certificate (PEM) used to mint leaf certificates [CAGED_CA_CERT]
  --ca-key FILE          cage CA private key (PEM) [CAGED_CA_KEY]
  --listen HOST:PORT     address to listen on, default ${DEFAULT_LISTEN} [CAGED_LISTEN]
  --upstream-ca FILE     extra CA certificate(s) (PEM) trusted for upstream TLS, in addition to the
                         system roots [CAGED_UPSTREAM_CA]
  --upstream-proxy URL   send all upstream traffic through this HTTP proxy (http://host:port)
                         [CAGED_UPSTREAM_PROXY]
  --secrets-file FILE    secrets for credential injection, one NAME=VALUE per line (# comments allowed);
                         a NAME here is the same as the environment variable CAGED_SECRET_<NAME>
                         [CAGED_SECRETS_FILE]. Keeps tokens out of the container's configuration.
  --busy-poll-us N       while reads come within N microseconds of each other, keep polling for I/O for
                         N µs after each before sleeping: saves a sleep and a wake-up per request under
                         dense traffic (costly on VMs); sparse traffic never starts a poll. 0-1000,
                         default 100; 0 turns it off [CAGED_BUSY_POLL_US].
  --control-socket FILE  listen for the engine's decisions (answers to held requests, temporary allows)
                         on this unix socket, mode 600 [CAGED_CONTROL_SOCKET]. Not a network port: the
                         agent cannot reach it.
  --control JSON         client mode: send one request to --control-socket (default
                         ${DEFAULT_CONTROL_SOCKET}), print the proxy's JSON reply, exit 0 if it took it
  --transparent          also catch clients that ignore proxy settings: answer DNS (UDP and TCP 53) on
                         the --listen address with that address (nothing is forwarded), accept TLS on
                         443 routed by its server name (SNI), plain HTTP on 80 routed by Host and the
                         raw TCP rules' ports there, under the same policy (--listen on every address:
                         all of these on every address of the proxy). Ports below 1024 need net.ipv4.ip_unprivileged_port_start
                         (a namespaced sysctl) or a capability [CAGED_TRANSPARENT=1].
  --transparent-at HOST:TLS,HTTP,DNS
                         with --transparent: listen on HOST only, on these ports (0: any free; a TLS
                         or HTTP connection is routed to the port it came to). For benchmarks.
  --health               check that a proxy answers on --listen (GET /__caged/health); exit 0 if so.
                         Meant for a container HEALTHCHECK.
  --help                 show this text

Secrets for credential injection come from CAGED_SECRET_<NAME> environment variables and --secrets-file.
Signals: SIGHUP reloads the policy, SIGTERM/SIGINT shut down gracefully.`;

/** "HOST:PORT", "[v6]:PORT" or ":PORT" (every address). The port is required. */
export function parseListen(text: string): ListenAddress | undefined {
  const s = splitHostPort(text.trim());
  if ('error' in s || s.port === undefined || !/^\d{1,5}$/.test(s.port)) return undefined;
  const port = Number(s.port);
  if (port > 65535) return undefined;
  if (s.host.startsWith('[')) {
    const v6 = s.host.slice(1, -1);
    return /^[0-9a-fA-F:.]+$/.test(v6) ? { host: v6, port } : undefined;
  }
  if (/[[\]]/.test(s.host)) return undefined;
  return { host: s.host || '0.0.0.0', port };
}

const FLAGS: Record<string, keyof CliConfig> = {
  '--policy': 'policyFile',
  '--ca-cert': 'caCertFile',
  '--ca-key': 'caKeyFile',
  '--upstream-ca': 'upstreamCaFile',
  '--upstream-proxy': 'upstreamProxy',
  '--secrets-file': 'secretsFile',
  '--busy-poll-us': 'busyPollUs',
  '--control-socket': 'controlSocket',
  '--control': 'control',
  '--transparent-at': 'transparentAt',
};

const ENV: Array<[string, keyof CliConfig]> = [
  ['CAGED_POLICY', 'policyFile'],
  ['CAGED_CA_CERT', 'caCertFile'],
  ['CAGED_CA_KEY', 'caKeyFile'],
  ['CAGED_UPSTREAM_CA', 'upstreamCaFile'],
  ['CAGED_UPSTREAM_PROXY', 'upstreamProxy'],
  ['CAGED_SECRETS_FILE', 'secretsFile'],
  ['CAGED_BUSY_POLL_US', 'busyPollUs'],
  ['CAGED_CONTROL_SOCKET', 'controlSocket'],
];

/**
 * Parses a secrets file (NAME=VALUE lines, blank lines and # comments ignored) into the variables the proxy
 * reads (secretEnvName: CAGED_SECRET_<NAME>, upper-cased, other characters than A-Z, 0-9 and "_" become "_").
 */
export function parseSecretsFile(text: string): { env: Record<string, string> } | { error: string } {
  const env: Record<string, string> = {};
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) return { error: `line ${i + 1} is not NAME=VALUE` }; // never echo the line: it may hold a secret
    env[secretEnvName(line.slice(0, eq).trim())] = line.slice(eq + 1);
  }
  return { env };
}

/** Parses argv (without node and script) with environment fallbacks. Flags win over the environment. */
export function parseCli(argv: string[], env: NodeJS.ProcessEnv): { config: CliConfig } | { error: string } {
  const out: Record<string, unknown> = { health: false, help: false, transparent: env.CAGED_TRANSPARENT === '1' };
  let listen: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    let value: string | undefined;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) {
      value = a.slice(eq + 1);
      a = a.slice(0, eq);
    }
    if (a === '--help' || a === '-h') out.help = true;
    else if (a === '--health') out.health = true;
    else if (a === '--transparent') out.transparent = true;
    else if (a === '--listen' || a in FLAGS) {
      if (value === undefined) {
        value = argv[++i];
        if (value === undefined) return { error: `${a} needs a value` };
      }
      if (a === '--listen') listen = value;
      else out[FLAGS[a]] = value;
    } else return { error: `unknown argument: ${a}` };
  }
  for (const [name, key] of ENV) if (out[key] === undefined && env[name]) out[key] = env[name];
  listen ??= env.CAGED_LISTEN || DEFAULT_LISTEN;
  const l = parseListen(listen);
  if (!l) return { error: `--listen must be HOST:PORT, got "${listen}"` };
  out.listen = l;
  if (out.busyPollUs !== undefined) {
    const raw = String(out.busyPollUs);
    const us = Number(raw);
    if (!/^\d+$/.test(raw) || us > 1000) return { error: `--busy-poll-us must be a whole number of microseconds from 0 to 1000, got "${raw}"` };
    out.busyPollUs = us;
  }
  if (out.control !== undefined) return { config: out as unknown as CliConfig };
  if (!out.help && !out.health) {
    for (const [flag, key] of [['--ca-cert', 'caCertFile'], ['--ca-key', 'caKeyFile']] as const) {
      if (!out[key]) return { error: `${flag} is required (or ${flag === '--ca-cert' ? 'CAGED_CA_CERT' : 'CAGED_CA_KEY'})` };
    }
    if (!out.policyFile) return { error: '--policy is required (or CAGED_POLICY)' };
    if (out.upstreamProxy && !/^http:\/\/[^/]+:\d+\/?$/.test(String(out.upstreamProxy))) {
      return { error: '--upstream-proxy must look like http://HOST:PORT' };
    }
  }
  return { config: out as unknown as CliConfig };
}
