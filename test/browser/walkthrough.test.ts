// The getting-started walkthrough of the packaged extension, opened like a person would: the command palette's
// "Welcome: Open Walkthrough..." and the walkthrough's title. Its four steps are listed and the first step's
// page (media/walkthrough/docker.md) renders.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { repoRoot, waitUntil, withCodeServer } from './lib';

const VSIX = process.env.CAGED_VSIX ?? path.join(repoRoot, 'dist-pkg', 'caged-agent.vsix');

test('the walkthrough takes a new user from Docker to the first allowed request', { timeout: 180_000 }, async () => {
  assert.ok(fs.existsSync(VSIX), `${VSIX} exists (npm run package)`);
  await withCodeServer({ vsix: VSIX }, async (wb) => {
    await wb.waitForExtensionsActivated();
    await wb.runCommand('Welcome: Open Walkthrough...');
    await wb.pickQuickItem(/Get started with Caged Agent/);
    const steps = ['Check that Docker is running', 'Start a caged agent', 'Watch a request get blocked', 'Allow it with one click'];
    await waitUntil('the walkthrough steps', async () => {
      const text = (await wb.page.locator('.gettingStartedContainer').textContent().catch(() => '')) ?? '';
      return steps.every((s) => text.includes(s));
    }, 20_000);
    const text = (await wb.page.locator('.gettingStartedContainer').textContent()) ?? '';
    assert.match(text, /Get started with Caged Agent/);
    await wb.screenshot('walkthrough');
  });
});
