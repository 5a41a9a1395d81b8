// Can the engine see the workspace? A remote engine (ssh://, tcp://) or a VM without this folder shared would
// bind-mount a path that does not exist on its side, and the agent would silently get an empty folder. The probe:
// a marker file with a random name written into the workspace on this host, looked for through a throwaway
// container (created, never started) that bind-mounts the workspace. Not there: refuse, in plain words.
import type Docker from 'dockerode';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isNotFound } from './dockerutil';
import { labels } from './names';

/** true: the engine sees the folder; false: it does not; undefined: no marker could be written (not checked). */
export async function workspaceVisible(docker: Docker, image: string, workspace: string, cageId: string): Promise<boolean | undefined> {
  const name = `.caged-agent-probe-${crypto.randomBytes(8).toString('hex')}`;
  const marker = path.join(workspace, name);
  try {
    fs.writeFileSync(marker, 'caged-agent workspace probe\n', { flag: 'wx' });
  } catch {
    return undefined;
  }
  let container: Docker.Container | undefined;
  try {
    container = await docker.createContainer({
      Image: image,
      Entrypoint: ['/caged-agent-probe-never-runs'],
      Cmd: [],
      Labels: labels('probe', cageId),
      NetworkDisabled: true,
      HostConfig: { NetworkMode: 'none', Binds: [`${workspace}:/caged-probe:ro`] },
    } as Docker.ContainerCreateOptions);
    try {
      const stream = await container.getArchive({ path: `/caged-probe/${name}` });
      (stream as any).destroy?.();
      return true;
    } catch (e) {
      if (isNotFound(e)) return false;
      throw e;
    }
  } finally {
    await container?.remove({ force: true, v: true }).catch(() => {});
    fs.rmSync(marker, { force: true });
  }
}
