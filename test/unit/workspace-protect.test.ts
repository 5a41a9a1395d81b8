// Workspace protection without Docker: the policy's workspace section, the git config reader (compared with git
// itself), the mount planner on fixtures, the mount-table check and the verify summary.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parsePolicy, parseWorkspacePath, parseWorkspaceRules } from '../../src/policy';
import { gitConfigBool, gitConfigGet, gitConfigGetAll, parseGitConfig } from '../../src/engine/gitconfig';
import { checkMounts, parseMountInfo } from '../../src/engine/mountinfo';
import { protectTargets, type FsEntry, type ProtectInput } from '../../src/engine/protect';
import { planProtection } from '../../src/engine/protect-plan';
import { createPlaceholders, removePlaceholders } from '../../src/engine/protect-scan';
import { verifySummary } from '../../src/engine/verify';
import { hostGitCheck } from '../../src/engine/doctor';
import { describeSettingChange, GUARDED_SETTINGS, workspaceSettingChanges, type SettingsSnapshot } from '../../src/extension/logic/settingsGuard';

const BASE = 'version: 1\nallow:\n  - host: example.com\n';

test('workspace paths: relative, "/" separators, a trailing "/" or "/**" names a folder', () => {
  assert.deepEqual(parseWorkspacePath('.github/workflows/**'), { path: '.github/workflows', dir: true });
  assert.deepEqual(parseWorkspacePath('./Makefile'), { path: 'Makefile', dir: false });
  assert.deepEqual(parseWorkspacePath('.idea/'), { path: '.idea', dir: true });
  for (const [bad, re] of [
    ['/etc/passwd', /not relative to the workspace/],
    ['~/.bashrc', /not relative/],
    ['C:/x', /not relative/],
    ['a/../../b', /contains "\.\."/],
    ['src\\x', /write "\/" between folders/],
    ['*.yml', /only a trailing "\/\*\*"/],
    ['a/**/b', /only a trailing/],
    ['.', /names the whole workspace/],
    ['', /empty/],
  ] as const) {
    const r = parseWorkspacePath(bad);
    assert.ok('error' in r && re.test(r.error), `${bad}: ${JSON.stringify(r)}`);
  }
});

test('the workspace section parses with positions, warns about git opt-outs, and suggests field names', () => {
  const r = parsePolicy(`${BASE}workspace:\n  protect: [Makefile, ".github/workflows/**"]\n  writable:\n    - .idea/\n    - .git/hooks\n`);
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.policy!.workspace!.protect.map((p) => [p.path, p.dir]), [['Makefile', false], ['.github/workflows', true]]);
  assert.deepEqual(r.policy!.workspace!.writable.map((p) => p.path), ['.idea', '.git/hooks']);
  assert.equal(r.policy!.workspace!.writable[1].pos.line, 8);
  assert.match(r.warnings.map((w) => w.message).join('\n'), /workspace\.writable\[1\]: "\.git\/hooks" writable: git on this machine obeys \.git\/hooks/);
  const typo = parsePolicy(`${BASE}workspace:\n  protekt: [x]\n`);
  assert.match(typo.errors[0].message, /workspace: unknown field "protekt" — did you mean "protect"\?/);
  assert.equal(typo.errors[0].pos.line, 5);
  const abs = parsePolicy(`${BASE}workspace:\n  protect: [/etc]\n`);
  assert.match(abs.errors[0].message, /^workspace\.protect\[0\]: "\/etc" is not relative/);
  assert.deepEqual([abs.errors[0].pos.line, abs.errors[0].pos.col], [5, 13]);
  const both = parsePolicy(`${BASE}workspace:\n  protect: [.idea]\n  writable: [.idea/]\n`);
  assert.match(both.errors[0].message, /"\.idea" is both protected and writable/);
  assert.equal(both.errors[0].pos.line, 6);
  assert.match(parsePolicy(`${BASE}workspace: [x]\n`).errors[0].message, /workspace must be a mapping/);
});

