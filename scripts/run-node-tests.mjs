// Transpiles src/ and test/ to out/ (esbuild, no bundling) and runs one suite's *.test.js files
// with Node's built-in test runner. Usage: node scripts/run-node-tests.mjs <suite...> [-- node --test args]
//   suites: unit (test/unit), proxy (test/proxy), engine (test/engine: needs a Docker engine)
import * as esbuild from 'esbuild';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const dash = args.indexOf('--');
const suites = dash >= 0 ? args.slice(0, dash) : args;
const extra = dash >= 0 ? args.slice(dash + 1) : [];
if (suites.length === 0) suites.push('unit');

function walk(dir, pred, out = []) {
  if (!fs.existsSync(dir)) return out;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, pred, out);
    else if (pred(p)) out.push(p);
  }
  return out;
}

const sources = [...walk(path.join(root, 'src'), (p) => p.endsWith('.ts')), ...walk(path.join(root, 'test'), (p) => p.endsWith('.ts')), ...walk(path.join(root, 'bench'), (p) => p.endsWith('.ts'))];
await esbuild.build({
  entryPoints: sources,
  outdir: path.join(root, 'out'),
  outbase: root,
  bundle: false,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  sourcemap: 'inline',
  logLevel: 'warning',
});

const files = suites.flatMap((s) => walk(path.join(root, 'out/test', s), (p) => p.endsWith('.test.js'))).sort();
if (files.length === 0) {
  console.error(`no test files found for suites: ${suites.join(', ')}`);
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...extra, ...files], { stdio: 'inherit', cwd: root });
process.exit(r.status ?? 1);
