// Transpiles src/, test/ and bench/ TypeScript to out/ (esbuild, one file per source, no bundling, CommonJS,
// inline source maps). Shared by scripts/run-node-tests.mjs and scripts/run-extension-tests.mjs.
import * as esbuild from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Every file under dir (recursively) for which pred(path) holds; [] when dir does not exist. */
export function walk(dir, pred, out = []) {
  if (!fs.existsSync(dir)) return out;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, pred, out);
    else if (pred(p)) out.push(p);
  }
  return out;
}

/**
 * Transpiles every .ts under src/, test/ and bench/ to out/<same path>.js, and removes outputs whose source is
 * gone (a moved or deleted test must not keep running from a stale copy). Returns the output directory.
 */
export async function transpile() {
  const sources = ['src', 'test', 'bench'].flatMap((d) => walk(path.join(root, d), (p) => p.endsWith('.ts') && !p.endsWith('.d.ts')));
  const outDir = path.join(root, 'out');
  const wanted = new Set(sources.map((s) => path.join(outDir, path.relative(root, s)).replace(/\.ts$/, '.js')));
  for (const f of walk(outDir, (p) => p.endsWith('.js'))) if (!wanted.has(f)) fs.rmSync(f, { force: true });
  await esbuild.build({
    entryPoints: sources,
    outdir: outDir,
    outbase: root,
    bundle: false,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    sourcemap: 'inline',
    logLevel: 'warning',
  });
  return outDir;
}
