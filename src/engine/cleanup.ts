// Taking cages down and collecting orphans, only ever among the objects Caged Agent labelled: a cage's agent,
// proxy, network, volume and (on request) its images; the workspace placeholders its start created.
import type Docker from 'dockerode';
import type { GcOptions, GcResult } from './api';
import { byCage, labelledContainers, type Summary } from './discover';
import { isNotFound, removeWhenFree, statusOf } from './dockerutil';
import { listLabelledImages } from './images';
import { LABEL, LABEL_CAGE, LABEL_ROLE } from './names';
import { removeNetwork } from './networks';
import { removePlaceholders } from './protect-scan';
import { placeholdersOf } from './specs';

function removeVolume(docker: Docker, name: string): Promise<boolean> {
  return removeWhenFree(() => docker.getVolume(name).remove(), [409], `the volume ${name} is still in use`);
}

/**
 * Removes the cage's agent, proxy, network and volume. Idempotent: a missing object is success.
 * `images: true` also removes the cage's derived agent images (they embed its CA; a restart rebuilds).
 */
export async function downCage(docker: Docker, cageId: string, opts: { images?: boolean } = {}): Promise<void> {
  const list = await labelledContainers(docker, cageId);
  const placeholders = list.flatMap((c) => (c.Labels[LABEL_ROLE] === 'agent' ? placeholdersOf(c.Labels) : []));
  const order = (c: Summary) => (c.Labels[LABEL_ROLE] === 'agent' ? 0 : c.Labels[LABEL_ROLE] === 'proxy' ? 1 : 2);
  for (const c of list.sort((a, b) => order(a) - order(b))) {
    try {
      await docker.getContainer(c.Id).remove({ force: true, v: true });
    } catch (e) {
      if (!isNotFound(e) && statusOf(e) !== 409) throw e;
    }
  }
  // The empty placeholders the start created go once the agent that had them mounted is gone.
  removePlaceholders(placeholders);
  const filters = { label: [`${LABEL}=1`, `${LABEL_CAGE}=${cageId}`] };
  for (const n of await docker.listNetworks({ filters })) await removeNetwork(docker, n.Id);
  for (const v of (await docker.listVolumes({ filters })).Volumes ?? []) await removeVolume(docker, v.Name);
  if (opts.images) {
    for (const img of await listLabelledImages(docker, cageId)) {
      try {
        await docker.getImage(img.Id).remove({ force: true } as any);
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
    }
  }
}

/**
 * Removes orphans, only among labelled objects: a proxy whose agent is gone, leftover probe containers,
 * per-cage networks with no containers, per-cage volumes with no proxy.
 */
export async function collectGarbage(docker: Docker, opts: GcOptions = {}): Promise<GcResult> {
  const minAge = opts.minAgeMs ?? 60_000;
  const now = Date.now();
  const old = (createdSec: number) => now - createdSec * 1000 >= minAge;
  const result: GcResult = { containers: [], networks: [], volumes: [], images: [] };
  const mine = (cage: string | undefined) => !opts.cages || (!!cage && opts.cages.includes(cage));
  const all = (await labelledContainers(docker)).filter((c) => mine(c.Labels[LABEL_CAGE]));
  for (const [, list] of byCage(all)) {
    const agent = list.find((c) => c.Labels[LABEL_ROLE] === 'agent');
    const agentGone = !agent || agent.State !== 'running';
    for (const c of list) {
      const role = c.Labels[LABEL_ROLE];
      const orphan = role === 'probe' || ((role === 'proxy' || role === 'agent') && agentGone);
      if (!orphan || !old(c.Created)) continue;
      try {
        await docker.getContainer(c.Id).remove({ force: true, v: true });
        if (role === 'agent') removePlaceholders(placeholdersOf(c.Labels));
        result.containers.push(c.Names?.[0]?.replace(/^\//, '') ?? c.Id);
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
    }
  }
  const nets = await docker.listNetworks({ filters: { label: [`${LABEL}=1`, `${LABEL_ROLE}=network`] } });
  for (const n of nets) {
    if (!mine(n.Labels?.[LABEL_CAGE])) continue;
    const info = await docker.getNetwork(n.Id).inspect().catch(() => undefined);
    if (!info) continue;
    const created = Date.parse(info.Created) / 1000;
    if (Object.keys(info.Containers ?? {}).length === 0 && old(created)) {
      if (await removeNetwork(docker, n.Id).catch(() => false)) result.networks.push(n.Name);
    }
  }
  const remaining = await labelledContainers(docker);
  const proxies = new Set(remaining.filter((c) => c.Labels[LABEL_ROLE] === 'proxy').map((c) => c.Labels[LABEL_CAGE]));
  const vols = await docker.listVolumes({ filters: { label: [`${LABEL}=1`, `${LABEL_ROLE}=volume`] } });
  for (const v of vols.Volumes ?? []) {
    const cage = v.Labels?.[LABEL_CAGE];
    if (!mine(cage)) continue;
    const created = Date.parse((v as any).CreatedAt ?? '') / 1000;
    if (proxies.has(cage) || (Number.isFinite(created) && !old(created))) continue;
    if (await removeVolume(docker, v.Name).catch(() => false)) result.volumes.push(v.Name);
  }
  if (opts.images) {
    const used = new Set(remaining.map((c) => c.ImageID));
    for (const img of await listLabelledImages(docker)) {
      if (used.has(img.Id)) continue;
      if (opts.cages && !mine(img.Labels?.[LABEL_CAGE])) continue;
      const tags = (img.RepoTags ?? []).filter((t) => t.startsWith('caged-agent/'));
      if (!tags.length) continue;
      try {
        await docker.getImage(img.Id).remove({ force: false } as any);
        result.images.push(...tags);
      } catch {}
    }
  }
  return result;
}
