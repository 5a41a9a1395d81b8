// Transpiles src/ and test/ to out/ (esbuild, no bundling) and runs one suite's *.test.js files
// with Node's built-in test runner. Usage: node scripts/run-node-tests.mjs <suite...> [-- node --test args]
//   suites: unit (test/unit), proxy (test/proxy), engine (test/engine: needs a Docker engine),
//           browser (test/browser: code-server + Chromium, see scripts/setup-codeserver.sh)
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { root, transpile, walk } from './lib/transpile.mjs';

const args = process.argv.slice(2);
const dash = args.indexOf('--');
const suites = dash >= 0 ? args.slice(0, dash) : args;
const extra = dash >= 0 ? args.slice(dash + 1) : [];
if (suites.length === 0) suites.push('unit');

await transpile();

const files = suites.flatMap((s) => walk(path.join(root, 'out/test', s), (p) => p.endsWith('.test.js'))).sort();
if (files.length === 0) {
  console.error(`no test files found for suites: ${suites.join(', ')}`);
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...extra, ...files], { stdio: 'inherit', cwd: root });
process.exit(r.status ?? 1);
