// The packaged extension the browser tests install: dist-pkg/caged-agent.vsix (or $CAGED_VSIX), rebuilt with
// `npm run package` unless a package newer than the sources, the manifest and the bundles exists.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { repoRoot } from './workbench';

export const VSIX = process.env.CAGED_VSIX ?? path.join(repoRoot, 'dist-pkg', 'caged-agent.vsix');

function newestMtime(p: string): number {
  if (!fs.existsSync(p)) return 0;
  const st = fs.statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  let m = 0;
  for (const e of fs.readdirSync(p)) m = Math.max(m, newestMtime(path.join(p, e)));
  return m;
}

/** The path of an up-to-date package, building it first when needed; throws with npm's output when that fails. */
export function ensureVsix(): string {
  if (process.env.CAGED_VSIX) {
    if (!fs.existsSync(VSIX)) throw new Error(`CAGED_VSIX=${VSIX} does not exist`);
    return VSIX;
  }
  const inputs = Math.max(
    newestMtime(path.join(repoRoot, 'src')),
    newestMtime(path.join(repoRoot, 'package.json')),
    ...['extension.js', 'proxy.js', 'cli.js'].map((f) => newestMtime(path.join(repoRoot, 'dist', f))),
  );
  if (newestMtime(VSIX) > inputs) return VSIX;
  const t0 = Date.now();
  const r = spawnSync('npm', ['run', 'package'], { cwd: repoRoot, encoding: 'utf8', timeout: 15 * 60_000 });
  if (r.status !== 0) throw new Error(`npm run package failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
  console.log(`# npm run package: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return VSIX;
}
