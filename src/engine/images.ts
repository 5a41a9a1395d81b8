// Images: pulling a base when missing, building from an in-memory context, the proxy image (content
// hashed) and the agent image (the user's image plus the cage CA, written with COPY only so images
// without a shell or update-ca-certificates work too).
import type Docker from 'dockerode';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { collect, dockerMessage, followProgress, isNotFound } from './dockerutil';
import { AGENT_BUNDLE_FILE, AGENT_CA_FILE, LABEL, LABEL_CAGE, LABEL_ROLE, labels, PROXY_UID } from './names';
import { createTar, readTar, type TarEntry } from './tar';
import { planAgentUser, type AgentUserPlan, type Owner } from './agentUser';

/** Bumped when the generated Dockerfiles change, so cached images built by older code are not reused. */
const PROXY_TEMPLATE_VERSION = '1';
const AGENT_TEMPLATE_VERSION = '2';

/** Known locations of the system CA bundle, most common first. */
export const CA_BUNDLE_PATHS = [
  '/etc/ssl/certs/ca-certificates.crt', // Debian, Ubuntu, Alpine, Arch, distroless
  '/etc/pki/tls/certs/ca-bundle.crt', // Fedora, RHEL, CentOS, Amazon Linux
  '/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem', // Fedora, RHEL (the real file)
  '/etc/ssl/ca-bundle.pem', // openSUSE
  '/etc/ssl/cert.pem', // Alpine (link), some BSD-style layouts
];

/** Programs that can keep an agent container alive when no command is given. */
const KEEPALIVE_CANDIDATES: Array<{ path: string; args: string[] }> = [
  { path: '/usr/bin/sleep', args: ['2147483647'] },
  { path: '/bin/sleep', args: ['2147483647'] },
  { path: '/bin/busybox', args: ['sleep', '2147483647'] },
  { path: '/usr/bin/busybox', args: ['sleep', '2147483647'] },
];

export const AGENT_ENV_CA: Record<string, string> = {
  NODE_EXTRA_CA_CERTS: AGENT_CA_FILE,
  SSL_CERT_FILE: AGENT_BUNDLE_FILE,
  REQUESTS_CA_BUNDLE: AGENT_BUNDLE_FILE,
  CURL_CA_BUNDLE: AGENT_BUNDLE_FILE,
  GIT_SSL_CAINFO: AGENT_BUNDLE_FILE,
  PIP_CERT: AGENT_BUNDLE_FILE,
  AWS_CA_BUNDLE: AGENT_BUNDLE_FILE,
  DENO_CERT: AGENT_BUNDLE_FILE,
  CARGO_HTTP_CAINFO: AGENT_BUNDLE_FILE,
  HEX_CACERTS_PATH: AGENT_BUNDLE_FILE,
  NPM_CONFIG_CAFILE: AGENT_BUNDLE_FILE,
  BUNDLE_SSL_CA_CERT: AGENT_BUNDLE_FILE,
};

export type Progress = (message: string) => void;

export interface ImageRef {
  ref: string;
  id: string;
  info: Docker.ImageInspectInfo;
}

