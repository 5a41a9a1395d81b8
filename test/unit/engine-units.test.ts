// Pure pieces of the engine (no Docker needed): the tar writer/reader, JSONC devcontainer parsing, ids.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { cageIdFor, devcontainerImage, isCageId, stripJsonc } from '../../src/engine';
import { planAgentUser } from '../../src/engine/agentUser';
import { DEFAULT_BLOCKED_URL } from '../../src/engine/verify';
import { isProbeHost } from '../../src/policy/events';
import { createTar, readTar } from '../../src/engine/tar';

describe('engine building blocks', () => {
  it('createTar writes archives GNU tar extracts, with modes, owners and long names', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'caged-tar-'));
    try {
      const long = 'd/' + 'x'.repeat(120) + '.txt';
      const tar = await createTar([
        { name: 'Dockerfile', data: 'FROM scratch\n' },
        { name: 'key.pem', data: 'secret', mode: 0o600, uid: 1000, gid: 1000 },
        { name: 'sub', type: 'dir' },
        { name: 'sub/link', type: 'symlink', linkname: '../Dockerfile' },
        { name: long, data: Buffer.alloc(1000, 7) },
      ]);
      assert.equal(tar.length % 512, 0);
      const list = spawnSync('tar', ['-tvf', '-'], { input: tar, encoding: 'utf8' });
      assert.equal(list.status, 0, list.stderr);
      assert.match(list.stdout, /-rw------- 1000\/1000\s+6 .* key\.pem/);
      assert.ok(list.stdout.includes(long), list.stdout);
      const x = spawnSync('tar', ['-xf', '-', '-C', dir], { input: tar });
      assert.equal(x.status, 0);
      assert.equal(fs.readFileSync(path.join(dir, 'Dockerfile'), 'utf8'), 'FROM scratch\n');
      assert.equal(fs.readlinkSync(path.join(dir, 'sub', 'link')), '../Dockerfile');
      assert.equal(fs.statSync(path.join(dir, long)).size, 1000);
      // And our reader reads it back.
      const entries = await readTar(tar);
      assert.deepEqual(entries.map((e) => [e.name, e.type]), [['Dockerfile', 'file'], ['key.pem', 'file'], ['sub', 'dir'], ['sub/link', 'symlink'], [long, 'file']]);
      assert.equal(entries[1].mode, 0o600);
      assert.equal(entries[3].linkname, '../Dockerfile');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('readTar reads what GNU tar writes (ustar prefix and GNU long names)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'caged-tar-'));
    try {
      const deep = path.join(dir, 'a'.repeat(60), 'b'.repeat(60));
      fs.mkdirSync(deep, { recursive: true });
      fs.writeFileSync(path.join(deep, 'bundle.crt'), 'PEM');
      fs.symlinkSync('bundle.crt', path.join(deep, 'link.crt'));
      for (const format of ['gnu', 'ustar', 'pax']) {
        const r = spawnSync('tar', [`--format=${format}`, '-cf', '-', '-C', dir, '.'], { maxBuffer: 1 << 20 });
        assert.equal(r.status, 0);
        const entries = await readTar(r.stdout);
        const file = entries.find((e) => e.name.endsWith('/bundle.crt'));
        assert.ok(file, `${format}: ${entries.map((e) => e.name).join(', ')}`);
        assert.equal(file.data.toString(), 'PEM');
        assert.equal(entries.find((e) => e.name.endsWith('/link.crt'))?.linkname, 'bundle.crt');
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('devcontainer.json is read leniently (comments, trailing commas)', () => {
    assert.deepEqual(JSON.parse(stripJsonc('{ // c\n "a": "http://x//y", /* b */ "c": [1,2,],\n}')), { a: 'http://x//y', c: [1, 2] });
    const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'caged-dc-'));
    try {
      assert.deepEqual(devcontainerImage(ws), {});
      fs.mkdirSync(path.join(ws, '.devcontainer'));
      fs.writeFileSync(path.join(ws, '.devcontainer', 'devcontainer.json'), '{\n  // the image\n  "image": "mcr.microsoft.com/devcontainers/base:bookworm",\n}\n');
      assert.equal(devcontainerImage(ws).image, 'mcr.microsoft.com/devcontainers/base:bookworm');
      fs.writeFileSync(path.join(ws, '.devcontainer', 'devcontainer.json'), '{ "build": { "dockerfile": "Dockerfile" } }');
      assert.match(devcontainerImage(ws).note ?? '', /no "image"/);
    } finally {
      fs.rmSync(ws, { recursive: true, force: true });
    }
  });

  it('cage ids are stable per real path', () => {
    const ws = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'caged-id-')));
    const link = ws + '-link';
    try {
      fs.symlinkSync(ws, link);
      assert.ok(isCageId(cageIdFor(ws)));
      assert.equal(cageIdFor(ws), cageIdFor(link));
      assert.equal(cageIdFor(ws), cageIdFor(ws + '/'));
      assert.notEqual(cageIdFor(ws), cageIdFor(os.tmpdir()));
    } finally {
      fs.rmSync(link, { force: true });
      fs.rmSync(ws, { recursive: true, force: true });
    }
  });
});

