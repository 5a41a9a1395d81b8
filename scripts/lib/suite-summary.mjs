// Reads one suite's test-results/<suite>.json (written by scripts/lib/summary-reporter.mjs or
// run-extension-tests.mjs), lists its failures and skips on stderr, and prints "PASSED FAILED SKIPPED STATE"
// on stdout for scripts/test.sh (STATE: ok, or missing when the suite wrote no summary).
import fs from 'node:fs';

let s;
try {
  s = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
} catch {
  console.log('0 0 0 missing');
  process.exit(0);
}
const where = (file) => (file ? ` (${String(file).replace(/^.*\/out\//, '')})` : '');
for (const f of s.failures ?? []) console.error(`[test]   FAILED ${f.name}${where(f.file)}: ${String(f.error).split('\n')[0]}`);
for (const k of s.skips ?? []) console.error(`[test]   SKIPPED ${k.name}${where(k.file)}: ${k.reason}`);
console.log(`${s.passed ?? 0} ${s.failed ?? 0} ${s.skipped ?? 0} ok`);
