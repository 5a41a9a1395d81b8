// Playwright helpers that drive VS Code (code-server 4.100.3 web client, Debian Chromium) the way a person
// does: command palette, notifications, activity bar, tree views, Problems panel, terminal, screenshots.
// The process side (install, start, stop code-server; launch Chromium) lives in scripts/lib/codeserver.mjs
// and is shared with scripts/run-extension-tests.mjs.
//
//   await withCodeServer({ vsix: 'dist-pkg/caged-agent.vsix' }, async (wb) => {
//     await wb.runCommand('Caged Agent: Start Caged Agent');
//     await wb.waitForNotification(/blocked/);
//     await wb.screenshot('start');
//   });
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser, Locator, Page } from 'playwright-core';

export const repoRoot = path.resolve(__dirname, '../../../..'); // out/test/browser/lib -> repo
export const screenshotDir = path.join(repoRoot, 'test-results', 'screenshots');

/** The subset of scripts/lib/codeserver.mjs used here (it is plain JS, loaded at run time). */
export interface CodeServerHandle {
  entry: string;
  dir: string;
  userDataDir: string;
  extensionsDir: string;
  logFile: string;
  pid: number;
  port: number;
  host: string;
  baseUrl: string;
  installOutput: string;
  output(): string;
  exited(): { code: number | null; signal: string | null } | null;
  stop(): Promise<void>;
}
interface CodeServerModule {
  ensureCodeServer(o?: { quiet?: boolean }): string;
  tempDir(prefix?: string): string;
  makeWorkspace(parent: string, from?: string): string;
  startCodeServer(o: {
    entry?: string;
    dir?: string;
    settings?: Record<string, unknown>;
    vsix?: string;
    env?: Record<string, string | undefined>;
    startTimeoutMs?: number;
    onOutput?: (line: string) => void;
  }): Promise<CodeServerHandle>;
  workbenchUrl(cs: CodeServerHandle, o: { folder?: string; extensionDevelopmentPath?: string; extensionTestsPath?: string; skipWelcome?: boolean }): string;
  launchChromium(o?: { headless?: boolean; args?: string[]; timeoutMs?: number }): Promise<Browser>;
  waitForWorkbench(page: Page, timeoutMs?: number): Promise<void>;
}

let modPromise: Promise<CodeServerModule> | undefined;
/** Loads scripts/lib/codeserver.mjs (ESM) from this CommonJS module. */
export function codeServerModule(): Promise<CodeServerModule> {
  // A computed specifier keeps the transpilers from rewriting this dynamic import into require().
  const url = pathToFileURL(path.join(repoRoot, 'scripts/lib/codeserver.mjs')).href;
  modPromise ??= import(url) as Promise<CodeServerModule>;
  return modPromise;
}

export interface CodeServerOptions {
  /** Folder to open; default: a temp copy of demo/ if present, else an empty temp folder. */
  folder?: string;
  /** Copy this folder into a temp workspace instead (ignored when `folder` is given). */
  copyFrom?: string;
  /** Files to create in the workspace before it opens: relative path -> contents. */
  files?: Record<string, string>;
  /** Install this packaged extension into the run's extensions dir first. */
  vsix?: string;
  /** Load an extension under development from this folder. */
  extensionDevelopmentPath?: string;
  /** User settings merged over the defaults (see DEFAULT_SETTINGS in scripts/lib/codeserver.mjs). */
  settings?: Record<string, unknown>;
  /** Extra environment for code-server and its extension host. */
  env?: Record<string, string | undefined>;
  viewport?: { width: number; height: number };
  /** Keep the temp dir (profile, logs) after the run. */
  keep?: boolean;
  /** Print code-server output and browser console errors. */
  verbose?: boolean;
  /** Screenshot name saved when fn throws (default 'failure-<time>'); false: none. */
  failureScreenshot?: string | false;
}

export interface TreeItem {
  label: string;
  description: string;
  /** aria-label of the row (label + description + tooltip-ish details VS Code adds). */
  ariaLabel: string;
  /** 1 for top-level items. */
  level: number;
  /** true/false for collapsible items, undefined for leaves. */
  expanded: boolean | undefined;
}

export interface ProblemEntry {
  /** File name the entry belongs to (the resource row's label). */
  file: string;
  severity: 'error' | 'warning' | 'info' | 'hint' | 'unknown';
  message: string;
  source: string;
  /** 1-based, as shown. */
  line: number;
  column: number;
  ariaLabel: string;
}

