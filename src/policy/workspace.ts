// The `workspace:` section of the policy: which workspace paths the agent may not change (protect) and which
// built-in protected paths it may (writable, the visible opt-out). Pure: strings in, strings out.

/** What `workspace.protect` / `workspace.writable` entries may look like, for error messages. */
export const WORKSPACE_FIELDS = ['protect', 'writable'] as const;

/**
 * Paths whose opt-out lets the agent run commands on this machine through git (the host's git obeys them).
 * `writable` may still name them; the parser warns.
 */
const GIT_RUNS = ['.git', '.git/hooks', '.git/config', '.git/info', '.git/modules', '.git/worktrees', '.gitmodules'];

/**
 * Parses one workspace path: relative to the workspace folder, "/" separators, a trailing "/" or "/**" naming a
 * folder. Refuses absolute paths, "..", backslashes and glob characters other than that trailing "/**".
 */
export function parseWorkspacePath(text: string): { path: string; dir: boolean } | { error: string } {
  const q = JSON.stringify(text);
  let s = text.trim();
  if (s === '') return { error: 'the path is empty; write a path relative to the workspace folder, like ".github/workflows/"' };
  // eslint-disable-next-line no-control-regex -- control characters are what this refuses
  if (/[\u0000-\u001f\u007f]/.test(s)) return { error: `${q} contains control characters` };
  if (s.includes('\\')) return { error: `${q} contains "\\"; write "/" between folders` };
  if (s.startsWith('/') || s.startsWith('~') || /^[A-Za-z]:/.test(s)) {
    return { error: `${q} is not relative to the workspace folder; write it like ".github/workflows/" (paths outside the workspace are not mounted into the cage)` };
  }
  let dir = false;
  if (s.endsWith('/**')) {
    s = s.slice(0, -3);
    dir = true;
  }
  if (s.endsWith('/')) dir = true;
  if (/[*?[\]{}]/.test(s)) return { error: `${q}: only a trailing "/**" (the whole folder) is supported, no other wildcards; list the paths one by one` };
  const parts: string[] = [];
  for (const seg of s.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') return { error: `${q} contains ".."; paths stay inside the workspace folder` };
    parts.push(seg);
  }
  if (parts.length === 0) return { error: `${q} names the whole workspace; the agent needs to write its files — name the folders or files to protect` };
  return { path: parts.join('/'), dir };
}

/** A warning for a `writable` entry that lets the agent reach the host through git, or undefined. */
export function writableWarning(path: string): string | undefined {
  const around = GIT_RUNS.filter((g) => path === g || path.startsWith(g + '/')).sort((a, b) => b.length - a.length)[0];
  const hit = around ?? (GIT_RUNS.some((g) => g.startsWith(path + '/')) ? path : undefined);
  if (!hit) return undefined;
  return `"${path}" writable: git on this machine obeys ${hit} (hooks, core.fsmonitor, filters), so the agent could run commands outside the cage the next time you use git here`;
}

/** Whether workspace path `inner` is `outer` or inside it. */
export function workspacePathCovers(outer: string, inner: string): boolean {
  return inner === outer || inner.startsWith(outer + '/');
}