/** Inspects an image, pulling it when it is not present locally. */
export async function ensureImage(docker: Docker, ref: string, progress?: Progress): Promise<ImageRef> {
  try {
    const info = await docker.getImage(ref).inspect();
    return { ref, id: info.Id, info };
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
  progress?.(`pulling ${ref}`);
  try {
    const stream = await docker.pull(ref);
    let last = 0;
    await followProgress(docker, stream, (s) => {
      if (Date.now() - last > 2000) { last = Date.now(); progress?.(`pulling ${ref}: ${s}`); }
    });
  } catch (e) {
    throw new Error(`image "${ref}" is not present locally and could not be pulled: ${dockerMessage(e)}`);
  }
  const info = await docker.getImage(ref).inspect();
  return { ref, id: info.Id, info };
}

export async function imageExists(docker: Docker, ref: string): Promise<boolean> {
  try {
    await docker.getImage(ref).inspect();
    return true;
  } catch (e) {
    if (isNotFound(e)) return false;
    throw e;
  }
}

/** Builds an image from an in-memory context (legacy builder; no RUN steps are used). */
export async function buildImage(docker: Docker, files: TarEntry[], tag: string, progress?: Progress): Promise<void> {
  const context = await createTar(files);
  const stream = await docker.buildImage(Readable.from([context]), { t: tag, rm: true, forcerm: true, pull: false } as Docker.ImageBuildOptions);
  // Docker's own lines ("Step 6/6 : LABEL …") are for the log; progress says how far the build is, in words.
  await followProgress(docker, stream, (s) => {
    const m = /^Step (\d+)\/(\d+)/.exec(s);
    if (m) progress?.(`building ${tag}: step ${m[1]} of ${m[2]}`);
  });
}

function sha(...parts: Array<string | Buffer>): string {
  const h = crypto.createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex');
}

function jsonArray(a: string[]): string {
  return JSON.stringify(a);
}

/** Builds (or reuses) the proxy image: the proxy bundle on the Node base image, run as a non-root user. */
export async function ensureProxyImage(docker: Docker, bundlePath: string, baseImage: string, progress?: Progress): Promise<string> {
  let bundle: Buffer;
  try {
    bundle = fs.readFileSync(bundlePath);
  } catch {
    throw new Error(`the proxy program ${bundlePath} is missing (run "npm run build")`);
  }
  const base = await ensureImage(docker, baseImage, progress);
  const tag = `caged-agent/proxy:${sha(bundle, base.id, PROXY_TEMPLATE_VERSION).slice(0, 16)}`;
  if (await imageExists(docker, tag)) {
    progress?.(`proxy image ${tag} is cached`);
    return tag;
  }
  progress?.(`building proxy image ${tag} on ${baseImage}`);
  const l = labels('image');
  const dockerfile = [
    `FROM ${base.id}`,
    'COPY proxy.js /app/proxy.js',
    `ENV NODE_ENV=production`,
    `USER ${PROXY_UID}:${PROXY_UID}`,
    `ENTRYPOINT ${jsonArray(['node', '/app/proxy.js'])}`,
    `LABEL ${Object.entries({ ...l, 'caged-agent.base-image': baseImage }).map(([k, v]) => `${JSON.stringify(k)}=${JSON.stringify(v)}`).join(' ')}`,
    '',
  ].join('\n');
  await buildImage(docker, [
    { name: 'Dockerfile', data: dockerfile },
    { name: 'proxy.js', data: bundle, mode: 0o644 },
  ], tag, progress);
  return tag;
}

export interface ImageProbe {
  /** Real paths of the system CA bundle(s) found in the image (symlinks resolved). */
  bundlePaths: string[];
  /** The base bundle's text ('' when the image has none). */
  bundle: string;
  /** Entrypoint + args that keep a container alive, when the image has sleep or busybox. */
  keepalive?: string[];
  /** How the workspace owner becomes the image's user (undefined: root, or no owner given). */
  user?: AgentUserPlan;
}

/** Reads one path out of a (stopped) container; undefined when it does not exist. */
async function readPath(container: Docker.Container, p: string): Promise<{ type: string; data: Buffer; linkname: string } | undefined> {
  let stream: NodeJS.ReadableStream;
  try {
    stream = await container.getArchive({ path: p });
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
  const entries = await readTar(await collect(stream));
  const first = entries[0];
  if (!first) return undefined;
  return { type: first.type, data: first.data, linkname: first.linkname };
}

/** Whether a path exists in the container. (Not infoArchive: its HEAD request leaves a socket open.) */
export async function pathExists(container: Docker.Container, p: string): Promise<boolean> {
  try {
    const stream = await container.getArchive({ path: p });
    (stream as any).destroy?.();
    return true;
  } catch (e) {
    if (isNotFound(e)) return false;
    throw e;
  }
}

/** Runs fn with a created (never started) container of the image, to read its files; removes it after. */
async function withProbeContainer<T>(docker: Docker, imageId: string, cageId: string, fn: (c: Docker.Container) => Promise<T>): Promise<T> {
  const container = await docker.createContainer({
    Image: imageId,
    Entrypoint: ['/caged-agent-probe-never-runs'],
    Cmd: [],
    Labels: labels('probe', cageId),
    NetworkDisabled: true,
    HostConfig: { NetworkMode: 'none', AutoRemove: false },
  } as any);
  try {
    return await fn(container);
  } finally {
    await container.remove({ force: true, v: true }).catch(() => {});
  }
}

/** Which of `programs` the image has on its PATH (without running it). */
export async function missingPrograms(docker: Docker, image: string, cageId: string, programs: string[]): Promise<string[]> {
  const info = await docker.getImage(image).inspect();
  const dirs = ((info.Config?.Env ?? []).find((v) => v.startsWith('PATH='))?.slice(5) || '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(':').filter((d) => d.startsWith('/'));
  return withProbeContainer(docker, info.Id, cageId, async (c) => {
    const missing: string[] = [];
    for (const prog of programs) {
      let found = false;
      for (const d of dirs) if (!found && (await pathExists(c, path.posix.join(d, prog)))) found = true;
      if (!found) missing.push(prog);
    }
    return missing;
  });
}

/** Looks inside an image without running it: its CA bundle and whether it has a way to idle. */
export async function probeImage(docker: Docker, imageId: string, cageId: string, owner?: Owner, imagePath?: string): Promise<ImageProbe> {
  return withProbeContainer(docker, imageId, cageId, async (container) => {
    const bundlePaths: string[] = [];
    let bundle = '';
    for (const start of CA_BUNDLE_PATHS) {
      let p = start;
      for (let depth = 0; depth < 8; depth++) {
        const entry = await readPath(container, p);
        if (!entry) break;
        if (entry.type === 'symlink') {
          p = path.posix.resolve(path.posix.dirname(p), entry.linkname);
          continue;
        }
        if (entry.type === 'file') {
          if (!bundlePaths.includes(p)) bundlePaths.push(p);
          if (!bundle && entry.data.length) bundle = entry.data.toString('utf8');
        }
        break;
      }
    }
    let keepalive: string[] | undefined;
    for (const k of KEEPALIVE_CANDIDATES) {
      if (await pathExists(container, k.path)) { keepalive = [k.path, ...k.args]; break; }
    }
    let user: AgentUserPlan | undefined;
    if (owner && owner.uid !== 0) {
      const text = async (p: string) => {
        const e = await readPath(container, p);
        return e?.type === 'file' ? e.data.toString('utf8') : '';
      };
      const [passwd, group] = [await text('/etc/passwd'), await text('/etc/group')];
      const first = planAgentUser(owner, { passwd, group, path: imagePath, exists: () => true });
      const homeExists = first ? await pathExists(container, first.home) : true;
      user = planAgentUser(owner, { passwd, group, path: imagePath, exists: () => homeExists });
    }
    return { bundlePaths, bundle, keepalive, user };
  });
}

export interface AgentImage {
  tag: string;
  /** Entrypoint + args that keep the agent alive, or undefined (then the image's own command runs). */
  keepalive?: string[];
  /** The container's User ("uid:gid", the workspace owner), or undefined (the image's user). */
  user?: string;
}

/**
 * The user's image plus the cage CA in the system trust store and the common runtime env variables.
 * Cached by (base image id, CA fingerprint).
 */
export async function ensureAgentImage(
  docker: Docker,
  baseImage: string,
  ca: { certPem: string; fingerprint256: string },
  cageId: string,
  workspace: string,
  progress?: Progress,
  owner?: Owner,
): Promise<AgentImage> {
  const base = await ensureImage(docker, baseImage, progress);
  const who = owner && owner.uid !== 0 ? `${owner.uid}:${owner.gid}` : '';
  const tag = `caged-agent/agent:${sha(base.id, ca.fingerprint256, AGENT_TEMPLATE_VERSION, who).slice(0, 16)}`;
  try {
    const info = await docker.getImage(tag).inspect();
    const keep = info.Config?.Labels?.['caged-agent.keepalive'];
    progress?.(`agent image ${tag} is cached`);
    return { tag, keepalive: keep ? JSON.parse(keep) : undefined, user: info.Config?.Labels?.['caged-agent.user'] || undefined };
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
  progress?.(`reading the CA bundle of ${baseImage}`);
  const imagePath = (base.info.Config?.Env ?? []).find((v) => v.startsWith('PATH='))?.slice(5);
  const probe = await probeImage(docker, base.id, cageId, owner, imagePath);
  const user = probe.user;
  if (user) progress?.(`the agent runs as the workspace owner (uid ${user.user}, HOME ${user.home})`);
  const caPem = ca.certPem.trim() + '\n';
  const baseBundle = probe.bundle ? probe.bundle.replace(/\s*$/, '\n') : '';
  const combined = baseBundle + caPem;
  const targets = probe.bundlePaths.length ? probe.bundlePaths : ['/etc/ssl/certs/ca-certificates.crt'];
  progress?.(
    probe.bundle
      ? `adding the cage CA to ${targets.join(', ')} of ${baseImage}`
      : `${baseImage} has no CA bundle; creating ${targets[0]} with the cage CA alone`,
  );
  const l = {
    ...labels('image', cageId, workspace),
    'caged-agent.base-image': baseImage,
    'caged-agent.ca-fingerprint': ca.fingerprint256,
    'caged-agent.keepalive': probe.keepalive ? JSON.stringify(probe.keepalive) : '',
    'caged-agent.user': user?.user ?? '',
  };
  const envLines = [`ENV ${Object.entries({ ...AGENT_ENV_CA, ...(user?.env ?? {}) }).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' ')}`];
  const userLines = user ? [
    ...(user.passwd !== undefined ? ['COPY passwd /etc/passwd'] : []),
    ...(user.group !== undefined ? ['COPY group /etc/group'] : []),
    ...(user.createHome ? [`COPY --chown=${user.user} home/ ${user.home}/`] : []),
  ] : [];
  const dockerfile = [
    `FROM ${base.id}`,
    ...targets.map((t) => `COPY ca-bundle.crt ${t}`),
    `COPY ca-bundle.crt ${AGENT_BUNDLE_FILE}`,
    `COPY caged-agent.crt ${AGENT_CA_FILE}`,
    ...userLines,
    ...envLines,
    `LABEL ${Object.entries(l).map(([k, v]) => `${JSON.stringify(k)}=${JSON.stringify(v)}`).join(' ')}`,
    '',
  ].join('\n');
  await buildImage(docker, [
    { name: 'Dockerfile', data: dockerfile },
    { name: 'ca-bundle.crt', data: combined, mode: 0o644 },
    { name: 'caged-agent.crt', data: caPem, mode: 0o644 },
    ...(user?.passwd !== undefined ? [{ name: 'passwd', data: user.passwd, mode: 0o644 }] : []),
    ...(user?.group !== undefined ? [{ name: 'group', data: user.group, mode: 0o644 }] : []),
    ...(user?.createHome ? [{ name: 'home/.profile', data: 'export PATH="$HOME/.local/bin:$PATH"\n', mode: 0o644 }] : []),
  ], tag, progress);
  return { tag, keepalive: probe.keepalive, user: user?.user };
}

/** Labelled images of one cage (agent images), or all labelled images. */
export async function listLabelledImages(docker: Docker, cageId?: string): Promise<Docker.ImageInfo[]> {
  const label = [`${LABEL}=1`];
  if (cageId) label.push(`${LABEL_CAGE}=${cageId}`);
  return docker.listImages({ filters: { label } });
}

/** How many agent images no container uses are kept (the newest): a restart of a recent cage reuses its image. */
export const MAX_UNUSED_AGENT_IMAGES = 8;

/**
 * Bounds the derived agent images (one per cage: each embeds its cage's CA): those no container uses beyond the
 * newest MAX_UNUSED_AGENT_IMAGES are removed, oldest first. Never `keep`, never an image in use. Returns the
 * removed tags; an image that cannot be removed (in use meanwhile) is left.
 */
export async function pruneAgentImages(docker: Docker, keep: string, max = MAX_UNUSED_AGENT_IMAGES, alsoLabelled: string[] = []): Promise<string[]> {
  const label = [`${LABEL}=1`, `${LABEL_ROLE}=image`, ...alsoLabelled];
  const images: Docker.ImageInfo[] = await docker.listImages({ filters: { label, reference: ['caged-agent/agent'] } } as Docker.ListImagesOptions);
  const used = new Set((await docker.listContainers({ all: true })).map((c) => c.ImageID));
  const unused = images.filter((i) => !used.has(i.Id) && !(i.RepoTags ?? []).includes(keep)).sort((a, b) => b.Created - a.Created);
  const removed: string[] = [];
  for (const i of unused.slice(max)) {
    try {
      await docker.getImage(i.Id).remove();
      removed.push(...(i.RepoTags ?? [i.Id]));
    } catch {}
  }
  return removed;
}
