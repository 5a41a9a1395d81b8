// Derived agent images stay bounded: one per cage (each embeds its cage's CA), and at a start those no container
// uses beyond the newest few are removed, oldest first. Run on images of this file's own (labelled
// caged-agent.test-i18=1), so other cages' images on the shared engine are never touched.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Docker from 'dockerode';
import { buildImage, pruneAgentImages } from '../../src/engine/images';
import { prepare } from './setup';

const docker = new Docker();
const TEST_LABEL = 'caged-agent.test-i18=1';
const tags = [0, 1, 2, 3].map((i) => `caged-agent/agent:i18-prune-${process.pid}-${i}`);

async function present(tag: string): Promise<boolean> {
  return docker.getImage(tag).inspect().then(() => true, () => false);
}

describe('agent images are bounded', { timeout: 120_000 }, () => {
  before(async () => {
    prepare();
    for (const [i, tag] of tags.entries()) {
      const dockerfile = `FROM scratch\nCOPY x /x\nLABEL "caged-agent"="1" "caged-agent.role"="image" "caged-agent.test-i18"="1"\n`;
      await buildImage(docker, [{ name: 'Dockerfile', data: dockerfile }, { name: 'x', data: `${process.pid}-${i}\n` }], tag);
      await new Promise((r) => setTimeout(r, 1100)); // distinct creation times (seconds)
    }
  });

  after(async () => {
    for (const t of tags) await docker.getImage(t).remove({ force: true }).catch(() => {});
  });

  it('keeps the image in use by the start and the newest unused ones; removes the oldest unused', async () => {
    // tags[0] is the start's own image (oldest); keep one more unused: the newest, tags[3].
    const removed = await pruneAgentImages(docker, tags[0], 1, [TEST_LABEL]);
    assert.deepEqual(removed.sort(), [tags[1], tags[2]].sort());
    assert.deepEqual(await Promise.all(tags.map(present)), [true, false, false, true]);
  });
});
