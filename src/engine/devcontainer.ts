// Reads the `image` of a workspace's devcontainer.json (JSON with comments and trailing commas).
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Removes // and /* *\/ comments outside strings and trailing commas before } or ]. */
export function stripJsonc(text: string): string {
  let out = '';
  let i = 0;
  let inStr = false;
  while (i < text.length) {
    const c = text[i];
    if (inStr) {
      out += c;
      if (c === '\\') { out += text[i + 1] ?? ''; i += 2; continue; }
      if (c === '"') inStr = false;
      i++;
      continue;
    }
    if (c === '"') { inStr = true; out += c; i++; continue; }
    if (c === '/' && text[i + 1] === '/') { while (i < text.length && text[i] !== '\n') i++; continue; }
    if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      i = end < 0 ? text.length : end + 2;
      continue;
    }
    out += c;
    i++;
  }
  // Trailing commas (outside strings: strings were copied verbatim, so re-scan carefully).
  let res = '';
  inStr = false;
  for (let j = 0; j < out.length; j++) {
    const c = out[j];
    if (inStr) {
      res += c;
      if (c === '\\') { res += out[j + 1] ?? ''; j++; continue; }
      if (c === '"') inStr = false;
      continue;
    }
    if (c === '"') { inStr = true; res += c; continue; }
    if (c === ',') {
      let k = j + 1;
      while (k < out.length && /\s/.test(out[k])) k++;
      if (out[k] === '}' || out[k] === ']') continue;
    }
    res += c;
  }
  return res;
}

export interface DevcontainerImage {
  image?: string;
  file?: string;
  /** Why the file was not usable (parse error, build-only config). */
  note?: string;
}

/** Looks for .devcontainer/devcontainer.json, then .devcontainer.json, and returns its `image`. */
export function devcontainerImage(workspace: string): DevcontainerImage {
  const candidates = [path.join(workspace, '.devcontainer', 'devcontainer.json'), path.join(workspace, '.devcontainer.json')];
  for (const file of candidates) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    try {
      const obj = JSON.parse(stripJsonc(text.replace(/^\uFEFF/, '')));
      if (obj && typeof obj.image === 'string' && obj.image.trim()) return { image: obj.image.trim(), file };
      return { file, note: `${file} has no "image" (build-based devcontainers are not supported); using the default image` };
    } catch (e) {
      return { file, note: `${file} could not be parsed (${(e as Error).message}); using the default image` };
    }
  }
  return {};
}