describe('the agent user (the workspace owner)', () => {
  const debian = { passwd: 'root:x:0:0:root:/root:/bin/bash\nnode:x:1000:1000::/home/node:/bin/bash\n', group: 'root:x:0:\nnode:x:1000:\n', path: '/usr/local/bin:/usr/bin:/bin' };
  it('root owner: nothing changes', () => {
    assert.equal(planAgentUser({ uid: 0, gid: 0 }, { ...debian, exists: () => true }), undefined);
  });
  it('a uid the image has: its user and home, the image files kept', () => {
    const p = planAgentUser({ uid: 1000, gid: 1000 }, { ...debian, exists: (x) => x === '/home/node' })!;
    assert.equal(p.user, '1000:1000');
    assert.equal(p.home, '/home/node');
    assert.equal(p.passwd, undefined);
    assert.equal(p.group, undefined);
    assert.equal(p.createHome, false);
    assert.equal(p.env.PATH, '/home/node/.local/bin:/usr/local/bin:/usr/bin:/bin');
    assert.equal(p.env.NPM_CONFIG_PREFIX, '/home/node/.local');
  });
  it('a new uid/gid: entries appended, a home created', () => {
    const p = planAgentUser({ uid: 4321, gid: 4322 }, { ...debian, exists: () => false })!;
    assert.match(p.passwd!, /^node:x:1000:1000::\/home\/node:\/bin\/bash\ncaged:x:4321:4322:Caged Agent:\/home\/caged:\/bin\/sh\n$/m);
    assert.match(p.group!, /\ncaged:x:4322:\n$/);
    assert.equal(p.createHome, true);
  });
  it('an image without /etc/passwd (distroless, scratch): root and the user', () => {
    const p = planAgentUser({ uid: 4321, gid: 4321 }, { passwd: '', group: '', exists: () => false })!;
    assert.equal(p.passwd, 'root:x:0:0:root:/root:/bin/sh\ncaged:x:4321:4321:Caged Agent:/home/caged:/bin/sh\n');
    assert.equal(p.group, 'root:x:0:\ncaged:x:4321:\n');
    assert.match(p.env.PATH, /^\/home\/caged\/\.local\/bin:\/usr\/local\/sbin:/);
  });
});

describe('verify probes are marked as data', () => {
  it('names under .caged-agent.invalid are probes, others are not', () => {
    assert.equal(isProbeHost(new URL(DEFAULT_BLOCKED_URL).hostname), true);
    assert.equal(isProbeHost('BLOCKED.caged-agent.invalid.'), true);
    assert.equal(isProbeHost('caged-agent.invalid.example.com'), false);
    assert.equal(isProbeHost('evil-caged-agent.invalid'), false);
  });
});
