// Shared helpers for running VS Code's real extension host offline: code-server (installed by
// scripts/setup-codeserver.sh into .cache/code-server) driven by Debian's Chromium through playwright-core.
// Used by scripts/run-extension-tests.mjs (Mocha tests inside the extension host) and test/browser/lib
// (UI flows). Every process started here is tracked by PID and ended by PID (its own process group).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CODE_SERVER_VERSION = process.env.CODE_SERVER_VERSION || '4.100.3';
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // Tests talk to 127.0.0.0/8 only: the browser resolves no host name except 127.0.0.1 (and localhost).
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost',
];

/** Settings written to <user-data-dir>/User/settings.json unless overridden. */
export const DEFAULT_SETTINGS = {
  'workbench.startupEditor': 'none',
  'security.workspace.trust.enabled': false,
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'extensions.autoUpdate': false,
  'extensions.autoCheckUpdates': false,
  'extensions.ignoreRecommendations': true,
  'workbench.enableExperiments': false,
  'workbench.tips.enabled': false,
  'git.openRepositoryInParentFolders': 'never',
  'terminal.integrated.enablePersistentSessions': false,
  'window.restoreWindows': 'none',
  'remote.autoForwardPorts': false,
};

const t0 = Date.now();
/** Seconds since this module was loaded, for progress lines. */
export function elapsed() {
  return ((Date.now() - t0) / 1000).toFixed(1) + 's';
}

/**
 * Makes sure code-server is installed (runs scripts/setup-codeserver.sh; ~0.5 s when cached, ~2 min cold)
 * and returns the path of its entry script.
 */
export function ensureCodeServer({ quiet = false } = {}) {
  const r = spawnSync('bash', [path.join(root, 'scripts/setup-codeserver.sh')], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', quiet ? 'pipe' : 'inherit'],
    env: { ...process.env, CODE_SERVER_VERSION },
  });
  if (r.status !== 0) {
    throw new Error(`scripts/setup-codeserver.sh failed (exit ${r.status})${quiet ? '\n' + r.stderr : ''}`);
  }
  const entry = r.stdout.trim().split('\n').pop();
  if (!entry || !fs.existsSync(entry)) throw new Error(`setup-codeserver.sh printed no usable entry path: ${r.stdout}`);
  return entry;
}

/** A fresh temporary directory (mkdtemp under the OS temp dir). */
export function tempDir(prefix = 'caged-cs-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/**
 * A workspace folder for a run: a temp copy of `from` (default: <repo>/demo when it exists), or an empty
 * temp directory. Returns its absolute path.
 */
export function makeWorkspace(parent, from) {
  const ws = path.join(parent, 'workspace');
  const src = from ?? (fs.existsSync(path.join(root, 'demo')) ? path.join(root, 'demo') : undefined);
  if (src) fs.cpSync(src, ws, { recursive: true });
  else fs.mkdirSync(ws, { recursive: true });
  return ws;
}

function writeSettings(userDataDir, settings) {
  const dir = path.join(userDataDir, 'User');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'settings.json'), JSON.stringify({ ...DEFAULT_SETTINGS, ...settings }, null, 2));
}

