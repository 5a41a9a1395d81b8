// The editor's terminals in the agent: every process a terminal starts carries CAGED_AGENT_TERMINAL=<token> in its
// environment (children inherit it), so the terminal's processes can be found again from inside the container and
// ended: when the terminal closes, and after a window reload (the editor cannot reattach a docker exec it lost, so
// the processes it left behind are ended rather than left running where nobody can reach them).
import type Docker from 'dockerode';
import { execIn } from './exec';

export const TERMINAL_ENV = 'CAGED_AGENT_TERMINAL';

/** Which terminals' processes to end: one terminal's (`only`), or all but those whose token starts with `keep`. */
export interface TerminalSelector {
  only?: string;
  keep?: string;
  /** Only count them (nothing is signalled). */
  countOnly?: boolean;
}

// POSIX sh with tr and grep (Debian, Alpine/busybox): HUP, then KILL what is left a second later. Prints the count.
const END_SCRIPT = `
pick() {
  for d in /proc/[0-9]*; do
    p=\${d#/proc/}
    t=$(tr '\\0' '\\n' < "$d/environ" 2>/dev/null | grep "^${TERMINAL_ENV}=") || continue
    t=\${t#${TERMINAL_ENV}=}
    if [ -n "$ONLY" ]; then [ "$t" = "$ONLY" ] || continue; fi
    if [ -n "$KEEP" ]; then case "$t" in "$KEEP"*) continue;; esac; fi
    echo "$p"
  done
}
n=0
if [ -n "$DRY" ]; then for p in $(pick); do n=$((n+1)); done; echo "$n"; exit 0; fi
for p in $(pick); do kill -HUP "$p" 2>/dev/null && n=$((n+1)); done
if [ "$n" -gt 0 ]; then sleep 1; for p in $(pick); do kill -KILL "$p" 2>/dev/null; done; fi
echo "$n"
`;

/** Ends (or counts) the selected terminals' processes in the agent; resolves to how many. */
export async function endTerminals(agent: Docker.Container, sel: TerminalSelector): Promise<number> {
  const r = await execIn(agent, ['/bin/sh', '-c', END_SCRIPT], { user: '0', env: { ONLY: sel.only ?? '', KEEP: sel.keep ?? '', DRY: sel.countOnly ? '1' : '' }, timeoutMs: 15_000 });
  if (r.exitCode !== 0) throw new Error(`cannot end the terminal processes in the agent (exit ${r.exitCode}): ${r.stderr.trim()}`);
  return Number(r.stdout.trim().split('\n').pop()) || 0;
}
