// Runs the extension-host tests (test/extension/**/*.test.ts, Mocha) inside a REAL VS Code extension host:
// code-server (scripts/setup-codeserver.sh) opened by Debian's Chromium through playwright-core.
//
// Usage: node scripts/run-extension-tests.mjs [options]
//   --workspace DIR       folder to open (default: a temp copy of demo/ if it exists, else an empty temp dir)
//   --install-vsix FILE   test the packaged extension: install FILE into the run's extensions dir and load no
//                         development path (the tests still come from out/test/extension)
//   --extension-dir DIR   extension development path (default: the repo root)
//   --grep REGEX          only tests whose full title matches (env CAGED_TEST_GREP inside the host)
//   --files a,b           only test files whose name contains one of these substrings
//   --timeout MIN         whole-run limit in minutes (default 15); per-test limit: CAGED_TEST_TIMEOUT_MS
//   --no-build            don't build dist/extension.js even if missing
//   --keep                keep the temp dir (user data, logs) for inspection
//   --verbose             also print code-server's output and the browser console
// Prints the extension host's test output as it arrives and ends with `N passed, N failed`, also written as
// test-results/extension.json (the format of scripts/lib/summary-reporter.mjs); exit code 0 only
// when every test passed. On failure/timeout: a screenshot and the workbench logs go to test-results/.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { format } from 'node:util';
import { transpile } from './lib/transpile.mjs';
import {
  elapsed, ensureCodeServer, killGroupSync, launchChromium, makeWorkspace, root, startCodeServer, tempDir, workbenchUrl,
} from './lib/codeserver.mjs';

const runStartedAt = Date.now();
const RESULT_PREFIX = '[caged-agent-tests] RESULT ';

function parseArgs(argv) {
  const o = { extensionDir: root, workspace: undefined, vsix: undefined, grep: undefined, files: undefined, timeoutMin: 15, build: true, keep: false, verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--workspace') o.workspace = path.resolve(val());
    else if (a === '--extension-dir') o.extensionDir = path.resolve(val());
    else if (a === '--install-vsix') o.vsix = path.resolve(val());
    else if (a === '--grep') o.grep = val();
    else if (a === '--files') o.files = val();
    else if (a === '--timeout') o.timeoutMin = Number(val());
    else if (a === '--no-build') o.build = false;
    else if (a === '--keep') o.keep = true;
    else if (a === '--verbose') o.verbose = true;
    else if (a === '-h' || a === '--help') {
      const lines = fs.readFileSync(new URL(import.meta.url), 'utf8').split('\n');
      const header = lines.slice(0, lines.findIndex((l) => !l.startsWith('//')));
      console.log(header.map((l) => l.slice(3)).join('\n'));
      process.exit(0);
    } else throw new Error(`unknown option ${a}`);
  }
  return o;
}

const say = (msg) => console.log(`[ext-tests ${elapsed()}] ${msg}`);

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (e) {
  console.error(String(e.message ?? e));
  process.exit(2);
}

const resultsDir = path.join(root, 'test-results');
let cs; // code-server handle
let browser;
let work; // temp dir
let exitCode = 1;
let summary = null;

// Last-resort cleanup if we are interrupted: end the code-server process group we started (by PID).
process.on('exit', () => {
  if (cs) killGroupSync(cs.pid);
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, async () => {
    say(`${sig}: stopping`);
    await cleanup();
    process.exit(130);
  });
}

async function cleanup() {
  try {
    await browser?.close();
  } catch {}
  browser = undefined;
  await cs?.stop();
  if (work && !opts.keep) fs.rmSync(work, { recursive: true, force: true });
}

/**
 * Failure artifacts under test-results/extension-host-logs/: the workbench (browser) logs handed to
 * codeAutomationExit, the server side logs (remote extension host, each extension's output channels) and
 * code-server's own output.
 */
function saveLogs(browserLogs) {
  const dir = path.join(resultsDir, 'extension-host-logs');
  try {
    fs.rmSync(dir, { recursive: true, force: true });
    for (const l of Array.isArray(browserLogs) ? browserLogs : []) {
      if (!l?.relativePath) continue;
      const p = path.join(dir, 'browser', path.normalize(l.relativePath).replace(/^(\.\.(\/|\\|$))+/, ''));
      fs.mkdirSync(path.dirname(p), { recursive: true });
      fs.writeFileSync(p, String(l.contents ?? ''));
    }
    if (cs) {
      const serverLogs = path.join(cs.userDataDir, 'logs');
      if (fs.existsSync(serverLogs)) fs.cpSync(serverLogs, path.join(dir, 'server'), { recursive: true });
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'code-server.log'), cs.output());
    }
    say(`logs saved under ${path.relative(root, dir)}/ (server/*/exthost1/ has the extension host and output channels)`);
  } catch (e) {
    say(`(saving logs failed: ${e.message})`);
  }
}

