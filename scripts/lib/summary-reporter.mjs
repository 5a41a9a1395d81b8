// A node:test reporter that writes one JSON summary of a run (the file given by --test-reporter-destination):
//   {"passed":N,"failed":N,"skipped":N,"durationMs":N,"failures":[{name,file,error}],"skips":[{name,file,reason}]}
// Counts what a reader counts: each test that ran on its own (a test with subtests counts through them; a
// suite only when it failed by itself, e.g. in a hook). scripts/test.sh sums these files; the spec reporter
// beside it prints the run for people.
export default async function* summaryReporter(source) {
  const started = Date.now();
  const out = { passed: 0, failed: 0, skipped: 0, durationMs: 0, failures: [], skips: [] };
  // children[n]: results reported at nesting n since the last result at nesting n - 1 (children come first).
  const children = [];
  for await (const e of source) {
    if (e.type !== 'test:pass' && e.type !== 'test:fail') continue;
    const d = e.data;
    const n = d.nesting ?? 0;
    const hadChildren = (children[n + 1] ?? 0) > 0;
    children[n + 1] = 0;
    children[n] = (children[n] ?? 0) + 1;
    const isSuite = d.details?.type === 'suite';
    if (e.type === 'test:fail') {
      const err = d.details?.error;
      // A parent whose only fault is a failed child: the child is already counted.
      if (err?.failureType === 'subtestsFailed') continue;
      out.failed++;
      out.failures.push({ name: d.name, file: d.file, error: String(err?.cause?.message ?? err?.message ?? err ?? '').slice(0, 2000) });
    } else if (d.skip !== undefined || d.todo !== undefined) {
      out.skipped++;
      out.skips.push({ name: d.name, file: d.file, reason: String(d.skip ?? d.todo) });
    } else if (!isSuite && !hadChildren) {
      out.passed++;
    }
  }
  out.durationMs = Date.now() - started;
  yield JSON.stringify(out) + '\n';
}
