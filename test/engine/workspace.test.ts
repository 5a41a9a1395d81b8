// The workspace is part of the cage, tried as the agent would: from inside the container, with real files and a
// real git repository (a submodule included). Every plant the issue lists must fail, the host's `git status` and
// `git commit` afterwards must run nothing the agent wrote, and ordinary work (edits, git, npm) must keep working.
// A control cage with the protection switched off shows the same plants succeeding, so these tests see the attack.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CageEngine, verifySummary, type CageInfo, type ExecResult } from '../../src/engine';
import { ALLOW_POLICY, DEV_IMAGE, leftovers, makeWorkspace, NODE_IMAGE, NOSHELL_IMAGE, prepare, PROXY_BUNDLE, rmrf, tmpDir } from './setup';

const IDENT = { GIT_AUTHOR_NAME: 'Agent', GIT_AUTHOR_EMAIL: 'agent@cage.test', GIT_COMMITTER_NAME: 'Agent', GIT_COMMITTER_EMAIL: 'agent@cage.test' };
/** The host's git as a user runs it: the repository's own hooks and config, nothing from this machine's global config. */
const HOST_GIT_ENV = { ...process.env, ...IDENT, GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1', GIT_ALLOW_PROTOCOL: 'file' };

/** The host's git, run as the folder's owner (the user whose repository it is; the agent runs as that user too). */
function git(cwd: string, ...args: string[]): string {
  const { uid, gid } = fs.statSync(cwd);
  const r = spawnSync('git', ['-c', 'safe.directory=*', '-c', 'protocol.file.allow=always', ...args], { cwd, encoding: 'utf8', env: HOST_GIT_ENV, uid, gid });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

const POLICY_WITH_WORKSPACE = `${ALLOW_POLICY}workspace:
  protect:
    - Makefile
    - .github/workflows/
  writable:
    - .idea/            # the agent may change the JetBrains settings (a visible opt-out)
`;

/** A git repository with one commit and a submodule, like a user's checkout. */
function makeRepo(prefix: string, policy = POLICY_WITH_WORKSPACE): string {
  const ws = makeWorkspace(prefix, policy);
  const lib = tmpDir('caged-i14-lib-');
  git(lib, 'init', '-q', '-b', 'main');
  fs.writeFileSync(path.join(lib, 'lib.txt'), 'lib\n');
  git(lib, 'add', '.');
  git(lib, 'commit', '-qm', 'lib');
  git(ws, 'init', '-q', '-b', 'main');
  fs.mkdirSync(path.join(ws, '.vscode'));
  fs.writeFileSync(path.join(ws, '.vscode', 'settings.json'), '{ "editor.tabSize": 2 }\n');
  fs.writeFileSync(path.join(ws, 'Makefile'), 'all:\n\t@echo build\n');
  fs.writeFileSync(path.join(ws, 'src.js'), 'console.log(1);\n');
  git(ws, 'submodule', 'add', '-q', lib, 'vendor/lib');
  git(ws, 'add', '.');
  git(ws, 'commit', '-qm', 'initial');
  rmrf(lib);
  return ws;
}

/** Everything under the workspace except the objects git writes, as path -> content (to compare before/after). */
function snapshot(ws: string, rels: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  const add = (abs: string, rel: string) => {
    let st: fs.Stats;
    try { st = fs.lstatSync(abs); } catch { out[rel] = '(missing)'; return; }
    if (st.isSymbolicLink()) out[rel] = `link ${fs.readlinkSync(abs)}`;
    else if (st.isDirectory()) for (const n of fs.readdirSync(abs).sort()) add(path.join(abs, n), `${rel}/${n}`);
    else out[rel] = fs.readFileSync(abs, 'utf8');
  };
  for (const r of rels) add(path.join(ws, r), r);
  return out;
}

const PROTECTED_SAMPLE = ['.git/config', '.git/commondir', '.git/hooks', '.git/info', '.git/modules/vendor/lib/config', '.git/modules/vendor/lib/hooks', '.gitmodules', '.vscode', '.caged', 'Makefile', 'vendor/lib/.git'];

/** The plants of the issue (and a few more), as shell commands run inside the agent. Each must fail. */
function plants(ws: string): Array<[string, string]> {
  const m = (name: string) => `touch ${ws}/PWNED-${name}`;
  return [
    ['a git hook', `printf '#!/bin/sh\\n${m('hook')}\\n' > .git/hooks/pre-commit && chmod +x .git/hooks/pre-commit`],
    ['a git hook through a new file name', `printf '#!/bin/sh\\n${m('hook2')}\\n' > .git/hooks/post-commit`],
    ['core.fsmonitor with git config', `git config core.fsmonitor '${m('fsmonitor')}; false'`],
    ['core.fsmonitor appended to .git/config', `printf '[core]\\n\\tfsmonitor = "${m('fsmonitor2')}; false"\\n' >> .git/config`],
    ['core.hooksPath to a writable folder', `git config core.hooksPath hooks-planted`],
    ['.git/info/attributes', `echo '* filter=evil' > .git/info/attributes`],
    ['a submodule hook', `printf '#!/bin/sh\\n${m('subhook')}\\n' > .git/modules/vendor/lib/hooks/pre-commit`],
    ['a submodule config', `printf '[core]\\n\\tfsmonitor = "${m('subfsmonitor')}; false"\\n' >> .git/modules/vendor/lib/config`],
    ['a new submodule git folder', `mkdir -p .git/modules/evil/hooks`],
    ['a new worktree entry', `mkdir -p .git/worktrees/evil`],
    ['the submodule checkout pointed elsewhere', `echo 'gitdir: ../../evil-gitdir' > vendor/lib/.git`],
    ['.gitmodules', `printf '[submodule "x"]\\n\\tpath = x\\n\\turl = ext::sh -c ${m('gitmodules')}\\n' > .gitmodules`],
    ['.vscode/settings.json (widen the policy)', `echo '{"cagedAgent.policyPath": "notes/p.yaml"}' > .vscode/settings.json`],
    ['.vscode/tasks.json (runOn: folderOpen)', `echo '{"version":"2.0.0","tasks":[{"label":"x","type":"shell","command":"${m('task')}","runOptions":{"runOn":"folderOpen"}}]}' > .vscode/tasks.json`],
    ['.devcontainer/devcontainer.json (initializeCommand)', `mkdir -p .devcontainer && echo '{"initializeCommand":"${m('devcontainer')}"}' > .devcontainer/devcontainer.json`],
    ['.devcontainer.json', `echo '{"initializeCommand":"${m('devcontainer2')}"}' > .devcontainer.json`],
    ['.mcp.json', `echo '{"mcpServers":{"x":{"command":"sh","args":["-c","${m('mcp')}"]}}}' > .mcp.json`],
    ['.claude/commands/', `mkdir -p .claude/commands && echo evil > .claude/commands/x.md`],
    ['.claude/agents/', `mkdir -p .claude/agents && echo evil > .claude/agents/x.md`],
    ['.claude/settings.json (hooks)', `mkdir -p .claude && echo '{"hooks":{}}' > .claude/settings.json`],
    ['the policy', `echo '  - host: evil.test' >> .caged/policy.yaml`],
    ['Makefile (workspace.protect)', `printf 'all:\\n\\t${m('make')}\\n' > Makefile`],
    ['.github/workflows/ (workspace.protect, missing)', `mkdir -p .github/workflows && echo x > .github/workflows/x.yml`],
    ['.git/commondir pointed at a repository the agent made', `mkdir -p evil-common/hooks && printf '#!/bin/sh\\n${m('commondir')}\\n' > evil-common/hooks/pre-commit && chmod +x evil-common/hooks/pre-commit && echo ../evil-common > .git/commondir`],
    ['rename .git away and recreate it', `mv .git .git.old && mkdir .git`],
    ['rename .vscode away and recreate it', `mv .vscode .vscode.old && mkdir .vscode && echo '{}' > .vscode/settings.json`],
    ['rename .claude away and recreate it', `mv .claude .claude.old && mkdir -p .claude/commands`],
    ['remove .vscode and recreate it', `rm -rf .vscode; mkdir .vscode && echo '{}' > .vscode/settings.json`],
    ['symlink swap of .vscode to a writable folder', `mkdir -p notes && rm -rf .vscode; ln -s notes .vscode && echo '{}' > .vscode/settings.json`],
    ['symlink swap of .git/hooks', `rm -rf .git/hooks; ln -s ../hooks-planted .git/hooks`],
    ['symlink planted at the missing .mcp.json', `rm -rf .mcp.json; ln -s notes/mcp.json .mcp.json`],
    ['a hard link to .git/config', `ln .git/config config-link && echo '[core] fsmonitor = x' >> config-link`],
    ['unmount a protection', `umount .git/config`],
    ['unmount in a new user namespace', `unshare -Urm sh -c 'umount ${ws}/.git/config && echo x >> ${ws}/.git/config'`],
  ];
}

describe('the workspace is part of the cage', { timeout: 300_000 }, () => {
  let engine: CageEngine;
  let stateDir: string;
  let ws: string;
  let cage: CageInfo;
  const workspaces: string[] = [];
  const engines: CageEngine[] = [];
  const sh = (id: string, script: string, env: Record<string, string> = {}): Promise<ExecResult> =>
    engine.exec(id, ['sh', '-c', script], { env, workdir: ws, timeoutMs: 60_000 });

  before(async () => {
    prepare();
    stateDir = tmpDir('caged-i14-state-');
    engine = new CageEngine({ stateDir, proxyBundlePath: PROXY_BUNDLE, proxyBaseImage: NODE_IMAGE, agentImage: DEV_IMAGE });
    engines.push(engine);
    ws = makeRepo('caged-i14-ws-');
    workspaces.push(ws);
    // The workspace belongs to a user who is not root (4321): the agent runs as that user (agentUser.ts).
    spawnSync('chown', ['-R', '4321:4321', ws]);
    cage = await engine.up({ workspace: ws });
  });

  after(async () => {
    for (const e of engines) for (const w of workspaces) await e.down(e.cageIdFor(w), { images: true }).catch(() => {});
    for (const w of workspaces) rmrf(w);
    rmrf(stateDir);
  });

  it('status carries what is protected, as data', async () => {
    const info = await engine.get(cage.id);
    const p = info!.protection!;
    assert.equal(p.enabled, true);
    const paths = p.protected.map((x) => x.path);
    for (const want of ['.git/config', '.git/hooks', '.git/info', '.git/modules', '.git/worktrees', '.gitmodules', '.vscode', '.idea', '.devcontainer', '.devcontainer.json', '.mcp.json', '.claude/commands', '.claude/agents', '.claude/settings.json', '.caged', 'Makefile', '.github/workflows', '.git/modules/vendor/lib/config', '.git/modules/vendor/lib/hooks', 'vendor/lib/.git']) {
      if (want === '.idea') assert.ok(!paths.includes(want), '.idea is writable by the policy');
      else assert.ok(paths.includes(want), `${want} is protected (got ${paths.join(', ')})`);
    }
    assert.deepEqual(p.writable, ['.idea']);
    assert.ok(p.protected.find((x) => x.path === '.mcp.json')?.placeholder, '.mcp.json did not exist: a placeholder stands in');
    assert.ok(!p.protected.find((x) => x.path === '.vscode')?.placeholder);
  });

  it('every plant fails from inside the agent, with a plain error', async () => {
    const before = snapshot(ws, PROTECTED_SAMPLE);
    const results: string[] = [];
    for (const [what, cmd] of plants(ws)) {
      const r = await sh(cage.id, cmd);
      results.push(`${r.exitCode === 0 ? 'SUCCEEDED' : 'failed   '} ${what}: ${(r.stderr || r.stdout).trim().split('\n').pop()}`);
      assert.notEqual(r.exitCode, 0, `${what} must fail: ${cmd}`);
      assert.match(r.stderr, /Read-only file system|Device or resource busy|Is a directory|Invalid cross-device link|must be superuser|Operation not permitted|could not (write|lock|commit) config file|cannot (create|move|remove)/i, `${what}: a plain error (${r.stderr})`);
    }
    console.log(results.map((l) => `#   ${l}`).join('\n'));
    assert.deepEqual(snapshot(ws, PROTECTED_SAMPLE), before, 'nothing protected changed on the host');
    for (const gone of ['.git.old', '.vscode.old', '.claude.old', 'config-link']) assert.ok(!fs.existsSync(path.join(ws, gone)), `${gone} was not created`);
  });

  it("afterwards the host's git status and git commit run nothing the agent wrote", async () => {
    fs.writeFileSync(path.join(ws, 'host-change.txt'), 'from the host\n');
    fs.chownSync(path.join(ws, 'host-change.txt'), 4321, 4321);
    git(ws, 'status');
    git(ws, 'add', 'host-change.txt');
    git(ws, 'commit', '-qm', 'a commit on the host');
    git(path.join(ws, 'vendor', 'lib'), 'status');
    git(ws, 'submodule', 'status');
    const markers = fs.readdirSync(ws).filter((n) => n.startsWith('PWNED-'));
    assert.deepEqual(markers, [], 'no planted command ran on the host');
    assert.doesNotMatch(fs.readFileSync(path.join(ws, '.git', 'config'), 'utf8'), /fsmonitor|hooksPath/);
  });

  it('ordinary work succeeds: edit, git add/commit/checkout -b/stash/rebase/merge, npm install, .claude/settings.local.json', async () => {
    const steps: Array<[string, string]> = [
      ['edit and create source files', `echo 'console.log(2);' >> src.js && mkdir -p lib && echo 'export {}' > lib/new.js`],
      ['git add and commit', `git add -A && git commit -qm 'agent: first change'`],
      ['git checkout -b', `git checkout -q -b agent/feature && echo feature > feature.txt && git add feature.txt && git commit -qm 'agent: feature'`],
      ['git stash and pop', `echo wip >> src.js && git stash -q && git stash pop -q && git checkout -q -- src.js`],
      ['git rebase', `git checkout -q main && echo main > main.txt && git add main.txt && git commit -qm 'agent: on main' && git checkout -q agent/feature && git rebase -q main`],
      ['git merge', `git checkout -q main && git merge -q --no-edit agent/feature`],
      ['commit in the submodule', `cd vendor/lib && git checkout -q -b agent/lib && echo more >> lib.txt && git commit -qam 'agent: lib change'`],
      ['npm install into the workspace', `mkdir -p pkgs/hello && echo '{"name":"hello","version":"1.0.0"}' > pkgs/hello/package.json && echo 'module.exports = "hi"' > pkgs/hello/index.js && echo '{"name":"ws","version":"1.0.0"}' > package.json && npm install --offline --no-audit --no-fund ./pkgs/hello >/dev/null && node -e 'console.log(require("hello"))'`],
      ['per-agent state the host does not run', `mkdir -p .claude && echo '{"permissions":{}}' > .claude/settings.local.json`],
      ['the policy lets it change .idea/', `mkdir -p .idea && echo '<project/>' > .idea/misc.xml`],
    ];
    for (const [what, cmd] of steps) {
      const r = await sh(cage.id, cmd, IDENT);
      assert.equal(r.exitCode, 0, `${what}: ${r.stderr}`);
    }
    // The host sees the agent's commits, on the branches the agent made.
    const log = git(ws, 'log', '--format=%s', 'main');
    for (const s of ['agent: first change', 'agent: feature', 'agent: on main']) assert.match(log, new RegExp(s), `host git log shows "${s}"`);
    assert.match(git(ws, 'branch', '--list'), /agent\/feature/);
    assert.match(git(path.join(ws, 'vendor', 'lib'), 'log', '--format=%s', 'agent/lib'), /agent: lib change/);
    assert.ok(fs.existsSync(path.join(ws, 'node_modules', 'hello', 'index.js')), 'npm installed into the workspace');
    assert.equal(fs.readFileSync(path.join(ws, '.claude', 'settings.local.json'), 'utf8'), '{"permissions":{}}\n');
    // Writes the agent may not make still fail with a plain error, also for git.
    const cfg = await sh(cage.id, 'git config user.name Agent');
    assert.notEqual(cfg.exitCode, 0);
    assert.match(cfg.stderr, /could not (write|lock|commit) config file|Device or resource busy|Read-only/);
  });

  it('the agent runs as the workspace owner (4321 here): the files it writes are the owner\'s, however it got in', async () => {
    const agent = engine.docker.getContainer(cage.agentContainerId!);
    assert.equal((await agent.inspect()).Config.User, '4321:4321', 'the container\'s configured user is the owner');
    // A plain exec (no -u): what `docker exec`, the editor's terminal and `caged-agent shell` get.
    const r = await sh(cage.id, 'id -u; id -g; stat -c %u /proc/1; echo from-agent > by-agent.txt; mkdir -p made-by-agent; echo "$HOME"; touch "$HOME/.i18-home" && echo home-writable; p=$(npm config get prefix); echo "$p"; mkdir -p "$p/lib/node_modules/x" && echo prefix-writable; case ":$PATH:" in *":$p/bin:"*) echo prefix-on-path;; esac');
    assert.equal(r.exitCode, 0, r.stderr);
    const [uid, gid, pid1, home, homeOk, prefix, prefixOk, onPath] = r.stdout.trim().split('\n');
    assert.deepEqual([uid, gid], ['4321', '4321']);
    assert.equal(pid1, '4321', 'the agent command (PID 1 and its child) runs as the owner too');
    assert.equal(home, '/home/caged');
    assert.equal(homeOk, 'home-writable');
    assert.equal(prefix, '/home/caged/.local', 'npm installs -g into a prefix the user owns (no sudo)');
    assert.equal(prefixOk, 'prefix-writable');
    assert.equal(onPath, 'prefix-on-path');
    for (const f of ['by-agent.txt', 'made-by-agent']) {
      const st = fs.statSync(path.join(ws, f));
      assert.deepEqual([st.uid, st.gid], [4321, 4321], `${f} belongs to the workspace owner on the host`);
    }
  });

  it('verify checks the protection from inside the agent, and names a mount a host program broke', async () => {
    const checks = await engine.verify(cage.id);
    const by = (n: string) => checks.find((c) => c.name === n)!;
    for (const n of ['protected paths are read-only mounts', 'protected paths unchanged since the cage started', 'the agent cannot write a git hook', 'the agent cannot write .git/config', 'the agent cannot create .vscode/settings.json', 'the agent cannot rename .git away', 'the agent can write source files']) {
      assert.ok(by(n)?.ok && !by(n).skipped, `${n}: ${by(n)?.detail}`);
    }
    assert.match(by('the agent cannot write .git/config').detail, /Read-only file system/);
    assert.deepEqual(fs.readdirSync(ws).filter((n) => n.startsWith('caged-agent-verify')), [], 'the probes cleaned up');
    assert.ok(!fs.existsSync(path.join(ws, '.git', 'hooks', 'caged-agent-verify-probe')));

    // git on the host rewrites .git/config by renaming a new file over it: the kernel then drops the agent's
    // read-only mount of the old file, and the agent could write the new one. The check must say so.
    git(ws, 'config', 'caged.test', 'host-change');
    const st = await engine.checkProtection(cage.id);
    assert.deepEqual(st.mounts?.missing.map((m) => st.mountPaths[m]), ['.git/config']);
    assert.deepEqual(st.changed, ['.git/config']);
    const after = await engine.verify(cage.id);
    const mounts = after.find((c) => c.name === 'protected paths are read-only mounts')!;
    assert.equal(mounts.ok, false);
    assert.match(mounts.detail, /\.git\/config \(no longer mounted\).*Restart the cage/);
    assert.equal(after.find((c) => c.name === 'the agent cannot write .git/config')!.ok, false, 'the probe sees it too');
    assert.match(after.find((c) => c.name === 'protected paths unchanged since the cage started')!.detail, /changed while the cage ran: \.git\/config/);
    git(ws, 'config', '--unset', 'caged.test');
  });

  it('verify on an image without a shell: the probes are reported as skipped, not passed', async () => {
    const w = makeWorkspace('caged-i14-noshell-');
    workspaces.push(w);
    // An image without a shell or useradd still gets the owner as its user (passwd and group written with COPY).
    spawnSync('chown', ['-R', '4321:4321', w]);
    const c = await engine.up({ workspace: w, agentImage: NOSHELL_IMAGE });
    const agent = await engine.docker.getContainer(c.agentContainerId!).inspect();
    assert.equal(agent.Config.User, '4321:4321');
    assert.equal(agent.State.Running, true, 'the agent runs as the owner on an image without a shell');
    const checks = await engine.verify(c.id);
    const probes = checks.filter((x) => x.name.startsWith('the agent can'));
    assert.equal(probes.length, 5);
    for (const p of probes) assert.ok(p.skipped && /cannot run \/bin\/sh/.test(p.detail), `${p.name}: ${p.detail}`);
    assert.ok(checks.find((x) => x.name === 'protected paths are read-only mounts')!.ok);
    assert.match(verifySummary(checks), /\d+ passed, [6-9] skipped/);
    await engine.down(c.id);
  });

  it('a preset whose program the image lacks (npx on an image without Node) fails before anything starts, saying what to do', async () => {
    const w = makeWorkspace('caged-i18-nonode-');
    workspaces.push(w);
    await assert.rejects(engine.up({ workspace: w, agentImage: NOSHELL_IMAGE, requires: { programs: ['npx'], for: 'the Claude Code preset ("npx -y @anthropic-ai/claude-code")' } }), (e: Error) => {
      assert.match(e.message, /step "agent-image"/);
      assert.match(e.message, /has no npx on its PATH, which the Claude Code preset/);
      assert.match(e.message, /cagedAgent\.agentImage|Custom command/);
      return true;
    });
    assert.deepEqual(await leftovers(engine.docker, [engine.cageIdFor(w)]), [], 'nothing was started');
    // An image that has the programs starts as usual (DEV_IMAGE has git, node and npm, in /usr/bin).
    const ok = await engine.up({ workspace: w, requires: { programs: ['npm', 'git'], for: 'test' } });
    assert.equal(ok.state, 'healthy');
    await engine.down(ok.id);
  });

  it('down removes the placeholders it made and keeps everything with content', async () => {
    const placeholders = cage.protection!.placeholders.map((p) => p.path);
    assert.ok(placeholders.some((p) => p.endsWith('.mcp.json')));
    for (const p of placeholders) assert.ok(fs.existsSync(p), `${p} exists while the cage runs`);
    await engine.down(cage.id);
    assert.deepEqual(await leftovers(engine.docker, [cage.id]), []);
    for (const p of placeholders) {
      if (p === path.join(ws, '.claude') || p === path.join(ws, '.idea')) assert.ok(fs.existsSync(p), `${p} has the agent's files: kept`);
      else assert.ok(!fs.existsSync(p), `${p} removed at down`);
    }
    assert.equal(git(ws, 'status', '--porcelain', '--ignored=no').split('\n').filter((l) => /\.mcp\.json|\.devcontainer|\.gitmodules|\.claude\/commands/.test(l)).length, 0);
  });

  it('refuses to start when a protected path is a symbolic link, naming it and the fix', async () => {
    const cases: Array<[string, (w: string) => void, RegExp]> = [
      ['.vscode linked to a writable folder', (w) => { fs.mkdirSync(path.join(w, 'notes')); fs.symlinkSync('notes', path.join(w, '.vscode')); }, /\.vscode is a symbolic link \(to notes, inside the workspace\)/],
      ['.claude/commands linked out of the workspace', (w) => { fs.mkdirSync(path.join(w, '.claude')); fs.symlinkSync('/tmp', path.join(w, '.claude', 'commands')); }, /\.claude\/commands is a symbolic link \(to \/tmp, outside the workspace\)/],
      ['a link inside .vscode to a writable file', (w) => { fs.mkdirSync(path.join(w, '.vscode')); fs.writeFileSync(path.join(w, 'notes.json'), '{}'); fs.symlinkSync('../notes.json', path.join(w, '.vscode', 'settings.json')); }, /\.vscode\/settings\.json is a symbolic link to notes\.json, which the agent can write/],
      ['a hard-linked hook', (w) => { git(w, 'init', '-q'); fs.writeFileSync(path.join(w, 'hook.sh'), '#!/bin/sh\n'); fs.linkSync(path.join(w, 'hook.sh'), path.join(w, '.git', 'hooks', 'pre-commit')); }, /\.git\/hooks\/pre-commit has 2 hard links/],
    ];
    for (const [what, setup, re] of cases) {
      const w = makeWorkspace('caged-i14-link-');
      workspaces.push(w);
      setup(w);
      const names = fs.readdirSync(w).sort();
      await assert.rejects(engine.up({ workspace: w }), (e: Error) => {
        assert.match(e.message, /step "workspace"/, what);
        assert.match(e.message, re, what);
        assert.match(e.message, /Replace the link|Make it a file of its own/, `${what}: the fix is named`);
        return true;
      });
      assert.deepEqual(fs.readdirSync(w).sort(), names, `${what}: nothing left behind in the workspace`);
      assert.deepEqual(await leftovers(engine.docker, [engine.cageIdFor(w)]), []);
    }
  });

  it('a linked worktree: git inside works on its own git folder, the shared config and hooks stay read-only', async () => {
    const main = makeRepo('caged-i14-main-', ALLOW_POLICY);
    workspaces.push(main);
    const wt = path.join(tmpDir('caged-i14-wtparent-'), 'wt');
    workspaces.push(path.dirname(wt));
    git(main, 'worktree', 'add', '-q', '-b', 'agent/wt', wt);
    workspaces.push(wt);
    const c = await engine.up({ workspace: wt });
    const run = (cmd: string) => engine.exec(c.id, ['sh', '-c', cmd], { env: IDENT, workdir: wt });
    const ok = await run(`echo change >> src.js && git commit -qam 'agent: in the worktree' && git log -1 --format=%s`);
    assert.equal(ok.exitCode, 0, ok.stderr);
    assert.match(git(main, 'log', '--format=%s', 'agent/wt'), /agent: in the worktree/, 'the main repository sees the commit');
    const common = path.join(main, '.git');
    for (const [what, cmd] of [
      ['the .git link', `echo 'gitdir: /tmp/evil' > .git`],
      ['the shared config', `echo '[core] fsmonitor = "touch ${main}/PWNED"' >> ${common}/config`],
      ['the shared hooks', `echo x > ${common}/hooks/pre-commit`],
      ['the worktree entry link', `echo /tmp/evil > ${common}/worktrees/wt/gitdir`],
      ['a new worktree entry', `mkdir ${common}/worktrees/evil`],
      ['rename the shared git folder', `mv ${common} ${common}.old`],
    ] as const) {
      const r = await run(cmd);
      assert.notEqual(r.exitCode, 0, `${what} must fail`);
    }
    git(main, 'status');
    assert.ok(!fs.existsSync(path.join(main, 'PWNED')));
    const paths = c.protection!.protected.map((p) => p.path);
    assert.ok(paths.includes('.git') && paths.includes(`${common}/config`) && paths.includes(`${common}/hooks`), paths.join(', '));
    await engine.down(c.id);
  });

  it('control: with the protection off the same plants succeed and the host runs them', async () => {
    const off = new CageEngine({ stateDir, proxyBundlePath: PROXY_BUNDLE, proxyBaseImage: NODE_IMAGE, agentImage: DEV_IMAGE, protectWorkspace: false });
    engines.push(off);
    const w = makeRepo('caged-i14-off-', ALLOW_POLICY);
    workspaces.push(w);
    const c = await off.up({ workspace: w });
    assert.equal(c.protection?.enabled, false);
    const r = await off.exec(c.id, ['sh', '-c', plants(w).filter(([what]) => what === 'a git hook' || what === 'core.fsmonitor with git config').map(([, cmd]) => cmd).join(' && ')], { workdir: w });
    assert.equal(r.exitCode, 0, r.stderr);
    git(w, 'status');
    git(w, 'commit', '-q', '--allow-empty', '-m', 'host commit');
    assert.ok(fs.existsSync(path.join(w, 'PWNED-fsmonitor')), 'the planted fsmonitor ran on the host');
    assert.ok(fs.existsSync(path.join(w, 'PWNED-hook')), 'the planted hook ran on the host');
    // The policy stays read-only even then.
    assert.notEqual((await off.exec(c.id, ['sh', '-c', `echo x >> ${w}/.caged/policy.yaml`])).exitCode, 0);
    await off.down(c.id);
  });
});
