// `doctor`: is the engine there, which version (and its known caveats), is the proxy program built, are the
// base images present, is the egress network ours, does this machine's git open bare repositories it finds.
import type Docker from 'dockerode';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import type { DoctorCheck } from './api';
import { isNotFound } from './dockerutil';
import { imageExists } from './images';
import { EGRESS_NETWORK, LABEL } from './names';

export function versionLess(v: string, than: [number, number, number]): boolean {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(v);
  if (!m) return false;
  const a = [Number(m[1]), Number(m[2]), Number(m[3])];
  for (let i = 0; i < 3; i++) if (a[i] !== than[i]) return a[i] < than[i];
  return false;
}

export interface DoctorInput {
  docker: Docker;
  /** Pings the engine; throws in plain words when nothing answers. */
  ping(): Promise<void>;
  engineAddress: string;
  proxyBundlePath: string;
  proxyBaseImage: string;
  agentImage: string;
}

export async function runDoctor(d: DoctorInput): Promise<DoctorCheck[]> {
  const checks: DoctorCheck[] = [];
  try {
    await d.ping();
    checks.push({ name: 'engine reachable', ok: true, detail: `answers at ${d.engineAddress}` });
  } catch (e) {
    checks.push({ name: 'engine reachable', ok: false, detail: (e as Error).message });
    return checks;
  }
  const v = await d.docker.version();
  // Podman's Docker-compatible API (`podman system service`) answers like Docker, with its own version number.
  const podman = (v.Components ?? []).some((c) => /podman/i.test(c.Name));
  checks.push({ name: 'engine version', ok: true, detail: `${podman ? 'Podman' : 'Docker'} ${v.Version} (API ${v.ApiVersion}, ${v.Os}/${v.Arch})` });
  if (podman) {
    checks.push({
      name: 'Podman',
      ok: true,
      warning: true,
      detail: `Podman ${v.Version} through its Docker-compatible API: Caged Agent is tested on Docker. A cage needs internal networks, nested read-only bind mounts, exec and health checks; each start checks the agent's mounts from inside and refuses when they are not applied. Podman needs rlimits it may set (rootful podman fails to start any container where it may not raise RLIMIT_NPROC).`,
    });
  } else if (versionLess(v.Version, [25, 0, 5])) {
    checks.push({
      name: 'embedded DNS caveat',
      ok: false,
      warning: true,
      detail: `Docker ${v.Version} is older than 25.0.5: its embedded DNS can forward external lookups from internal networks (CVE-2024-29018). Caged Agent points the agent's DNS forwarders at an address that answers nothing, so this is covered; upgrading the engine is still advised.`,
    });
  } else {
    checks.push({ name: 'embedded DNS caveat', ok: true, detail: 'engine has the CVE-2024-29018 fix' });
  }
  const bundle = d.proxyBundlePath;
  checks.push(fs.existsSync(bundle)
    ? { name: 'proxy program', ok: true, detail: bundle }
    : { name: 'proxy program', ok: false, detail: `${bundle} is missing (run "npm run build")` });
  for (const [name, ref] of [['proxy base image', d.proxyBaseImage], ['agent base image', d.agentImage]] as const) {
    const present = await imageExists(d.docker, ref);
    checks.push({
      name,
      ok: present,
      warning: !present,
      detail: present ? `${ref} is present` : `${ref} is not present locally; it will be pulled on the first start (needs registry access)`,
    });
  }
  try {
    const egress = await d.docker.getNetwork(EGRESS_NETWORK).inspect();
    checks.push({ name: 'egress network', ok: egress.Labels?.[LABEL] === '1', detail: egress.Labels?.[LABEL] === '1' ? `${EGRESS_NETWORK} exists` : `${EGRESS_NETWORK} exists but was not created by Caged Agent` });
  } catch (e) {
    if (!isNotFound(e)) throw e;
    checks.push({ name: 'egress network', ok: true, detail: `${EGRESS_NETWORK} will be created on the first start` });
  }
  checks.push(hostGitCheck());
  return checks;
}

/**
 * The one workspace plant the mounts cannot stop: the agent may delete `.git/HEAD` (git writes it) and lay out a bare
 * repository (HEAD, objects/, refs/, config) at the workspace root, which this machine's git then obeys unless
 * `safe.bareRepository` is `explicit` (git 2.38+).
 */
export function hostGitCheck(read: () => { status: number | null; stdout: string; error?: Error } = () => spawnSync('git', ['config', '--get', 'safe.bareRepository'], { encoding: 'utf8', timeout: 5000 })): DoctorCheck {
  const name = 'git ignores planted bare repositories';
  const r = read();
  if (r.error) return { name, ok: true, detail: 'git is not installed on this machine' };
  if (r.stdout.trim().toLowerCase() === 'explicit') return { name, ok: true, detail: 'safe.bareRepository is explicit' };
  return {
    name,
    ok: false,
    warning: true,
    detail: 'git on this machine opens a bare repository it finds in a folder (safe.bareRepository is not "explicit"): an agent that deletes .git/HEAD and writes HEAD, objects/, refs/ and config at the workspace root can make your git run its config. Fix: git config --global safe.bareRepository explicit',
  };
}