const DEFAULT_BROWSER_SETTINGS: Record<string, unknown> = {
  // The DOM renderer keeps the terminal text readable from the page (no WebGL in headless Chromium anyway).
  'terminal.integrated.gpuAcceleration': 'off',
};

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
function toRegex(t: string | RegExp): RegExp {
  return typeof t === 'string' ? new RegExp(escapeRegex(t)) : t;
}
function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls fn until it returns a truthy value; throws `what` on timeout. */
export async function waitUntil<T>(what: string, fn: () => Promise<T | undefined | null | false> | T | undefined | null | false, timeoutMs = 15_000, intervalMs = 150): Promise<T> {
  const end = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? ` (last error: ${String((lastErr as Error).message ?? lastErr)})` : ''}`);
    await sleep(intervalMs);
  }
}

export class Workbench {
  constructor(
    readonly page: Page,
    readonly browser: Browser,
    readonly codeServer: CodeServerHandle,
    /** Absolute path of the open workspace folder. */
    readonly folder: string,
  ) {}

  // ---------- command palette ----------

  private quickInput(): Locator {
    return this.page.locator('.quick-input-widget');
  }

  /** Closes any open quick input (palette, quick pick). */
  async closeQuickInput(): Promise<void> {
    if (await this.quickInput().isVisible()) await this.page.keyboard.press('Escape');
    await this.quickInput().waitFor({ state: 'hidden', timeout: 5_000 }).catch(() => undefined);
  }

  /**
   * Runs a command from the command palette by its title as shown there (e.g. 'View: Toggle Problems',
   * 'Caged Agent: Start Caged Agent'): F1, type, pick the row whose label equals the title, Enter.
   */
  async runCommand(title: string, timeoutMs = 15_000): Promise<void> {
    await this.closeQuickInput();
    await this.page.keyboard.press('F1');
    const input = this.page.locator('.quick-input-widget .quick-input-box input');
    await input.waitFor({ state: 'visible', timeout: timeoutMs });
    await input.fill('>' + title);
    const row = await this.quickPickRow((label) => label === title, `command "${title}" in the palette`, timeoutMs);
    await row.click();
    await this.quickInput().waitFor({ state: 'hidden', timeout: 5_000 }).catch(() => undefined);
  }

  /** In an open quick pick, waits for the row whose label satisfies pred and returns it. */
  async quickPickRow(pred: (label: string, ariaLabel: string) => boolean, what: string, timeoutMs = 15_000): Promise<Locator> {
    const rows = this.page.locator('.quick-input-widget .quick-input-list .monaco-list-row');
    let seen: string[] = [];
    try {
      const index = await waitUntil(what, async () => {
        const items = await rows.evaluateAll((els) =>
          els.map((e) => ({
            label: (e.querySelector('.label-name')?.textContent ?? '').trim(),
            aria: e.getAttribute('aria-label') ?? '',
            index: e.getAttribute('data-index'),
          })),
        );
        seen = items.map((i) => i.label);
        const hit = items.find((i) => pred(i.label, i.aria));
        return hit ? hit.index ?? undefined : undefined;
      }, timeoutMs);
      return this.page.locator(`.quick-input-widget .quick-input-list .monaco-list-row[data-index="${index}"]`);
    } catch (e) {
      throw new Error(`${(e as Error).message}; rows shown: ${JSON.stringify(seen)}`);
    }
  }

  /** In an open quick pick (e.g. one a command showed), picks the item whose label matches. */
  async pickQuickItem(label: string | RegExp, timeoutMs = 15_000): Promise<void> {
    const re = toRegex(label);
    const row = await this.quickPickRow((l) => re.test(l), `quick pick item ${re}`, timeoutMs);
    await row.click();
  }

  /** Types into an open input box / quick pick and presses Enter. */
  async answerInputBox(text: string, timeoutMs = 15_000): Promise<void> {
    const input = this.page.locator('.quick-input-widget .quick-input-box input');
    await input.waitFor({ state: 'visible', timeout: timeoutMs });
    await input.fill(text);
    await input.press('Enter');
  }

  /** Opens a workspace file in an editor the way a person does: Quick Open (Ctrl+P), type, pick. */
  async openFile(relativePath: string, timeoutMs = 20_000): Promise<void> {
    await this.closeQuickInput();
    await this.page.keyboard.press('Control+P');
    const input = this.page.locator('.quick-input-widget .quick-input-box input');
    await input.waitFor({ state: 'visible', timeout: timeoutMs });
    await input.fill(relativePath);
    const base = path.basename(relativePath);
    const row = await this.quickPickRow((label) => label === base, `"${relativePath}" in Quick Open`, timeoutMs);
    await row.click();
    await this.page
      .locator(`.tabs-container .tab[data-resource-name="${base}"], .tabs-container .tab[aria-label^="${base}"]`)
      .first()
      .waitFor({ state: 'visible', timeout: timeoutMs });
  }

  // ---------- notifications ----------

  private notificationItems(): Locator {
    return this.page.locator('.notifications-toasts .notification-list-item, .notifications-center .notification-list-item');
  }

  /** Texts of the notifications currently shown (toasts and, if open, the notification center). */
  async notifications(): Promise<string[]> {
    return this.notificationItems().evaluateAll((els) =>
      els.map((e) => (e.querySelector('.notification-list-item-message')?.textContent ?? '').trim()),
    );
  }

  /**
   * Waits for a notification whose message matches and returns its message text. Looks at the toasts, and
   * opens the notification center when the toast is gone (hidden toasts still live there).
   */
  async waitForNotification(text: string | RegExp, timeoutMs = 30_000): Promise<string> {
    const re = toRegex(text);
    const start = Date.now();
    let openedCenter = false;
    let seen: string[] = [];
    try {
      return await waitUntil(`a notification matching ${re}`, async () => {
        seen = await this.notifications();
        const hit = seen.find((t) => re.test(t));
        if (hit) {
          // Let a new toast finish its fade-in so screenshots show it fully.
          await this.page
            .locator('.notification-toast:not(.notification-fade-in-done)')
            .first()
            .waitFor({ state: 'detached', timeout: 1_000 })
            .catch(() => undefined);
          return hit;
        }
        if (!openedCenter && Date.now() - start > Math.min(5_000, timeoutMs / 2)) {
          openedCenter = true;
          await this.showNotificationCenter();
        }
        return undefined;
      }, timeoutMs);
    } catch (e) {
      throw new Error(`${(e as Error).message}; notifications shown: ${JSON.stringify(seen)}`);
    }
  }

  /** Opens the notification center (bell in the status bar) if it is not open. */
  async showNotificationCenter(): Promise<void> {
    if (await this.page.locator('.notifications-center.visible').isVisible()) return;
    await this.page.locator('.statusbar-item[id="status.notifications"] a, .statusbar-item[id="status.notifications"]').first().click();
    await this.page.locator('.notifications-center.visible').waitFor({ state: 'visible', timeout: 5_000 });
  }

  /** Clicks the button labelled `button` on the notification whose message matches `text`. */
  async clickNotificationButton(text: string | RegExp, button: string | RegExp, timeoutMs = 30_000): Promise<void> {
    const re = toRegex(text);
    const btnRe = typeof button === 'string' ? new RegExp(`^\\s*${escapeRegex(button)}\\s*$`) : button;
    await this.waitForNotification(re, timeoutMs);
    const item = this.notificationItems().filter({ has: this.page.locator('.notification-list-item-message', { hasText: re }) }).first();
    await item.hover(); // buttons of a collapsed toast show on hover/focus
    const btn = item.locator('.notification-list-item-buttons-container .monaco-button').filter({ hasText: btnRe }).first();
    try {
      await btn.waitFor({ state: 'visible', timeout: 5_000 });
    } catch {
      const labels = await item.locator('.notification-list-item-buttons-container .monaco-button').allTextContents();
      throw new Error(`notification ${re} has no button ${btnRe}; buttons: ${JSON.stringify(labels)}`);
    }
    await btn.click();
  }

  /** Dismisses every notification (Notifications: Clear All Notifications). */
  async clearNotifications(): Promise<void> {
    await this.runCommand('Notifications: Clear All Notifications');
  }

  // ---------- views ----------

  /**
   * Shows the view container with this title: an activity-bar entry (Explorer, Search, or an extension's
   * container such as 'Caged Agent') or a panel tab (Problems, Output, Terminal, ...). Does not toggle it
   * closed when already shown.
   */
  async openViewContainer(title: string, timeoutMs = 15_000): Promise<void> {
    const re = new RegExp(`^${escapeRegex(title)}(\\s*\\(.*\\))?$`, 'i');
    const activity = this.page.locator('.part.activitybar .action-item a.action-label');
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      // Activity bar entries carry "Title (Shortcut)" in aria-label.
      const labels = await activity.evaluateAll((els) => els.map((e) => e.getAttribute('aria-label') ?? ''));
      const i = labels.findIndex((l) => re.test(l.trim()));
      if (i >= 0) {
        const item = activity.nth(i);
        const li = item.locator('xpath=..');
        const checked = ((await li.getAttribute('class')) ?? '').split(/\s+/).includes('checked');
        const sidebarVisible = await this.page.locator('.part.sidebar').isVisible();
        if (!checked || !sidebarVisible) await item.click();
        await waitUntil(`view container "${title}" to show`, async () => {
          const t = (await this.page.locator('.part.sidebar .composite.title h2').first().textContent().catch(() => '')) ?? '';
          return t.trim().toLowerCase().startsWith(title.toLowerCase()) || (await this.sidebarTitleMatches(title));
        }, Math.max(2_000, deadline - Date.now()));
        return;
      }
      // Panel tabs (Problems, Output, Debug Console, Terminal, Ports).
      const tabs = this.page.locator('.part.panel .composite-bar .action-item a.action-label');
      const tabLabels = await tabs.evaluateAll((els) => els.map((e) => (e.getAttribute('aria-label') ?? e.textContent ?? '').trim()));
      const j = tabLabels.findIndex((l) => re.test(l));
      if (j >= 0 && (await this.page.locator('.part.panel').isVisible())) {
        await tabs.nth(j).click();
        return;
      }
      if (Date.now() > deadline) {
        throw new Error(`no view container "${title}"; activity bar: ${JSON.stringify(labels)}; panel: ${JSON.stringify(tabLabels)}`);
      }
      await sleep(200);
    }
  }

  private async sidebarTitleMatches(title: string): Promise<boolean> {
    const aria = (await this.page.locator('.part.sidebar').getAttribute('aria-label').catch(() => '')) ?? '';
    return aria.toLowerCase().includes(title.toLowerCase());
  }

  /** The view pane (in the side bar or panel) whose header title is viewTitle (case-insensitive). */
  viewPane(viewTitle: string): Locator {
    const re = new RegExp(`^\\s*${escapeRegex(viewTitle)}\\s*$`, 'i');
    return this.page.locator('.pane').filter({ has: this.page.locator('.pane-header .title', { hasText: re }) }).first();
  }

  /**
   * Expands the view if collapsed and returns its rendered tree rows (top to bottom) right now; a tree that
   * is still loading reads as []. Use waitForTreeItems to wait for content.
   */
  async treeItems(viewTitle: string, timeoutMs = 15_000): Promise<TreeItem[]> {
    const pane = this.viewPane(viewTitle);
    try {
      await pane.waitFor({ state: 'visible', timeout: timeoutMs });
    } catch {
      const titles = await this.page.locator('.pane .pane-header .title').allTextContents();
      throw new Error(`no visible view "${viewTitle}"; views shown: ${JSON.stringify(titles)}`);
    }
    const header = pane.locator('.pane-header').first();
    if ((await header.getAttribute('aria-expanded')) === 'false') {
      await header.click();
      await waitUntil(`view "${viewTitle}" to expand`, async () => (await header.getAttribute('aria-expanded')) === 'true', 5_000);
    }
    return pane.locator('.pane-body .monaco-list-row').evaluateAll((els) =>
      els
        .map((e) => {
          const expandedAttr = e.getAttribute('aria-expanded');
          return {
            label: (e.querySelector('.label-name')?.textContent ?? e.querySelector('.monaco-highlighted-label')?.textContent ?? '').trim(),
            description: (e.querySelector('.label-description')?.textContent ?? '').trim(),
            ariaLabel: e.getAttribute('aria-label') ?? '',
            level: Number(e.getAttribute('aria-level') ?? '1'),
            expanded: expandedAttr === null ? undefined : expandedAttr === 'true',
            top: parseFloat((e as unknown as { style: { top: string } }).style.top || '0'),
          };
        })
        .sort((a, b) => a.top - b.top)
        .map(({ top: _top, ...rest }) => rest),
    );
  }

  /**
   * Polls treeItems(viewTitle) until pred holds (default: at least one item) — trees fill asynchronously.
   * Returns the items that satisfied it.
   */
  async waitForTreeItems(viewTitle: string, pred: (items: TreeItem[]) => boolean = (i) => i.length > 0, timeoutMs = 15_000): Promise<TreeItem[]> {
    let last: TreeItem[] = [];
    try {
      return await waitUntil(`tree items of "${viewTitle}"`, async () => {
        last = await this.treeItems(viewTitle, timeoutMs);
        return pred(last) ? last : undefined;
      }, timeoutMs, 200);
    } catch (e) {
      throw new Error(`${(e as Error).message}; items shown: ${JSON.stringify(last.map((i) => i.label))}`);
    }
  }

  /** The tree row with this label in a view (for clicking, hovering inline actions, context menus). */
  treeRow(viewTitle: string, label: string | RegExp): Locator {
    const re = typeof label === 'string' ? new RegExp(`^\\s*${escapeRegex(label)}\\s*$`) : label;
    return this.viewPane(viewTitle).locator('.pane-body .monaco-list-row').filter({ has: this.page.locator('.label-name, .monaco-highlighted-label', { hasText: re }) }).first();
  }

  // ---------- Problems panel ----------

  /** Opens the Problems panel (if not shown) and reads its entries, expanding every file. */
  async problems(timeoutMs = 15_000): Promise<ProblemEntry[]> {
    const panel = this.page.locator('.markers-panel');
    if (!(await panel.isVisible())) {
      await this.runCommand('Problems: Focus on Problems View', timeoutMs);
      await panel.waitFor({ state: 'visible', timeout: timeoutMs });
    }
    // Tree mode lists resource rows (level 1) and marker rows (level 2); the table mode is not used here.
    await sleep(300); // markers are rendered on a short debounce after the panel shows
    const rows = await panel.locator('.monaco-list-row').evaluateAll((els) =>
      els
        .map((e) => ({
          top: parseFloat((e as unknown as { style: { top: string } }).style.top || '0'),
          level: Number(e.getAttribute('aria-level') ?? '1'),
          aria: e.getAttribute('aria-label') ?? '',
          file: (e.querySelector('.resource-label .label-name, .file-icon .label-name, .label-name')?.textContent ?? '').trim(),
          severityClass: (e.querySelector('.marker-icon, .codicon[class*="codicon-error"], .codicon[class*="codicon-warning"], .codicon[class*="codicon-info"]')?.className ?? ''),
          message: (e.querySelector('.marker-message-details .marker-message, .marker-message')?.textContent ?? '').trim(),
          source: (e.querySelector('.marker-source')?.textContent ?? '').trim(),
          lineCol: (e.querySelector('.marker-line')?.textContent ?? '').trim(),
        }))
        .sort((a, b) => a.top - b.top),
    );
    const out: ProblemEntry[] = [];
    let file = '';
    for (const r of rows) {
      if (r.level === 1) {
        file = r.file;
        continue;
      }
      const m = /(\d+)\D+(\d+)/.exec(r.lineCol);
      const sev = /error/i.test(r.severityClass) ? 'error' : /warning/i.test(r.severityClass) ? 'warning' : /info/i.test(r.severityClass) ? 'info' : /hint/i.test(r.severityClass) ? 'hint' : 'unknown';
      out.push({
        file,
        severity: sev,
        message: r.message || r.aria,
        source: r.source.replace(/^\(|\)$/g, ''),
        line: m ? Number(m[1]) : 0,
        column: m ? Number(m[2]) : 0,
        ariaLabel: r.aria,
      });
    }
    return out;
  }

  // ---------- terminal ----------

  /**
   * Text of the active terminal as rendered (the visible rows of xterm's DOM renderer, which these runs
   * select with terminal.integrated.gpuAcceleration=off), trailing blank lines removed. Opens the panel's
   * terminal view if needed (it does not create a terminal).
   */
  async terminalText(): Promise<string> {
    const rows = this.page.locator('.terminal-wrapper.active .xterm-rows > div');
    if (!(await this.page.locator('.terminal-wrapper.active').isVisible())) {
      await this.runCommand('Terminal: Focus Terminal');
      await this.page.locator('.terminal-wrapper.active').waitFor({ state: 'visible', timeout: 10_000 });
    }
    const lines = await rows.evaluateAll((els) => els.map((e) => (e.textContent ?? '').replace(/\u00a0/g, ' ').trimEnd()));
    while (lines.length && lines[lines.length - 1] === '') lines.pop();
    return lines.join('\n');
  }

  /** Waits until the active terminal's text matches. Returns the text. */
  async waitForTerminalText(re: RegExp, timeoutMs = 30_000): Promise<string> {
    let last = '';
    try {
      return await waitUntil(`terminal text matching ${re}`, async () => {
        last = await this.terminalText();
        return re.test(last) ? last : undefined;
      }, timeoutMs, 250);
    } catch (e) {
      throw new Error(`${(e as Error).message}; terminal shows:\n${last}`);
    }
  }

  /** Types into the active terminal (as keystrokes) and presses Enter. */
  async typeInTerminal(text: string): Promise<void> {
    await this.page.locator('.terminal-wrapper.active .xterm').click();
    await this.page.keyboard.type(text);
    await this.page.keyboard.press('Enter');
  }

  // ---------- misc ----------

  /** Saves a PNG of the page to test-results/screenshots/<name>.png and returns its path. */
  async screenshot(name: string): Promise<string> {
    fs.mkdirSync(screenshotDir, { recursive: true });
    const file = path.join(screenshotDir, `${name.replace(/[^\w.-]+/g, '-')}.png`);
    await this.page.screenshot({ path: file });
    return file;
  }

  /** Waits until the status bar no longer shows "Activating Extensions..." (startup activation done). */
  async waitForExtensionsActivated(timeoutMs = 60_000): Promise<void> {
    await waitUntil('extensions to finish activating', async () => !(await this.statusBarTexts()).some((t) => /Activating Extensions/i.test(t)), timeoutMs, 250);
  }

  /** Status bar item texts (e.g. to read the extension's cage state and blocked-count badge). */
  async statusBarTexts(): Promise<string[]> {
    return this.page.locator('.part.statusbar .statusbar-item').evaluateAll((els) =>
      els.map((e) => (e.textContent ?? '').trim()).filter(Boolean),
    );
  }
}

/**
 * Starts code-server (installing it if needed, ~2 min the first time), optionally installs a .vsix, opens the
 * workbench for a folder in headless Chromium, runs fn, and always stops what it started (by PID).
 * On failure, saves a screenshot (test-results/screenshots/) before cleaning up.
 */
export async function withCodeServer<T>(opts: CodeServerOptions, fn: (wb: Workbench) => Promise<T>): Promise<T> {
  const m = await codeServerModule();
  const dir = m.tempDir('caged-browser-');
  let folder = opts.folder ? path.resolve(opts.folder) : m.makeWorkspace(dir, opts.copyFrom);
  folder = fs.realpathSync(folder);
  for (const [rel, contents] of Object.entries(opts.files ?? {})) {
    const p = path.join(folder, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, contents);
  }
  const env: Record<string, string | undefined> = { ...process.env, ...(opts.env ?? {}) };
  delete env.VSCODE_IPC_HOOK_CLI;
  let cs: CodeServerHandle | undefined;
  let browser: Browser | undefined;
  try {
    cs = await m.startCodeServer({
      dir,
      vsix: opts.vsix,
      settings: { ...DEFAULT_BROWSER_SETTINGS, ...(opts.settings ?? {}) },
      env,
      onOutput: opts.verbose ? (l) => console.log(`[code-server] ${l}`) : undefined,
    });
    browser = await m.launchChromium();
    const page = await browser.newPage({ viewport: opts.viewport ?? { width: 1400, height: 900 } });
    if (opts.verbose) page.on('console', (msg) => msg.type() === 'error' && console.log(`[browser] ${msg.text()}`));
    await page.goto(m.workbenchUrl(cs, { folder, extensionDevelopmentPath: opts.extensionDevelopmentPath }), { waitUntil: 'domcontentloaded', timeout: 60_000 });
    await m.waitForWorkbench(page, 60_000);
    const wb = new Workbench(page, browser, cs, folder);
    try {
      return await fn(wb);
    } catch (e) {
      if (opts.failureScreenshot !== false) {
        const name = opts.failureScreenshot ?? `failure-${new Date().toISOString().replace(/[:.]/g, '-')}`;
        const file = await wb.screenshot(name).catch(() => undefined);
        if (file) (e as Error).message += `\n(screenshot: ${path.relative(repoRoot, file)})`;
      }
      throw e;
    }
  } finally {
    await browser?.close().catch(() => undefined);
    await cs?.stop();
    if (!opts.keep) fs.rmSync(dir, { recursive: true, force: true });
  }
}