test('parseWorkspaceRules reads the section also when the rest of the file has errors, and refuses an unreadable one', () => {
  const r = parseWorkspaceRules('version: 2\nallow:\n  - host: "*"\nworkspace:\n  protect: [Makefile]\n');
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.rules!.protect.map((p) => p.path), ['Makefile']);
  assert.equal(parseWorkspaceRules(BASE).rules, undefined, 'no section: the built-ins only');
  assert.match(parseWorkspaceRules('version: 1\nallow: [\n').errors[0].message, /YAML syntax error/);
  assert.match(parseWorkspaceRules(`${BASE}workspace:\n  protect: [../x]\n`).errors[0].message, /contains "\.\."/);
});

// ---- git config reader, compared with git itself

const CONFIGS = [
  '[core]\n\thooksPath = .husky/_\n',
  '[core] hooksPath = "with space/ and # hash" ; comment\n',
  '[Core]\n  HooksPath = a # trailing comment\n  hookspath = b\n',
  '[include]\n\tpath = one.inc\n\tpath = "two.inc"\n[includeIf "gitdir:~/work/"]\n\tpath = ../three.inc\n',
  '[core]\n\tbare\n\tfsmonitor = "a \\"quoted\\" value"\n',
  '[extensions]\n\tworktreeConfig = true\n[section.Sub]\n\tkey = v\\\n  continued\n',
  '[remote "origin"]\n\turl = https://x/y\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n[branch "Feat/X"]\n\tmerge = refs/heads/main\n',
  '# comment\n; comment\n[a]\n\tb = 1\t \n\tc = "  spaces  "\n\td = tab\\there\n',
];