async function main() {
  const tStart = Date.now();
  // 1. The extension bundle and the transpiled tests.
  const distMain = path.join(root, 'dist/extension.js');
  if (!opts.vsix && opts.extensionDir === root && !fs.existsSync(distMain)) {
    if (!opts.build) throw new Error('dist/extension.js is missing (run npm run build)');
    say('dist/extension.js missing: npm run build');
    const r = spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
    if (r.status !== 0 || !fs.existsSync(distMain)) throw new Error('npm run build failed or produced no dist/extension.js');
  }
  await transpile();
  const testsIndex = path.join(root, 'out/test/extension/index.js');
  if (!fs.existsSync(testsIndex)) throw new Error(`${testsIndex} missing after transpile`);
  say('tests transpiled to out/');

  // 2. code-server with a fresh profile, a workspace and (optionally) the packaged extension installed.
  const entry = ensureCodeServer();
  work = tempDir('caged-ext-tests-');
  const workspace = opts.workspace ?? makeWorkspace(work);
  const env = { ...process.env };
  delete env.VSCODE_IPC_HOOK_CLI; // when run from a code-server terminal, don't talk to that instance
  if (opts.grep) env.CAGED_TEST_GREP = opts.grep;
  if (opts.files) env.CAGED_TEST_FILES = opts.files;
  cs = await startCodeServer({
    entry,
    dir: work,
    env,
    vsix: opts.vsix,
    onOutput: opts.verbose ? (l) => console.log(`[code-server] ${l}`) : undefined,
  });
  if (opts.vsix) say(`installed ${path.relative(root, opts.vsix) || opts.vsix}: ${cs.installOutput.trim().split('\n').pop()}`);
  say(`code-server ${cs.baseUrl} (pid ${cs.pid}) ready; workspace ${workspace}`);

  // 3. Chromium opens the workbench with the test payload.
  browser = await launchChromium();
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  let firstResultAt = 0;
  let payloadStarted = false;
  let resolveExit;
  const exited = new Promise((r) => (resolveExit = r));
  await page.exposeFunction('codeAutomationLog', (type, args) => {
    // args are console arguments (format string first, e.g. '%s%s' from Mocha's spec reporter).
    const text = Array.isArray(args) ? format(...args) : String(args);
    for (const line of text.split('\n')) {
      if (line.startsWith(RESULT_PREFIX)) {
        try {
          summary = JSON.parse(line.slice(RESULT_PREFIX.length));
        } catch {}
      }
      if (!firstResultAt && /^\s*(✔|✓|\d+\)|✗)\s/.test(line)) {
        firstResultAt = Date.now();
      }
    }
    if (text.startsWith('[caged-agent-tests] running')) payloadStarted = true;
    // Before the payload starts, the log is the workbench connecting: show only its errors unless --verbose.
    if (!payloadStarted && !opts.verbose && type !== 'error') return;
    process.stdout.write(type === 'error' ? text.replace(/^/gm, '[host:error] ') + '\n' : text + '\n');
  });
  await page.exposeFunction('codeAutomationExit', (code, logs) => {
    resolveExit({ code: Number(code), logs });
  });
  if (opts.verbose) {
    page.on('console', (m) => console.log(`[browser:${m.type()}] ${m.text()}`));
    page.on('requestfailed', (r) => console.log(`[browser:requestfailed] ${r.url()} ${r.failure()?.errorText ?? ''}`));
  }
  page.on('pageerror', (e) => console.log(`[browser:pageerror] ${e.message}`));

  // The workbench only runs a test payload in extension-development mode (a development path must be
  // present). With --install-vsix the extension under test is the installed one, so the development path is
  // an empty folder: nothing loads from it and the installed extension is the only copy.
  let devPath = opts.extensionDir;
  if (opts.vsix) {
    devPath = path.join(work, 'no-development-extension');
    fs.mkdirSync(devPath, { recursive: true });
  }
  const url = workbenchUrl(cs, {
    folder: workspace,
    extensionDevelopmentPath: devPath,
    extensionTestsPath: testsIndex,
  });
  if (opts.verbose) say(`opening ${url}`);
  const tOpen = Date.now();
  try {
    await page.goto(url, { waitUntil: 'domcontentloaded', timeout: 60_000 });
    await page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
  } catch (e) {
    await shot(page, 'ext-tests-page-did-not-load');
    saveLogs([]);
    throw new Error(`the workbench page did not load within 60 s: ${e.message}`);
  }
  say(`workbench loaded in ${((Date.now() - tOpen) / 1000).toFixed(1)} s; tests running (limit ${opts.timeoutMin} min)`);

  // 4. Wait for codeAutomationExit, the code-server process dying, or the time limit.
  const limitMs = opts.timeoutMin * 60_000;
  let timer;
  const outcome = await Promise.race([
    exited,
    new Promise((r) => (timer = setTimeout(() => r({ timeout: true }), limitMs))),
    new Promise((r) => {
      const iv = setInterval(() => {
        if (cs.exited()) {
          clearInterval(iv);
          r({ died: cs.exited() });
        }
      }, 500);
      iv.unref();
    }),
  ]);
  clearTimeout(timer);

  if (outcome.timeout) {
    await shot(page, 'ext-tests-timeout');
    saveLogs([]);
    throw new Error(`the tests did not finish within ${opts.timeoutMin} min (hung?); screenshot in test-results/screenshots/ext-tests-timeout.png`);
  }
  if (outcome.died) {
    saveLogs([]);
    throw new Error(`code-server exited during the tests: ${JSON.stringify(outcome.died)}\n${cs.output().slice(-4000)}`);
  }
  if (firstResultAt) say(`first test result ${((firstResultAt - tStart) / 1000).toFixed(1)} s after launch`);
  exitCode = outcome.code;
  if (exitCode !== 0 || !summary) {
    await shot(page, 'ext-tests-failed');
    saveLogs(outcome.logs);
  }
  if (!summary) {
    // The payload never reported (e.g. it failed to load): show the tail of the extension host log.
    const hostLogs = walkFiles(path.join(cs.userDataDir, 'logs')).filter((f) => f.endsWith('remoteexthost.log'));
    for (const f of hostLogs) console.log(`--- ${path.basename(f)} (tail) ---\n${fs.readFileSync(f, 'utf8').slice(-3000)}`);
    const csLog = cs.output();
    if (csLog) console.log(`--- code-server output (tail) ---\n${csLog.slice(-3000)}`);
    if (exitCode === 0) exitCode = 1;
  }
  say(`done in ${((Date.now() - tStart) / 1000).toFixed(1)} s (extension host exit code ${outcome.code})`);
}

