// Proves the browser helpers (test/browser/lib) against the stock code-server workbench in real Chromium,
// plus a tiny fixture extension (written to a temp dir) that contributes a view container, a tree view and
// a command showing a notification with buttons — the same UI surfaces the product uses.
// Run: node scripts/run-node-tests.mjs browser
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { withCodeServer, type Workbench } from './lib';
import { ensureVsix } from './lib/package';

function fixtureExtension(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'harness-ext-'));
  fs.mkdirSync(path.join(dir, 'media'));
  fs.writeFileSync(
    path.join(dir, 'media', 'icon.svg'),
    '<svg xmlns="http://www.w3.org/2000/svg" width="24" height="24" viewBox="0 0 24 24"><rect x="4" y="4" width="16" height="16" fill="none" stroke="currentColor" stroke-width="2"/></svg>',
  );
  fs.writeFileSync(
    path.join(dir, 'package.json'),
    JSON.stringify({
      name: 'harness-fixture',
      publisher: 'caged-agent-tests',
      version: '0.0.1',
      engines: { vscode: '^1.100.0' },
      main: './extension.js',
      activationEvents: ['onStartupFinished'],
      contributes: {
        commands: [{ command: 'harnessFixture.notify', title: 'Notify', category: 'Harness' }],
        viewsContainers: { activitybar: [{ id: 'harnessFixture', title: 'Harness Fixture', icon: 'media/icon.svg' }] },
        views: { harnessFixture: [{ id: 'harnessFixture.items', name: 'Fixture Items' }] },
      },
    }),
  );
  fs.writeFileSync(
    path.join(dir, 'extension.js'),
    `const vscode = require('vscode');
exports.activate = (ctx) => {
  const kids = { alpha: ['alpha-1', 'alpha-2'] };
  ctx.subscriptions.push(vscode.window.registerTreeDataProvider('harnessFixture.items', {
    getChildren: (el) => (el ? kids[el] || [] : ['alpha', 'beta']),
    getTreeItem: (el) => {
      const t = new vscode.TreeItem(el, kids[el] ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.None);
      if (el === 'beta') t.description = 'second';
      return t;
    },
  }));
  ctx.subscriptions.push(vscode.commands.registerCommand('harnessFixture.notify', async () => {
    const choice = await vscode.window.showInformationMessage('Harness fixture blocked demo.invalid', 'Allow', 'Details');
    vscode.window.showInformationMessage('Harness fixture clicked ' + choice);
  }));
};
`,
  );
  return dir;
}

test('browser helpers drive the real code-server workbench', { timeout: 240_000 }, async (t) => {
  const ext = fixtureExtension();
  // An empty workspace of its own (withCodeServer's default is a copy of demo/, whose files this test does not expect).
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'harness-ws-'));
  t.after(() => {
    fs.rmSync(ext, { recursive: true, force: true });
    fs.rmSync(ws, { recursive: true, force: true });
  });
  const t0 = Date.now();
  await withCodeServer(
    {
      folder: ws,
      extensionDevelopmentPath: ext,
      files: { 'bad.json': '{\n  "a": 1,,\n  "b": 2\n}\n', 'notes.txt': 'hello\n' },
    },
    async (wb: Workbench) => {
      console.log(`# workbench up in ${Date.now() - t0} ms`);

      await t.test('runCommand toggles the Problems panel', async () => {
        assert.equal(await wb.page.locator('.markers-panel').isVisible(), false);
        await wb.runCommand('View: Toggle Problems');
        await wb.page.locator('.markers-panel').waitFor({ state: 'visible', timeout: 10_000 });
        await wb.runCommand('View: Toggle Problems');
        await wb.page.locator('.markers-panel').waitFor({ state: 'hidden', timeout: 10_000 });
      });

      await t.test('openViewContainer + treeItems read the Explorer', async () => {
        await wb.openViewContainer('Explorer');
        await wb.openViewContainer('Explorer'); // already open: stays open
        const items = await wb.waitForTreeItems(path.basename(wb.folder), (i) => i.length === 2);
        assert.deepEqual(items.map((i) => i.label).sort(), ['bad.json', 'notes.txt']);
      });

      await t.test('openViewContainer + treeItems read an extension tree view', async () => {
        await wb.openViewContainer('Harness Fixture');
        const items = await wb.waitForTreeItems('Fixture Items', (i) => i.length === 4);
        assert.deepEqual(
          items.map((i) => [i.label, i.description, i.level, i.expanded]),
          [
            ['alpha', '', 1, true],
            ['alpha-1', '', 2, undefined],
            ['alpha-2', '', 2, undefined],
            ['beta', 'second', 1, undefined],
          ],
        );
      });

      await t.test('waitForNotification + clickNotificationButton', async () => {
        await wb.runCommand('Harness: Notify');
        const msg = await wb.waitForNotification(/blocked demo\.invalid/);
        assert.equal(msg, 'Harness fixture blocked demo.invalid');
        await wb.screenshot('harness-notification');
        await wb.clickNotificationButton(/blocked demo\.invalid/, 'Allow');
        assert.equal(await wb.waitForNotification(/clicked/), 'Harness fixture clicked Allow');
        await wb.clearNotifications();
        await wb.page.waitForTimeout(300);
        assert.deepEqual(await wb.notifications(), []);
      });

      await t.test('openFile + problems() read JSON diagnostics', async () => {
        await wb.openFile('bad.json');
        const problems = await (async () => {
          for (let i = 0; i < 40; i++) {
            const p = await wb.problems();
            if (p.length) return p;
            await wb.page.waitForTimeout(250);
          }
          return [];
        })();
        assert.ok(problems.length >= 1, 'no problems listed');
        const p = problems[0];
        assert.equal(p.file, 'bad.json');
        assert.equal(p.severity, 'error');
        assert.equal(p.line, 2);
        assert.match(p.source, /json/i);
        assert.ok(p.message.length > 0);
        await wb.screenshot('harness-problems');
      });

      await t.test('terminalText reads a real shell', async () => {
        await wb.runCommand('Terminal: Create New Terminal');
        await wb.waitForTerminalText(/[$#] ?$/m, 20_000); // a prompt
        await wb.typeInTerminal('echo "sum=$((6*7))"');
        const text = await wb.waitForTerminalText(/^sum=42$/m);
        assert.match(text, /echo "sum=\$\(\(6\*7\)\)"/);
        await wb.screenshot('harness-terminal');
      });

      await t.test('statusBarTexts reads the status bar', async () => {
        const texts = await wb.statusBarTexts();
        assert.ok(texts.length > 0);
      });
    },
  );
});

// withCodeServer's `vsix` option: the packaged extension (npm run package, or CAGED_VSIX) installed offline
// shows its activity-bar container and views. Builds the package when it is missing or stale.
test('a packaged .vsix installs offline and shows its views', { timeout: 600_000 }, async () => {
  await withCodeServer({ vsix: ensureVsix() }, async (wb) => {
    await wb.openViewContainer('Caged Agent');
    await wb.waitForExtensionsActivated();
    const titles = (await wb.page.locator('.part.sidebar .pane-header .title').allTextContents()).map((t) => t.trim().toLowerCase());
    for (const view of ['cages', 'allowlist', 'blocked requests']) assert.ok(titles.includes(view), `view ${view} missing: ${JSON.stringify(titles)}`);
    await wb.screenshot('harness-vsix-sidebar');
  });
});