test('parseGitConfig reads what git reads (git config --list on the same files)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'caged-gitcfg-'));
  try {
    for (const [i, text] of CONFIGS.entries()) {
      const f = path.join(dir, `c${i}`);
      fs.writeFileSync(f, text);
      const g = spawnSync('git', ['config', '--file', f, '--list', '-z'], { encoding: 'utf8' });
      assert.equal(g.status, 0, `git reads config ${i}: ${g.stderr}`);
      const fromGit = g.stdout.split('\0').filter(Boolean).map((e) => {
        const nl = e.indexOf('\n');
        return nl < 0 ? [e, null] : [e.slice(0, nl), e.slice(nl + 1)];
      });
      const r = parseGitConfig(text);
      assert.ok('entries' in r, `config ${i}: ${JSON.stringify(r)}`);
      // git lower-cases section and key names, and the subsection of the deprecated [section.sub] form.
      assert.deepEqual(r.entries.map((e) => [e.key, e.value]), fromGit, `config ${i}:\n${text}`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('git config lookups: last value wins, all values in order, booleans as git reads them', () => {
  const r = parseGitConfig(CONFIGS[2]);
  assert.ok('entries' in r);
  assert.equal(gitConfigGet(r.entries, 'core.hooksPath'), 'b');
  const inc = parseGitConfig(CONFIGS[3]);
  assert.ok('entries' in inc);
  assert.deepEqual(gitConfigGetAll(inc.entries, 'include.path'), ['one.inc', 'two.inc']);
  assert.equal(gitConfigGet(inc.entries, 'includeIf.gitdir:~/work/.path'), '../three.inc');
  for (const [v, b] of [[null, true], ['yes', true], ['0', false], ['', false], ['maybe', undefined]] as const) assert.equal(gitConfigBool(v), b);
  for (const bad of ['[core\n', 'key = 1\n', '[a]\n\tb = "open\n', '[a "x]\n', '[a]\n\t1b = x\n']) assert.ok('error' in parseGitConfig(bad), bad);
});

// ---- the planner on fixtures

const WS = '/home/u/proj';

function input(over: Partial<ProtectInput> = {}): ProtectInput {
  return {
    workspace: WS,
    workspaceInContainer: WS,
    policyPath: `${WS}/.caged/policy.yaml`,
    home: '/home/u',
    git: { dotGit: 'dir', dirs: [{ path: `${WS}/.git`, role: 'repo', includes: [], worktreeConfig: false, runners: [] }], checkoutLinks: [] },
    rootNames: [],
    ...over,
  };
}

function fsOf(entries: Record<string, FsEntry['kind'] | FsEntry>): Map<string, FsEntry> {
  return new Map(Object.entries(entries).map(([k, v]) => [k.startsWith('/') ? k : `${WS}/${k}`, typeof v === 'string' ? { kind: v } : v]));
}

const GIT_FS = { '.git': 'dir', '.git/config': 'file', '.git/hooks': 'dir', '.git/info': 'dir', '.caged': 'dir' } as const;

function plan(over: Partial<ProtectInput> = {}, fsEntries: Record<string, FsEntry['kind'] | FsEntry> = GIT_FS, dirs = new Map<string, string[]>()) {
  const i = input(over);
  return planProtection(i, protectTargets(i), fsOf(fsEntries), dirs);
}

const mountsOf = (p: ReturnType<typeof plan>) => p.mounts.map((m) => `${m.role} ${m.readOnly ? 'ro' : 'rw'} ${m.target.replace(WS, '~')}`);

test('a plain repository: protections, placeholders for the missing ones, parents pinned, deeper mounts after shallower', () => {
  const p = plan();
  assert.deepEqual(p.problems, []);
  const m = mountsOf(p);
  for (const want of ['workspace rw ~', 'gitdir rw ~/.git', 'protect ro ~/.git/config', 'protect ro ~/.git/hooks', 'protect ro ~/.git/info', 'protect ro ~/.git/modules', 'protect ro ~/.git/worktrees', 'protect ro ~/.vscode', 'protect ro ~/.mcp.json', 'pin rw ~/.claude', 'protect ro ~/.claude/commands', 'protect ro ~/.caged']) {
    assert.ok(m.includes(want), `${want} in\n${m.join('\n')}`);
  }
  const depths = p.mounts.map((x) => x.target.split('/').length);
  assert.deepEqual(depths, [...depths].sort((a, b) => a - b), 'parents are mounted before their children');
  const ph = p.placeholders.map((x) => `${x.path.replace(WS, '~')}:${x.kind}`);
  assert.ok(ph.includes('~/.mcp.json:dir') && ph.includes('~/.claude:dir') && ph.includes('~/.claude/commands:dir') && ph.includes('~/.git/modules:dir'), ph.join(' '));
  assert.ok(ph.indexOf('~/.claude:dir') < ph.indexOf('~/.claude/commands:dir'), 'parents first');
  assert.ok(!ph.some((x) => x.startsWith('~/.git/config')), 'existing paths get none');
  assert.ok(m.includes('protect ro ~/.git/commondir'), 'a planted commondir would point the host git elsewhere');
  assert.deepEqual(p.placeholders.find((x) => x.path === `${WS}/.git/commondir`), { path: `${WS}/.git/commondir`, kind: 'file', content: '.\n' }, 'held by a file naming this git folder itself (an empty one would break git)');
});

test('no repository: an empty read-only .git keeps the agent from creating one', () => {
  const p = plan({ git: { dotGit: 'missing', dirs: [], checkoutLinks: [] } }, { '.caged': 'dir' });
  assert.ok(mountsOf(p).includes('protect ro ~/.git'));
  assert.ok(p.placeholders.some((x) => x.path === `${WS}/.git` && x.kind === 'dir'));
});

test('submodule git folders stay writable inside the read-only .git/modules, with their own config and hooks protected', () => {
  const mod = `${WS}/.git/modules/libs/a`;
  const p = plan(
    { git: { dotGit: 'dir', dirs: [input().git.dirs[0], { path: mod, role: 'module', includes: [], worktreeConfig: false, runners: [] }], checkoutLinks: [`${WS}/libs/a/.git`] } },
    { ...GIT_FS, '.git/modules': 'dir', '.git/modules/libs': 'dir', '.git/modules/libs/a': 'dir', '.git/modules/libs/a/config': 'file', '.git/modules/libs/a/hooks': 'dir', 'libs': 'dir', 'libs/a': 'dir', 'libs/a/.git': { kind: 'file', nlink: 1 } },
  );
  const m = mountsOf(p);
  for (const want of ['protect ro ~/.git/modules', 'gitdir rw ~/.git/modules/libs/a', 'protect ro ~/.git/modules/libs/a/config', 'protect ro ~/.git/modules/libs/a/hooks', 'protect ro ~/libs/a/.git', 'pin rw ~/libs', 'pin rw ~/libs/a']) {
    assert.ok(m.includes(want), `${want} in\n${m.join('\n')}`);
  }
  assert.ok(!m.some((x) => x.includes('~/.git/modules/libs ')) && !m.includes('pin rw ~/.git/modules/libs'), 'inside the read-only .git/modules nothing needs a pin');
});

test('core.hooksPath, includes and installed hook runners extend the list', () => {
  const p = plan(
    { git: { dotGit: 'dir', dirs: [{ path: `${WS}/.git`, role: 'repo', hooksPath: `${WS}/tools/hooks`, includes: [`${WS}/.gitconfig.project`], worktreeConfig: true, runners: ['pre-commit'] }], checkoutLinks: [] } },
    { ...GIT_FS, tools: 'dir', 'tools/hooks': 'dir', '.gitconfig.project': { kind: 'file', nlink: 1 } },
  );
  const m = mountsOf(p);
  for (const want of ['protect ro ~/tools/hooks', 'pin rw ~/tools', 'protect ro ~/.gitconfig.project', 'protect ro ~/.git/config.worktree', 'protect ro ~/.pre-commit-config.yaml']) assert.ok(m.includes(want), `${want} in\n${m.join('\n')}`);
  assert.ok(p.placeholders.some((x) => x.path === `${WS}/.git/config.worktree` && x.kind === 'file'), 'worktreeConfig on: git would read it, so a missing one is held by an empty file');
});

test('a linked worktree: its git folder and the common dir are mounted at their own paths', () => {
  const common = '/home/u/main/.git';
  const entry = `${common}/worktrees/wt`;
  const p = plan(
    {
      git: {
        dotGit: 'file',
        link: { gitdir: entry, commondir: common },
        dirs: [{ path: entry, role: 'worktree', includes: [], worktreeConfig: false, runners: [] }, { path: common, role: 'common', includes: [], worktreeConfig: false, runners: [] }],
        checkoutLinks: [],
      },
    },
    { '.git': { kind: 'file', nlink: 1 }, '.caged': 'dir', [common]: 'dir', [`${common}/config`]: 'file', [`${common}/hooks`]: 'dir', [`${common}/worktrees`]: 'dir', [entry]: 'dir', [`${entry}/gitdir`]: 'file', [`${entry}/commondir`]: 'file' },
  );
  const m = mountsOf(p);
  for (const want of ['protect ro ~/.git', `gitdir rw ${common}`, `protect ro ${common}/config`, `protect ro ${common}/hooks`, `protect ro ${common}/worktrees`, `gitdir rw ${entry}`, `protect ro ${entry}/gitdir`, `protect ro ${entry}/commondir`]) {
    assert.ok(m.includes(want), `${want} in\n${m.join('\n')}`);
  }
  // Not mounted at its own path (a Windows workspace at /workspace): git cannot work there, and the plan says so.
  const win = plan({ workspaceInContainer: '/workspace', git: { dotGit: 'file', link: { gitdir: entry, commondir: common }, dirs: [{ path: entry, role: 'worktree', includes: [], worktreeConfig: false, runners: [] }], checkoutLinks: [] } }, { '.git': 'file', '.caged': 'dir' });
  assert.match(win.notes.join('\n'), /git inside the cage cannot use \/home\/u\/main\/\.git\/worktrees\/wt/);
});

test('symlinks are refused: at a protected path, at a parent, and inside a protected folder pointing to a writable place', () => {
  const at = plan({}, { ...GIT_FS, '.vscode': { kind: 'symlink', resolved: `${WS}/notes` } });
  assert.match(at.problems.join('\n'), /^\.vscode is a symbolic link \(to notes, inside the workspace\) where a protected path is/m);
  const parent = plan({}, { ...GIT_FS, '.claude': { kind: 'symlink', resolved: '/tmp/x' } });
  assert.match(parent.problems.join('\n'), /\.claude is a symbolic link \(to \/tmp\/x, outside the workspace\).*it is a parent of \.claude\/settings\.json/);
  const inner = plan({}, { ...GIT_FS, '.vscode': 'dir', '.vscode/settings.json': { kind: 'symlink', resolved: `${WS}/notes/s.json` }, '.vscode/ok.json': { kind: 'symlink', resolved: '/etc/hostname' } }, new Map([[`${WS}/.vscode`, ['settings.json', 'ok.json']]]));
  assert.deepEqual(inner.problems.length, 1, inner.problems.join('\n'));
  assert.match(inner.problems[0], /\.vscode\/settings\.json is a symbolic link to notes\/s\.json, which the agent can write/);
  const hard = plan({}, { ...GIT_FS, '.git/config': { kind: 'file', nlink: 2 } });
  assert.match(hard.problems.join('\n'), /\.git\/config .* has 2 hard links/);
});

test('a file where a protected folder would be is protected itself; the home folder is refused', () => {
  const p = plan({}, { ...GIT_FS, '.claude': { kind: 'file', nlink: 1 } });
  assert.ok(mountsOf(p).includes('protect ro ~/.claude'));
  assert.ok(!mountsOf(p).some((m) => m.includes('.claude/')));
  assert.match(plan({ workspace: '/home/u', workspaceInContainer: '/home/u', policyPath: '/home/u/.caged/p.yaml' }).problems.join('\n'), /is your home folder/);
});

test('workspace.writable relaxes built-ins only, never the policy; workspace.protect adds paths', () => {
  const p = plan({ rules: { protect: [{ path: 'Makefile', dir: false }, { path: '.github/workflows', dir: true }], writable: [{ path: '.idea', dir: true }, { path: 'src', dir: true }] } });
  const m = mountsOf(p);
  assert.ok(!m.includes('protect ro ~/.idea'));
  assert.ok(m.includes('protect ro ~/Makefile') && m.includes('protect ro ~/.github/workflows') && m.includes('pin rw ~/.github'));
  assert.deepEqual(p.writable, ['.idea']);
  assert.match(p.notes.join('\n'), /"src" is not protected anyway/);
  const pol = plan({ rules: { protect: [], writable: [{ path: '.caged', dir: true }] } });
  assert.match(pol.problems.join('\n'), /would let the agent change its own policy/);
  const claude = plan({ rules: { protect: [{ path: '.claude/settings.local.json', dir: false }], writable: [{ path: '.claude', dir: true }] } });
  assert.ok(mountsOf(claude).includes('protect ro ~/.claude/settings.local.json') && !mountsOf(claude).includes('protect ro ~/.claude/commands'));
});

test('the mount table check finds missing and writable protections', () => {
  const info = [
    '36 35 98:0 /home/u/proj /home/u/proj rw,relatime - ext4 /dev/vda rw',
    '37 36 98:0 /home/u/proj/.git/config /home/u/proj/.git/config ro,relatime - ext4 /dev/vda rw',
    '38 36 98:0 /home/u/proj/my\\040dir /home/u/proj/my\\040dir rw,relatime - ext4 /dev/vda rw',
  ].join('\n');
  const mi = parseMountInfo(info);
  assert.equal(mi[2].mountPoint, '/home/u/proj/my dir');
  assert.deepEqual(checkMounts([{ target: '/home/u/proj/.git/config', readOnly: true }, { target: '/home/u/proj/.vscode', readOnly: true }, { target: '/home/u/proj/my dir', readOnly: true }], mi), {
    missing: ['/home/u/proj/.vscode'],
    writable: ['/home/u/proj/my dir'],
  });
});

test('verify summaries do not count skipped checks as passed', () => {
  assert.equal(verifySummary([{ name: 'a', ok: true, detail: '' }, { name: 'b', ok: true, skipped: true, detail: '' }]), '1 passed, 1 skipped');
  assert.equal(verifySummary([{ name: 'a', ok: false, detail: '' }, { name: 'b', ok: true, detail: '' }]), '1 failed, 1 passed');
});

test('settings guard: workspace and folder changes are listed with their source, user changes are not', () => {
  const base: SettingsSnapshot = Object.fromEntries(GUARDED_SETTINGS.map((k) => [k, { defaultValue: '' }])) as SettingsSnapshot;
  base.policyPath = { defaultValue: '.caged/policy.yaml' };
  const ws = { ...base, policyPath: { defaultValue: '.caged/policy.yaml', workspaceValue: 'notes/p.yaml' } };
  assert.deepEqual(workspaceSettingChanges(base, ws), [{ key: 'policyPath', from: '.caged/policy.yaml', to: 'notes/p.yaml', source: 'workspace' }]);
  assert.match(describeSettingChange(workspaceSettingChanges(base, ws)[0]), /^cagedAgent\.policyPath: "\.caged\/policy\.yaml" → "notes\/p\.yaml", changed in the workspace settings/);
  const folder = { ...base, agentImage: { defaultValue: '', workspaceFolderValue: 'evil:1' } };
  assert.deepEqual(workspaceSettingChanges(base, folder).map((c) => [c.key, c.source, c.to]), [['agentImage', 'workspaceFolder', 'evil:1']]);
  const user = { ...base, agentImage: { defaultValue: '', globalValue: 'mine:1' } };
  assert.deepEqual(workspaceSettingChanges(base, user), [], "the user's own settings are not the workspace's to change");
  // A workspace value removed: the value falls back to something not chosen for this cage.
  const removed = workspaceSettingChanges(ws, base);
  assert.deepEqual(removed.map((c) => [c.key, c.from, c.to]), [['policyPath', 'notes/p.yaml', '.caged/policy.yaml']]);
  // A folder value that hides a workspace change: nothing in force changed.
  const hidden = { ...base, upstreamProxy: { defaultValue: '', workspaceFolderValue: 'http://a:1' } };
  const hidden2 = { ...base, upstreamProxy: { defaultValue: '', workspaceFolderValue: 'http://a:1', workspaceValue: 'http://b:1' } };
  assert.deepEqual(workspaceSettingChanges(hidden, hidden2), []);
});

test('a placeholder with content: written as planned, removed at the end only while it still holds just that, git reads it as this folder', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'caged-unit-ph-'));
  try {
    assert.equal(spawnSync('git', ['init', '-q', dir]).status, 0);
    const ph = { path: path.join(dir, '.git', 'commondir'), kind: 'file' as const, content: '.\n' };
    createPlaceholders([ph]);
    assert.equal(fs.readFileSync(ph.path, 'utf8'), '.\n');
    const st = spawnSync('git', ['-C', dir, 'status', '--porcelain'], { encoding: 'utf8' });
    assert.equal(st.status, 0, st.stderr);
    assert.equal(fs.realpathSync(spawnSync('git', ['-C', dir, 'rev-parse', '--git-common-dir'], { encoding: 'utf8' }).stdout.trim()), fs.realpathSync(path.join(dir, '.git')));
    assert.deepEqual(removePlaceholders([ph]), []);
    assert.ok(!fs.existsSync(ph.path));
    fs.writeFileSync(ph.path, '../elsewhere\n');
    assert.deepEqual(removePlaceholders([ph]), [ph.path], 'a file that changed stays');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("doctor: this machine's git and planted bare repositories (safe.bareRepository), a warning with the fix", () => {
  const unset = hostGitCheck(() => ({ status: 1, stdout: '' }));
  assert.equal(unset.ok, false);
  assert.equal(unset.warning, true, 'a warning, not an error');
  assert.match(unset.detail, /git config --global safe\.bareRepository explicit/);
  assert.equal(hostGitCheck(() => ({ status: 0, stdout: 'explicit\n' })).ok, true);
  assert.equal(hostGitCheck(() => ({ status: null, stdout: '', error: new Error('ENOENT') })).ok, true);
  // And what it guards against, with the real git: a bare repository laid out at the root is refused when explicit.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'caged-unit-bare-'));
  try {
    fs.writeFileSync(path.join(dir, 'HEAD'), 'ref: refs/heads/main\n');
    fs.mkdirSync(path.join(dir, 'objects'));
    fs.mkdirSync(path.join(dir, 'refs'));
    fs.writeFileSync(path.join(dir, 'config'), '[core]\n\tbare = true\n');
    assert.equal(spawnSync('git', ['-c', 'safe.bareRepository=all', '-C', dir, 'rev-parse', '--is-bare-repository'], { encoding: 'utf8' }).stdout.trim(), 'true', 'git obeys it by default');
    const r = spawnSync('git', ['-c', 'safe.bareRepository=explicit', '-C', dir, 'rev-parse', '--is-bare-repository'], { encoding: 'utf8' });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /safe\.bareRepository/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
