// The workspace checks of `verify`: the read-only mounts are in place, the protected paths are as they were at
// start, and — from inside the agent, as the agent's user — the writes that would reach the host fail while an
// ordinary source file write succeeds. The probes never change a protected file: they create new names (removed
// again) or open for appending without writing, and a rename that should have failed is undone at once.
import type { ExecResult, ProtectionStatus, VerifyCheck } from './api';

type Exec = (cmd: string[], timeoutMs: number) => Promise<ExecResult>;

/** One probe per line: "<name> OK" (the write succeeded) or "<name> <error text>". */
const PROBE_SCRIPT = String.raw`
cd "$1" || { echo "cd failed"; exit 3; }
p() { printf '%s %s\n' "$1" "$(printf '%s' "$2" | tr '\n' ' ')"; }
if [ -d .git ]; then
  f=.git/hooks/caged-agent-verify-probe
  if e=$( (: > "$f") 2>&1 ); then rm -f "$f"; p hook OK; else p hook "$e"; fi
  if e=$( (: >> .git/config) 2>&1 ); then p config OK; else p config "$e"; fi
  if e=$(mv .git .git.caged-agent-verify-probe 2>&1); then mv .git.caged-agent-verify-probe .git; p rename OK; else p rename "$e"; fi
elif [ -e .git ]; then
  p hook LINK; p config LINK
  if e=$(mv .git .git.caged-agent-verify-probe 2>&1); then mv .git.caged-agent-verify-probe .git; p rename OK; else p rename "$e"; fi
else
  p hook NOGIT; p config NOGIT; p rename NOGIT
fi
if [ ! -e .vscode ]; then
  if e=$(mkdir .vscode 2>&1); then rmdir .vscode; p vscode OK; else p vscode "$e"; fi
elif [ -e .vscode/settings.json ]; then
  if e=$( (: >> .vscode/settings.json) 2>&1 ); then p vscode OK; else p vscode "$e"; fi
else
  if e=$( (: > .vscode/settings.json) 2>&1 ); then rm -f .vscode/settings.json; p vscode OK; else p vscode "$e"; fi
fi
f=caged-agent-verify-$$.tmp
if e=$( (echo probe > "$f") 2>&1 ); then rm -f "$f"; p source OK; else p source "$e"; fi
`;

const PROBES: Array<{ key: string; name: string; mustFail: boolean; what: string }> = [
  { key: 'hook', name: 'the agent cannot write a git hook', mustFail: true, what: 'creating a file in .git/hooks/' },
  { key: 'config', name: 'the agent cannot write .git/config', mustFail: true, what: 'opening .git/config for writing' },
  { key: 'vscode', name: 'the agent cannot create .vscode/settings.json', mustFail: true, what: 'writing .vscode/settings.json' },
  { key: 'rename', name: 'the agent cannot rename .git away', mustFail: true, what: 'mv .git' },
  { key: 'source', name: 'the agent can write source files', mustFail: false, what: 'creating a file at the workspace root' },
];

export async function workspaceChecks(exec: Exec, ws: { inContainer: string; status?: ProtectionStatus; error?: string }): Promise<VerifyCheck[]> {
  const checks: VerifyCheck[] = [];
  const st = ws.status;
  if (!st) {
    checks.push({ name: 'protected paths are read-only mounts', ok: false, detail: `could not check the workspace protection: ${ws.error ?? 'unknown error'}` });
  } else if (!st.protection.enabled) {
    checks.push({ name: 'protected paths are read-only mounts', ok: false, detail: 'this cage was started with the workspace protection switched off (engine option protectWorkspace: false): only the policy is read-only' });
  } else if (!st.mounts) {
    checks.push({ name: 'protected paths are read-only mounts', ok: true, skipped: true, detail: `skipped: the agent's mount table could not be read (${st.unreadable})` });
  } else {
    const bad = [...st.mounts.missing.map((m) => `${st.mountPaths[m] ?? m} (no longer mounted)`), ...st.mounts.writable.map((m) => `${st.mountPaths[m] ?? m} (writable)`)];
    const count = Object.keys(st.mountPaths).length;
    checks.push({
      name: 'protected paths are read-only mounts',
      ok: bad.length === 0,
      detail: bad.length === 0
        ? `${count} mounts in place (${st.protection.protected.length} protected paths read-only)`
        : `the agent can change: ${bad.join(', ')}. A program on this machine replaced them while the cage ran (git does so for .git/config, e.g. "git config", "git push -u"), and Docker dropped the read-only mount with the old file. Restart the cage to protect them again.`,
    });
  }
  if (st) {
    checks.push({
      name: 'protected paths unchanged since the cage started',
      ok: st.changed.length === 0,
      detail: st.changed.length === 0
        ? `${Object.keys(st.protection.baseline).length} paths as they were at start`
        : `changed while the cage ran: ${st.changed.join(', ')}. If you or a program on this machine did not change them, the workspace boundary is broken; a restart takes a new baseline.`,
    });
  }

  const r = await exec(['/bin/sh', '-c', PROBE_SCRIPT, 'probe', ws.inContainer], 30_000).catch((e) => ({ exitCode: -1, stdout: '', stderr: String(e?.message ?? e) }));
  const lines = new Map<string, string>();
  for (const l of r.stdout.split('\n')) {
    const i = l.indexOf(' ');
    if (i > 0) lines.set(l.slice(0, i), l.slice(i + 1).trim());
  }
  // Docker reports a missing /bin/sh on stdout ("OCI runtime exec failed ..."): no probe line means it did not run.
  if (!PROBES.some((p) => lines.has(p.key))) {
    const why = (r.stderr || r.stdout).trim().split('\n')[0] || `exit ${r.exitCode}`;
    for (const p of PROBES) checks.push({ name: p.name, ok: true, skipped: true, detail: `skipped: the agent image cannot run /bin/sh (${why})` });
    return checks;
  }
  for (const p of PROBES) {
    const got = lines.get(p.key);
    if (got === 'NOGIT' || got === 'LINK') {
      checks.push({ name: p.name, ok: true, skipped: true, detail: got === 'NOGIT' ? 'skipped: the workspace is not a git repository' : "skipped: .git is a link to a git folder elsewhere (a linked worktree or submodule); 'protected paths are read-only mounts' covers that folder" });
    } else if (got === undefined) {
      checks.push({ name: p.name, ok: false, detail: `the probe did not report (${(r.stderr || '').trim().split('\n')[0] || `exit ${r.exitCode}`})` });
    } else if (p.mustFail) {
      checks.push({ name: p.name, ok: got !== 'OK', detail: got === 'OK' ? `${p.what} succeeded from inside the agent: the host would obey what the agent writes there` : `${p.what} failed as it must: ${got}` });
    } else {
      checks.push({ name: p.name, ok: got === 'OK', detail: got === 'OK' ? `${p.what} succeeded (and was removed again)` : `${p.what} failed: ${got}` });
    }
  }
  return checks;
}