/** The tests' own temp folders, caged-ext-<file>-* (their upstream CA files, kept in the settings across test files until the end). */
function removeTestTempDirs() {
  const tmp = os.tmpdir();
  for (const name of fs.readdirSync(tmp)) {
    if (!/^caged-ext-(?!tests-)[a-z0-9]+-/.test(name)) continue;
    const p = path.join(tmp, name);
    try {
      if (fs.statSync(p).mtimeMs >= runStartedAt - 1000) fs.rmSync(p, { recursive: true, force: true });
    } catch {}
  }
}

function walkFiles(dir, out = []) {
  if (!fs.existsSync(dir)) return out;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walkFiles(p, out);
    else out.push(p);
  }
  return out;
}

async function shot(page, name) {
  try {
    const dir = path.join(resultsDir, 'screenshots');
    fs.mkdirSync(dir, { recursive: true });
    await page.screenshot({ path: path.join(dir, `${name}.png`), timeout: 10_000 });
    say(`screenshot test-results/screenshots/${name}.png`);
  } catch (e) {
    say(`(screenshot failed: ${e.message})`);
  }
}

try {
  await main();
} catch (e) {
  console.error(`[ext-tests ${elapsed()}] ERROR: ${e.message ?? e}`);
  exitCode = 1;
} finally {
  await cleanup();
  removeTestTempDirs();
}
if (!summary) summary = { passed: 0, failed: 1, skipped: 0, failures: [{ name: 'the extension-host test payload reported no results', error: `exit ${exitCode}` }], skips: [] };
else if (exitCode !== 0 && summary.failed === 0) {
  summary.failed = 1;
  summary.failures = [...(summary.failures ?? []), { name: 'the extension-host run', error: `exit ${exitCode}` }];
}
fs.mkdirSync(resultsDir, { recursive: true });
fs.writeFileSync(path.join(resultsDir, 'extension.json'), JSON.stringify(summary) + '\n');
console.log(`${summary.passed} passed, ${summary.failed} failed${summary.skipped ? `, ${summary.skipped} skipped` : ''}`);
process.exit(exitCode);
