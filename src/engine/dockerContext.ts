// Which Docker engine to talk to, as the Docker CLI and the Docker extension decide it: an explicit context (the
// cagedAgent.dockerContext setting, like `docker --context`), else DOCKER_HOST, else DOCKER_CONTEXT, else the
// currentContext of the Docker config (`docker context use`), else the default socket. A context's endpoint is
// read from <config>/contexts/meta/<sha256 of its name>/meta.json, its TLS material from
// <config>/contexts/tls/<sha256>/docker/{ca,cert,key}.pem. The answer says why it was chosen (Doctor shows it).
import type Docker from 'dockerode';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface DockerEndpoint {
  options: Docker.DockerOptions;
  /** The endpoint in words: "unix:///var/run/docker.sock", "tcp://host:2376 (TLS)". */
  address: string;
  /** Why this endpoint: "the default socket", "DOCKER_HOST", "context "colima" (DOCKER_CONTEXT)". */
  source: string;
}

export interface EndpointInput {
  /** The context to use (a setting); "" or undefined: decide as the Docker CLI does. */
  context?: string;
  env?: NodeJS.ProcessEnv;
  /** The Docker config folder; default $DOCKER_CONFIG or ~/.docker. */
  configDir?: string;
}

const DEFAULT_SOCKET = '/var/run/docker.sock';

function readJson(file: string): any {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Dockerode options for a Docker host URL (unix://, npipe://, tcp://, http(s)://, ssh://). */
export function optionsForHost(host: string, tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer; verify?: boolean }): Docker.DockerOptions {
  if (host.startsWith('unix://')) return { socketPath: host.slice('unix://'.length) };
  if (host.startsWith('npipe://')) return { socketPath: host.slice('npipe://'.length).replace(/\//g, '\\') };
  const u = new URL(host);
  const useTls = u.protocol === 'https:' || !!(tls?.cert || tls?.ca);
  if (u.protocol === 'ssh:') return { protocol: 'ssh', host: u.hostname, port: u.port ? Number(u.port) : 22, username: u.username || undefined } as Docker.DockerOptions;
  return {
    protocol: useTls ? 'https' : 'http',
    host: u.hostname,
    port: u.port ? Number(u.port) : useTls ? 2376 : 2375,
    ...(tls?.ca ? { ca: tls.ca } : {}),
    ...(tls?.cert ? { cert: tls.cert } : {}),
    ...(tls?.key ? { key: tls.key } : {}),
  };
}

/** The endpoint of a named context, or an error in words. */
export function contextEndpoint(name: string, configDir: string): { host: string; tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer; verify?: boolean } } | { error: string } {
  if (name === 'default') return { host: `unix://${DEFAULT_SOCKET}` };
  const id = crypto.createHash('sha256').update(name).digest('hex');
  const meta = readJson(path.join(configDir, 'contexts', 'meta', id, 'meta.json'));
  const ep = meta?.Endpoints?.docker;
  if (!ep?.Host) return { error: `the Docker context "${name}" does not exist (no ${path.join(configDir, 'contexts', 'meta', id, 'meta.json')}); see \`docker context ls\`` };
  const tlsDir = path.join(configDir, 'contexts', 'tls', id, 'docker');
  const read = (f: string) => {
    try {
      return fs.readFileSync(path.join(tlsDir, f));
    } catch {
      return undefined;
    }
  };
  const tls = { ca: read('ca.pem'), cert: read('cert.pem'), key: read('key.pem'), verify: !ep.SkipTLSVerify };
  return { host: String(ep.Host), tls: tls.ca || tls.cert ? tls : undefined };
}

/** Decides the engine endpoint; throws in words when a named context cannot be used. */
export function resolveDockerEndpoint(i: EndpointInput = {}): DockerEndpoint {
  const env = i.env ?? process.env;
  const configDir = i.configDir ?? env.DOCKER_CONFIG ?? path.join(os.homedir(), '.docker');
  const fromContext = (name: string, why: string): DockerEndpoint => {
    const ep = contextEndpoint(name, configDir);
    if ('error' in ep) throw new Error(`Cannot use ${why}: ${ep.error}.`);
    return { options: optionsForHost(ep.host, ep.tls), address: `${ep.host}${ep.tls ? ' (TLS)' : ''}`, source: `context "${name}" (${why})` };
  };
  if (i.context) return fromContext(i.context, 'the cagedAgent.dockerContext setting');
  if (env.DOCKER_HOST) {
    const tlsDir = env.DOCKER_CERT_PATH;
    const read = (f: string) => (tlsDir ? fs.readFileSync(path.join(tlsDir, f)) : undefined);
    const tls = env.DOCKER_TLS_VERIFY && tlsDir ? { ca: read('ca.pem'), cert: read('cert.pem'), key: read('key.pem') } : undefined;
    return { options: optionsForHost(env.DOCKER_HOST, tls), address: env.DOCKER_HOST, source: 'DOCKER_HOST' };
  }
  if (env.DOCKER_CONTEXT) return fromContext(env.DOCKER_CONTEXT, 'DOCKER_CONTEXT');
  const current = readJson(path.join(configDir, 'config.json'))?.currentContext;
  if (typeof current === 'string' && current && current !== 'default') return fromContext(current, `currentContext in ${path.join(configDir, 'config.json')}`);
  return { options: { socketPath: DEFAULT_SOCKET }, address: `unix://${DEFAULT_SOCKET}`, source: 'the default socket' };
}