/** Sends SIGTERM to the process group led by pid, then SIGKILL after graceMs if it is still there. */
export async function killGroup(pid, graceMs = 3000) {
  if (!pid) return;
  const alive = () => {
    try {
      process.kill(-pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  try {
    process.kill(-pid, 'SIGTERM');
  } catch {
    return;
  }
  const end = Date.now() + graceMs;
  while (alive() && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
  if (alive()) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {}
  }
}

/** Synchronous last-resort kill for process 'exit' handlers. */
export function killGroupSync(pid) {
  if (!pid) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {}
}

function httpGet(url, timeoutMs = 2000) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/**
 * Installs a packaged extension into extensionsDir with `code-server --install-extension` (offline).
 * Returns the command's output.
 */
export function installVsix({ entry, extensionsDir, userDataDir, vsix, configFile }) {
  const abs = path.resolve(vsix);
  if (!fs.existsSync(abs)) throw new Error(`--install-vsix: no such file ${abs}`);
  const args = [entry, '--extensions-dir', extensionsDir, '--user-data-dir', userDataDir, '--install-extension', abs, '--force'];
  if (configFile) args.splice(1, 0, '--config', configFile);
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 120_000, env: { ...process.env } });
  const out = `${r.stdout}${r.stderr}`;
  if (r.status !== 0 || /Failed|Error:/i.test(r.stderr || '')) {
    throw new Error(`code-server --install-extension ${abs} failed (exit ${r.status}):\n${out}`);
  }
  return out;
}

/**
 * Starts code-server on 127.0.0.1 (a free port picked by the OS) with a fresh user-data-dir and
 * extensions-dir under `dir` (default: a new temp dir), and waits until it answers HTTP.
 *
 * @param {object} o
 * @param {string} [o.entry] code-server entry script (default: ensureCodeServer())
 * @param {string} [o.dir] where user-data/, extensions/ and the log go
 * @param {object} [o.settings] extra user settings (merged over DEFAULT_SETTINGS)
 * @param {string} [o.vsix] a .vsix to install into the extensions dir first
 * @param {Record<string,string>} [o.env] extra environment for code-server and its extension host
 * @param {number} [o.startTimeoutMs] default 60000
 * @param {(line: string) => void} [o.onOutput] each output line of code-server
 */
export async function startCodeServer(o = {}) {
  const entry = o.entry ?? ensureCodeServer();
  const dir = o.dir ?? tempDir();
  const userDataDir = path.join(dir, 'user-data');
  const extensionsDir = path.join(dir, 'extensions');
  const configFile = path.join(dir, 'code-server.yaml');
  const logFile = path.join(dir, 'code-server.log');
  fs.mkdirSync(extensionsDir, { recursive: true });
  writeSettings(userDataDir, o.settings ?? {});
  // code-server reads (and would otherwise create) ~/.config/code-server/config.yaml; keep it per run.
  fs.writeFileSync(configFile, 'auth: none\n');
  let installOutput = '';
  if (o.vsix) installOutput = installVsix({ entry, extensionsDir, userDataDir, vsix: o.vsix, configFile });

  const args = [
    entry,
    '--config', configFile,
    '--auth', 'none',
    '--bind-addr', '127.0.0.1:0',
    '--disable-telemetry',
    '--disable-update-check',
    '--disable-workspace-trust',
    '--disable-getting-started-override',
    '--ignore-last-opened',
    '--user-data-dir', userDataDir,
    '--extensions-dir', extensionsDir,
  ];
  const child = spawn(process.execPath, args, {
    cwd: dir,
    detached: true, // its own process group, so stop() ends it and the extension host it forks
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      // '{}' = no extension gallery: code-server would otherwise query open-vsx.org from the server.
      EXTENSIONS_GALLERY: '{}',
      ...(o.env ?? {}),
      XDG_DATA_HOME: path.join(dir, 'xdg-data'),
    },
  });
  const log = fs.createWriteStream(logFile);
  let output = '';
  let port = 0;
  let exited = null;
  const onChunk = (chunk) => {
    const s = chunk.toString();
    output += s;
    log.write(s);
    for (const line of s.split('\n')) {
      if (!line) continue;
      o.onOutput?.(line);
      const m = /HTTP server listening on https?:\/\/[^:]+:(\d+)/.exec(line);
      if (m) port = Number(m[1]);
    }
  };
  child.stdout.on('data', onChunk);
  child.stderr.on('data', onChunk);
  child.on('exit', (code, signal) => (exited = { code, signal }));

  let stopped = false;
  const cs = {
    entry,
    dir,
    userDataDir,
    extensionsDir,
    logFile,
    pid: child.pid,
    port: 0,
    host: '',
    baseUrl: '',
    installOutput,
    output: () => output,
    exited: () => exited,
    async stop() {
      if (stopped) return;
      stopped = true;
      await killGroup(child.pid);
      log.end();
    },
  };

  const timeoutMs = o.startTimeoutMs ?? 60_000;
  const end = Date.now() + timeoutMs;
  try {
    for (;;) {
      if (exited) throw new Error(`code-server exited before it was ready (${JSON.stringify(exited)}):\n${output.slice(-4000)}`);
      if (Date.now() > end) throw new Error(`code-server did not start within ${timeoutMs / 1000} s:\n${output.slice(-4000)}`);
      if (port) {
        try {
          const r = await httpGet(`http://127.0.0.1:${port}/healthz`);
          if (r.status === 200) break;
        } catch {}
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (e) {
    await cs.stop();
    throw e;
  }
  cs.port = port;
  cs.host = `127.0.0.1:${port}`;
  cs.baseUrl = `http://127.0.0.1:${port}`;
  return cs;
}

/** vscode-remote URI for an absolute path on the code-server machine (authority = the page's host). */
export function remoteUri(cs, absPath) {
  return `vscode-remote://${cs.host}${path.resolve(absPath).split(path.sep).map(encodeURIComponent).join('/')}`;
}

/**
 * The workbench URL that opens `folder`, optionally with an extension under development and a test payload
 * (the same module @vscode/test-electron would load: exports.run = () => Promise<void>).
 */
export function workbenchUrl(cs, { folder, extensionDevelopmentPath, extensionTestsPath, skipWelcome = true } = {}) {
  const q = [];
  if (folder) q.push(`folder=${encodeURIComponent(remoteUri(cs, folder))}`);
  const payload = [];
  if (extensionDevelopmentPath) payload.push(['extensionDevelopmentPath', remoteUri(cs, extensionDevelopmentPath)]);
  if (extensionTestsPath) payload.push(['extensionTestsPath', remoteUri(cs, extensionTestsPath)]);
  if (skipWelcome) payload.push(['skipWelcome', 'true']);
  if (payload.length) q.push(`payload=${encodeURIComponent(JSON.stringify(payload))}`);
  return `${cs.baseUrl}/${q.length ? '?' + q.join('&') : ''}`;
}

/** Launches Debian's Chromium through playwright-core (headless unless opts.headless === false). */
export async function launchChromium(opts = {}) {
  if (!fs.existsSync(CHROMIUM_PATH)) {
    throw new Error(`no Chromium at ${CHROMIUM_PATH} (install Debian's chromium: bash scripts/install-system-deps.sh, or set CHROMIUM_PATH)`);
  }
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: opts.headless ?? true,
    args: [...CHROMIUM_ARGS, ...(opts.args ?? [])],
    timeout: opts.timeoutMs ?? 60_000,
  });
}

/** Waits until the workbench has rendered (the activity bar / status bar exist). */
export async function waitForWorkbench(page, timeoutMs = 60_000) {
  await page.waitForSelector('.monaco-workbench .part.statusbar', { timeout: timeoutMs });
  await page.waitForSelector('.monaco-workbench .part.activitybar, .monaco-workbench .part.sidebar', { timeout: timeoutMs });
}
