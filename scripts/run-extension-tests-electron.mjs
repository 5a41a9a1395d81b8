// Runs the same extension-host tests (out/test/extension/index.js) in desktop VS Code through
// @vscode/test-electron, for machines that can download VS Code. (This project's CI has no internet and runs
// them in code-server instead: scripts/run-extension-tests.mjs.) Usage: npm run test:electron [-- VERSION]
import { runTests } from '@vscode/test-electron';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { transpile } from './lib/transpile.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
if (!fs.existsSync(path.join(root, 'dist', 'extension.js'))) {
  const b = spawnSync(process.execPath, [path.join(root, 'scripts', 'build.mjs')], { stdio: 'inherit' });
  if (b.status !== 0) process.exit(b.status ?? 1);
}
await transpile();
const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'caged-electron-ws-'));
fs.cpSync(path.join(root, 'demo'), workspace, { recursive: true });
try {
  await runTests({
    version: process.argv[2] ?? 'stable',
    extensionDevelopmentPath: root,
    extensionTestsPath: path.join(root, 'out', 'test', 'extension', 'index.js'),
    launchArgs: [workspace, '--disable-extensions', '--disable-workspace-trust'],
  });
} catch (e) {
  console.error(`extension tests failed: ${e instanceof Error ? e.message : e}`);
  process.exit(1);
} finally {
  fs.rmSync(workspace, { recursive: true, force: true });
}
