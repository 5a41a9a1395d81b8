// Removes what an interrupted test run can leave behind, and nothing else:
//  - containers labelled caged-agent.test=1 (test upstreams) and networks with that label (address-pool fillers),
//  - cages (labelled caged-agent.cage) whose workspace was a test's temp folder that no longer exists,
//  - derived images (caged-agent/*) built on the test base images (they inherit caged-agent.test=1) that no
//    container uses. Images a user's real cages use are built on other bases and never match.
// Run by scripts/test.sh before and after the suites. Prints what it removed.
import Docker from 'dockerode';
import fs from 'node:fs';
import os from 'node:os';

const docker = new Docker();
const tmp = os.tmpdir();
const removed = [];
try {
  await docker.ping();
} catch {
  process.exit(0);
}
for (const c of await docker.listContainers({ all: true, filters: { label: ['caged-agent.test=1'] } })) {
  await docker.getContainer(c.Id).remove({ force: true }).catch(() => {});
  removed.push(`container ${c.Names[0]}`);
}
for (const n of await docker.listNetworks({ filters: { label: ['caged-agent.test=1'] } })) {
  await docker.getNetwork(n.Id).remove().catch(() => {});
  removed.push(`network ${n.Name}`);
}
const staleCages = new Set();
for (const c of await docker.listContainers({ all: true, filters: { label: ['caged-agent=1'] } })) {
  const ws = c.Labels['caged-agent.workspace'];
  const cage = c.Labels['caged-agent.cage'];
  if (!cage || !ws || !ws.startsWith(tmp + '/') || fs.existsSync(ws)) continue;
  staleCages.add(cage);
  await docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => {});
  removed.push(`container ${c.Names[0]}`);
}
// A network or volume left without its containers (a run interrupted between steps) names its workspace too.
const staleLabel = (l) => l && l['caged-agent.cage'] && l['caged-agent.workspace']?.startsWith(tmp + '/') && !fs.existsSync(l['caged-agent.workspace']);
for (const n of await docker.listNetworks({ filters: { label: ['caged-agent=1'] } })) if (staleLabel(n.Labels)) staleCages.add(n.Labels['caged-agent.cage']);
for (const v of (await docker.listVolumes({ filters: { label: ['caged-agent=1'] } })).Volumes ?? []) if (staleLabel(v.Labels)) staleCages.add(v.Labels['caged-agent.cage']);
for (const cage of staleCages) {
  const filters = { label: [`caged-agent.cage=${cage}`] };
  for (const n of await docker.listNetworks({ filters })) {
    await docker.getNetwork(n.Id).remove().catch(() => {});
    removed.push(`network ${n.Name}`);
  }
  for (const v of (await docker.listVolumes({ filters })).Volumes ?? []) {
    await docker.getVolume(v.Name).remove().catch(() => {});
    removed.push(`volume ${v.Name}`);
  }
}
const used = new Set((await docker.listContainers({ all: true })).map((c) => c.ImageID));
for (const img of await docker.listImages({ filters: { label: ['caged-agent.test=1'] } })) {
  const tags = (img.RepoTags ?? []).filter((t) => t.startsWith('caged-agent/'));
  if (!tags.length || used.has(img.Id)) continue;
  if (await docker.getImage(img.Id).remove().then(() => true, () => false)) removed.push(`image ${tags.join(' ')}`);
}
// Untagged leftovers of interrupted image builds on the test bases.
for (const img of await docker.listImages({ filters: { label: ['caged-agent.test=1'], dangling: ['true'] } })) {
  if (used.has(img.Id)) continue;
  if (await docker.getImage(img.Id).remove().then(() => true, () => false)) removed.push(`image ${img.Id.slice(7, 19)}`);
}
if (removed.length) console.log(`[sweep] removed test objects no longer in use (interrupted tests, or runs that built on the test images): ${removed.join(', ')}`);
