// The Docker setups people have: a Docker context other than the default is followed (here: the same local
// engine under another socket path, named by currentContext and by DOCKER_CONTEXT), and the derived agent images
// stay bounded: one per cage (each embeds its cage's CA), and at a start those no container uses beyond the newest
// few are removed, oldest first (on images of this file's own, labelled caged-agent.test-i18=1, so other cages'
// images on the shared engine are never touched).
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import Docker from 'dockerode';
import { CageEngine } from '../../src/engine';
import { buildImage, pruneAgentImages } from '../../src/engine/images';
import { workspaceVisible } from '../../src/engine/visibility';
import { NODE_IMAGE, PROXY_BUNDLE, prepare, rmrf, tmpDir } from './setup';

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

describe('docker contexts are followed', { timeout: 60_000 }, () => {
  let dir = '';
  const saved = { DOCKER_HOST: process.env.DOCKER_HOST, DOCKER_CONTEXT: process.env.DOCKER_CONTEXT, DOCKER_CONFIG: process.env.DOCKER_CONFIG };

  before(() => {
    dir = tmpDir('caged-i18-ctx-');
    // The local engine's socket under another path: a context that is not the default.
    fs.symlinkSync('/var/run/docker.sock', path.join(dir, 'other.sock'));
    const config = path.join(dir, 'docker-config');
    for (const name of ['i18-other', 'i18-env']) {
      const meta = path.join(config, 'contexts', 'meta', crypto.createHash('sha256').update(name).digest('hex'));
      fs.mkdirSync(meta, { recursive: true });
      fs.writeFileSync(path.join(meta, 'meta.json'), JSON.stringify({ Name: name, Metadata: {}, Endpoints: { docker: { Host: `unix://${path.join(dir, 'other.sock')}`, SkipTLSVerify: false } } }));
    }
    fs.writeFileSync(path.join(config, 'config.json'), JSON.stringify({ auths: {}, currentContext: 'i18-other' }));
    delete process.env.DOCKER_HOST;
    delete process.env.DOCKER_CONTEXT;
    process.env.DOCKER_CONFIG = config;
  });

  after(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    rmrf(dir);
  });

  const engine = (dockerContext?: string) => new CageEngine({ stateDir: path.join(dir, 'state'), proxyBundlePath: PROXY_BUNDLE, dockerContext });

  it('`docker context use` (currentContext): the engine talks through that context, and Doctor says so', async () => {
    const e = engine();
    assert.equal((e.docker.modem as any).socketPath, path.join(dir, 'other.sock'));
    await e.ping();
    const doctor = await e.doctor();
    const reach = doctor.find((c) => c.name === 'engine reachable')!;
    assert.ok(reach.ok, reach.detail);
    assert.match(reach.detail, /other\.sock, from context "i18-other" \(currentContext in .*config\.json\)/);
  });

  it('DOCKER_CONTEXT wins over currentContext, the setting over both; an unknown context fails in words', async () => {
    process.env.DOCKER_CONTEXT = 'i18-env';
    try {
      assert.match(engine().engineAddress(true), /from context "i18-env" \(DOCKER_CONTEXT\)/);
      assert.match(engine('i18-other').engineAddress(true), /from context "i18-other" \(the cagedAgent\.dockerContext setting\)/);
      await assert.rejects(engine('i18-missing').ping(), /Docker context "i18-missing" does not exist.*docker context ls/);
    } finally {
      delete process.env.DOCKER_CONTEXT;
    }
  });
});

describe('the engine must see the workspace', { timeout: 60_000 }, () => {
  it('the marker-file probe finds a folder of this machine through a bind mount, and cleans up', async () => {
    prepare();
    const dir = tmpDir('caged-i18-visible-');
    try {
      const t0 = Date.now();
      assert.equal(await workspaceVisible(docker, NODE_IMAGE, dir, 'ca-i18probe0000'), true);
      console.log(`# workspace probe: ${Date.now() - t0} ms`);
      assert.deepEqual(fs.readdirSync(dir), [], 'the marker is gone');
      assert.deepEqual(await docker.listContainers({ all: true, filters: { label: ['caged-agent.cage=ca-i18probe0000'] } }), [], 'no probe container left');
    } finally {
      rmrf(dir);
    }
  });
});
