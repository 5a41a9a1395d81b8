// The extension-host test payload (extensionTestsPath): VS Code loads this module inside the real extension
// host and calls run(). It runs every out/test/extension/**/*.test.js with Mocha (bdd and tdd globals both
// available) and prints one machine-readable summary line that scripts/run-extension-tests.mjs parses:
//   [caged-agent-tests] RESULT {"passed":N,"failed":N,"skipped":N,"durationMs":N,"failures":[...],"skips":[...]}
// Works the same under @vscode/test-electron. Env: CAGED_TEST_GREP (a regex over full test titles),
// CAGED_TEST_TIMEOUT_MS (per test, default 60000), CAGED_TEST_FILES (comma-separated substrings of file names).
import * as fs from 'node:fs';
import * as path from 'node:path';
import Mocha from 'mocha';

export const RESULT_PREFIX = '[caged-agent-tests] RESULT ';

function findTests(dir: string, out: string[] = []): string[] {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) findTests(p, out);
    else if (e.name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

export function run(): Promise<void> {
  const mocha = new Mocha({
    ui: 'bdd',
    color: false,
    reporter: 'spec',
    timeout: Number(process.env.CAGED_TEST_TIMEOUT_MS) || 60_000,
  });
  mocha.ui('tdd'); // suite()/test() too, the usual VS Code style; bdd's describe()/it() stay bound
  if (process.env.CAGED_TEST_GREP) mocha.grep(new RegExp(process.env.CAGED_TEST_GREP));

  const filters = (process.env.CAGED_TEST_FILES ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const files = findTests(__dirname)
    .filter((f) => filters.length === 0 || filters.some((s) => path.basename(f).includes(s)))
    .sort();
  for (const f of files) mocha.addFile(f);
  console.log(`[caged-agent-tests] running ${files.length} file(s): ${files.map((f) => path.relative(__dirname, f)).join(', ')}`);

  const started = Date.now();
  return new Promise<void>((resolve, reject) => {
    const failures: Array<{ name: string; file?: string; error: string }> = [];
    const skips: Array<{ name: string; file?: string; reason: string }> = [];
    const report = (passed: number, failed: number, pending: number) =>
      console.log(RESULT_PREFIX + JSON.stringify({ passed, failed, skipped: pending, durationMs: Date.now() - started, failures, skips }));
    try {
      const runner = mocha.run((failed) => {
        const s = runner.stats;
        report(s?.passes ?? 0, s?.failures ?? failed, s?.pending ?? 0);
        if (failed > 0) reject(new Error(`${failed} test(s) failed`));
        else resolve();
      });
      runner.on('fail', (t: Mocha.Runnable, err: Error) => failures.push({ name: t.fullTitle(), file: t.file, error: String(err?.message ?? err).slice(0, 2000) }));
      runner.on('pending', (t: Mocha.Test) => skips.push({ name: t.fullTitle(), file: t.file, reason: 'pending' }));
    } catch (err) {
      // A test file that throws while loading: count it as one failure so the summary says so.
      console.error('[caged-agent-tests] could not load the tests:', err);
      report(0, 1, 0);
      reject(err);
    }
  });
}
