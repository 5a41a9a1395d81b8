// Transpiles src/ and test/ to out/ (esbuild, no bundling) and runs one suite's *.test.js files
// with Node's built-in test runner. Usage: node scripts/run-node-tests.mjs <suite...> [-- node --test args]
//   suites: unit (test/unit), proxy (test/proxy), engine (test/engine: needs a Docker engine),
//           bench (test/bench: the benchmark script end to end; needs mitmproxy, tinyproxy, gcc),
//           browser (test/browser: code-server + Chromium, see scripts/setup-codeserver.sh)
// The run is printed for people (spec reporter) and summarised for scripts in test-results/<suites>.json
// (scripts/lib/summary-reporter.mjs), which scripts/test.sh sums.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
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
const summary = path.join(root, 'test-results', `${suites.join('+')}.json`);
fs.mkdirSync(path.dirname(summary), { recursive: true });
fs.rmSync(summary, { force: true });
const reporters = [
  '--test-reporter=spec', '--test-reporter-destination=stdout',
  `--test-reporter=${path.join(root, 'scripts/lib/summary-reporter.mjs')}`, `--test-reporter-destination=${summary}`,
];
const r = spawnSync(process.execPath, ['--test', ...reporters, ...extra, ...files], { stdio: 'inherit', cwd: root });
process.exit(r.status ?? 1);
