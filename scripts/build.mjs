// Bundles the three programs with esbuild:
//   dist/extension.js  the VS Code extension (vscode is provided by the host)
//   dist/proxy.js      the egress proxy: one self-contained file copied into the proxy image
//   dist/cli.js        the `caged-agent` command line over the same engine
// plus dist/bench.js (benchmarks). `--production` minifies and drops source maps; `--watch` rebuilds.
import * as esbuild from 'esbuild';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const production = process.argv.includes('--production');
const watch = process.argv.includes('--watch');

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: production ? false : 'linked',
  minify: production,
  logLevel: 'warning',
  absWorkingDir: root,
  // ssh2 (via docker-modem) has optional native helpers; they are loaded in try/catch at run time.
  external: ['cpu-features', './crypto/build/Release/sshcrypto.node'],
  legalComments: 'none',
};

const builds = [
  { ...common, entryPoints: ['src/extension/main.ts'], outfile: 'dist/extension.js', external: [...common.external, 'vscode'] },
  { ...common, entryPoints: ['src/proxy/main.ts'], outfile: 'dist/proxy.js', external: [] },
  { ...common, entryPoints: ['src/cli/main.ts'], outfile: 'dist/cli.js', banner: { js: '#!/usr/bin/env node' } },
  { ...common, entryPoints: ['bench/main.ts'], outfile: 'dist/bench.js' },
];

const present = (await Promise.all(builds.map(async (b) => {
  const fs = await import('node:fs');
  return fs.existsSync(path.join(root, b.entryPoints[0])) ? b : null;
}))).filter(Boolean);

if (watch) {
  for (const b of present) (await esbuild.context(b)).watch();
  console.log('[build] watching', present.map((b) => b.outfile).join(', '));
} else {
  const t0 = Date.now();
  await Promise.all(present.map((b) => esbuild.build(b)));
  const fs = await import('node:fs');
  if (fs.existsSync(path.join(root, 'dist/cli.js'))) fs.chmodSync(path.join(root, 'dist/cli.js'), 0o755);
  console.log(`[build] ${present.map((b) => b.outfile).join(', ')} in ${Date.now() - t0} ms${production ? ' (production)' : ''}`);
}
