// The .vsix holds what the extension needs and nothing else (.vscodeignore checked against vsce's own listing),
// and the manifest contributes what the docs promise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));

test('the package contains exactly the bundles, manifest, docs and media it needs', () => {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'node_modules', '@vscode', 'vsce', 'vsce'), 'ls', '--no-dependencies'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const files = r.stdout.split('\n').map((s) => s.trim()).filter(Boolean).sort();
  assert.deepEqual(files, [
    'CHANGELOG.md',
    'LICENSE',
    'README.md',
    'dist/cli.js',
    'dist/extension.js',
    'dist/proxy.js',
    'media/icon.svg',
    'media/walkthrough/allow.md',
    'media/walkthrough/block.md',
    'media/walkthrough/docker.md',
    'media/walkthrough/start.md',
    'package.json',
  ]);
});

test('the manifest: main bundle, engines no newer than @types/vscode, commands, views, walkthrough', () => {
  assert.equal(manifest.name, 'caged-agent');
  assert.equal(manifest.displayName, 'Caged Agent');
  assert.equal(manifest.main, './dist/extension.js');
  const engine = manifest.engines.vscode.replace(/^\^/, '');
  const types = JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', '@types', 'vscode', 'package.json'), 'utf8')).version;
  const num = (v: string) => v.split('.').slice(0, 2).map(Number);
  const [em, en] = num(engine);
  const [tm, tn] = num(types);
  assert.ok(em < tm || (em === tm && en <= tn), `engines.vscode ${engine} is not newer than @types/vscode ${types}`);
  const ids = manifest.contributes.commands.map((c: { command: string }) => c.command);
  for (const v of ['start', 'stop', 'openTerminal', 'allowHost', 'openPolicy', 'verify', 'showLog', 'cleanUp']) assert.ok(ids.includes(`cagedAgent.${v}`), v);
  for (const c of manifest.contributes.commands) assert.equal(c.category, 'Caged Agent');
  assert.deepEqual(manifest.contributes.views.cagedAgent.map((v: { id: string }) => v.id), ['cagedAgent.cages', 'cagedAgent.allowlist', 'cagedAgent.blocks']);
  assert.equal(manifest.contributes.viewsContainers.activitybar[0].icon, 'media/icon.svg');
  assert.ok(fs.existsSync(path.join(ROOT, 'media', 'icon.svg')));
  for (const step of manifest.contributes.walkthroughs[0].steps) assert.ok(fs.existsSync(path.join(ROOT, step.media.markdown)), step.media.markdown);
  for (const k of Object.keys(manifest.contributes.configuration.properties)) assert.match(k, /^cagedAgent\./);
  assert.equal(manifest.capabilities.untrustedWorkspaces.supported, 'limited');
});
