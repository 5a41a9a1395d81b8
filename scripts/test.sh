#!/usr/bin/env bash
# The whole test suite, as CI and a newcomer run it: installs what the tests need (Debian packages, a Docker
# engine, locally built base images, code-server), builds, checks types and lint, then runs every suite against
# real parts. Prints one closing line "N passed, N failed". Skips nothing silently: a missing piece fails.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p .cache test-results
t0=$(date +%s)
stamp() { echo "[test] $(( $(date +%s) - t0 ))s: $*"; }

stamp "system packages"; bash scripts/install-system-deps.sh || { echo "installing system packages failed"; exit 1; }
stamp "docker engine"; bash scripts/ensure-docker.sh || { echo "no Docker engine"; exit 1; }
stamp "test images"; bash scripts/build-test-images.sh || { echo "building test images failed"; exit 1; }
stamp "code-server"; bash scripts/setup-codeserver.sh || { echo "installing code-server failed"; exit 1; }
stamp "build"; npm run -s build || exit 1
stamp "typecheck"; npm run -s typecheck || exit 1
stamp "lint"; npm run -s lint || exit 1
node scripts/sweep-test-objects.mjs

total_pass=0; total_fail=0; failed_suites=()
# Each runner writes test-results/<suite>.json ({"passed","failed","skipped","failures","skips"}; see
# scripts/lib/summary-reporter.mjs): this sums those files. A skipped test counts as failed (nothing is skipped
# silently), and so does a suite that exits non-zero or writes no summary.
run_suite() { # name, command...
  local name=$1; shift
  local log="test-results/$name.log" json="test-results/$name.json"
  stamp "suite $name"
  rm -f "$json"
  "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local counts
  counts=$(node scripts/lib/suite-summary.mjs "$json")
  local p f s state
  read -r p f s state <<<"$counts"
  if [ "$state" = missing ]; then echo "[test] suite $name wrote no $json"; f=$((f + 1)); fi
  f=$((f + s))
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then echo "[test] suite $name ran no test"; f=1; fi
  total_pass=$((total_pass + p)); total_fail=$((total_fail + f))
  [ "$rc" -ne 0 ] || [ "$f" -ne 0 ] && failed_suites+=("$name")
  stamp "suite $name: $p passed, $f failed$([ "$s" -gt 0 ] && echo " ($s of them skipped)") (exit $rc)"
}

run_suite unit node scripts/run-node-tests.mjs unit
run_suite proxy node scripts/run-node-tests.mjs proxy
run_suite bench node scripts/run-node-tests.mjs bench
run_suite engine node scripts/run-node-tests.mjs engine -- --test-concurrency=1
run_suite extension node scripts/run-extension-tests.mjs
stamp "package (the browser suite installs the .vsix)"; npm run -s package >/dev/null || { echo "npm run package failed"; exit 1; }
run_suite browser node scripts/run-node-tests.mjs browser -- --test-concurrency=1

node scripts/sweep-test-objects.mjs
stamp "done"
[ ${#failed_suites[@]} -gt 0 ] && echo "[test] failed suites: ${failed_suites[*]}"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ] && [ ${#failed_suites[@]} -eq 0 ]
