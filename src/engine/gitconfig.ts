// A reader of git's config file syntax (git-config(1), "CONFIGURATION FILE"), pure: text in, entries out.
// The engine reads a repository's own config to find what else the host's git obeys (core.hooksPath,
// include.path, core.worktree of submodules, extensions.worktreeConfig). Own code on purpose: the npm readers
// (ini-based) disagree with git on inline comments, quoting, multi-valued keys and key case, and a reader that
// sees a different hooksPath than git does would protect the wrong folder. The unit tests compare this reader
// with `git config --list` on the same files.

export interface GitConfigEntry {
  /** "section.name" or "section.subsection.name": section and name lower-cased, subsection as written. */
  key: string;
  /** null for a bare key ("[core]\n\tbare"), which git reads as true. */
  value: string | null;
  /** 1-based line of the key. */
  line: number;
}

export type GitConfigResult = { entries: GitConfigEntry[] } | { error: string; line: number };

const NAME = /^[A-Za-z][A-Za-z0-9-]*$/;
const SECTION = /^[A-Za-z0-9.-]+$/;

export function parseGitConfig(text: string): GitConfigResult {
  const entries: GitConfigEntry[] = [];
  let section: string | undefined;
  let i = 0;
  let line = 1;
  const n = text.length;
  if (text.charCodeAt(0) === 0xfeff) i = 1;
  const fail = (error: string): GitConfigResult => ({ error, line });
  while (i < n) {
    const c = text[i];
    if (c === '\n') { line++; i++; continue; }
    if (c === ' ' || c === '\t' || c === '\r') { i++; continue; }
    if (c === '#' || c === ';') {
      while (i < n && text[i] !== '\n') i++;
      continue;
    }
    if (c === '[') {
      i++;
      let name = '';
      while (i < n && SECTION.test(text[i])) name += text[i++];
      if (!name) return fail('bad section header');
      if (text[i] === ']') {
        i++;
        // [section.subsection]: the deprecated form; both parts compare case-insensitively.
        section = name.toLowerCase();
        continue;
      }
      if (text[i] !== ' ' && text[i] !== '\t') return fail('bad section header');
      while (text[i] === ' ' || text[i] === '\t') i++;
      if (text[i] !== '"') return fail('bad section header');
      i++;
      let sub = '';
      for (;;) {
        if (i >= n || text[i] === '\n') return fail('unterminated subsection name');
        const ch = text[i++];
        if (ch === '"') break;
        if (ch === '\\') {
          if (i >= n || text[i] === '\n') return fail('bad escape in subsection name');
          sub += text[i++];
        } else sub += ch;
      }
      if (text[i] !== ']') return fail('bad section header');
      i++;
      if (name.includes('.')) return fail('bad section header');
      section = `${name.toLowerCase()}.${sub}`;
      continue;
    }
    if (!/[A-Za-z]/.test(c)) return fail(`unexpected character ${JSON.stringify(c)}`);
    if (section === undefined) return fail('a key outside any section');
    let key = '';
    while (i < n && /[A-Za-z0-9-]/.test(text[i])) key += text[i++];
    if (!NAME.test(key)) return fail('bad key name');
    const keyLine = line;
    while (text[i] === ' ' || text[i] === '\t') i++;
    if (i >= n || text[i] === '\n' || text[i] === '\r' || text[i] === '#' || text[i] === ';') {
      entries.push({ key: `${section}.${key.toLowerCase()}`, value: null, line: keyLine });
      continue;
    }
    if (text[i] !== '=') return fail(`expected "=" after ${key}`);
    i++;
    const v = readValue(text, i);
    if ('error' in v) return { error: v.error, line: line + v.lines };
    entries.push({ key: `${section}.${key.toLowerCase()}`, value: v.value, line: keyLine });
    line += v.lines;
    i = v.end;
  }
  return { entries };
}

/** A value from `start` to the end of its (possibly continued) line. */
function readValue(text: string, start: number): { value: string; end: number; lines: number } | { error: string; lines: number } {
  let i = start;
  let out = '';
  let quoted = false;
  // Whitespace seen outside quotes that is kept only if more value follows.
  let pendingSpace = '';
  let lines = 0;
  let started = false;
  while (i < text.length) {
    const c = text[i];
    if (c === '\n') break;
    if (c === '\r' && text[i + 1] === '\n') { i++; continue; }
    if (!quoted && (c === ' ' || c === '\t')) {
      if (started) pendingSpace += c;
      i++;
      continue;
    }
    if (!quoted && (c === '#' || c === ';')) {
      while (i < text.length && text[i] !== '\n') i++;
      break;
    }
    if (pendingSpace) {
      out += pendingSpace;
      pendingSpace = '';
    }
    if (c === '\\') {
      const e = text[i + 1];
      if (e === '\n') { i += 2; lines++; continue; }
      if (e === '\r' && text[i + 2] === '\n') { i += 3; lines++; continue; }
      const map: Record<string, string> = { '\\': '\\', '"': '"', n: '\n', t: '\t', b: '\b' };
      if (e === undefined || !(e in map)) return { error: 'bad escape in a value', lines };
      out += map[e];
      started = true;
      i += 2;
      continue;
    }
    if (c === '"') {
      quoted = !quoted;
      started = true;
      i++;
      continue;
    }
    out += c;
    started = true;
    i++;
  }
  if (quoted) return { error: 'unterminated quote in a value', lines };
  return { value: out, end: i, lines };
}

/** The last value of a key (git's "last one wins"); keys compare as git does (section and name case-insensitive). */
export function gitConfigGet(entries: GitConfigEntry[], key: string): string | null | undefined {
  const k = normalKey(key);
  let v: string | null | undefined;
  for (const e of entries) if (e.key === k) v = e.value;
  return v;
}

/** Every value of a key, in file order. */
export function gitConfigGetAll(entries: GitConfigEntry[], key: string): Array<string | null> {
  const k = normalKey(key);
  return entries.filter((e) => e.key === k).map((e) => e.value);
}

/** git's boolean reading: a bare key is true; true/yes/on/1 true; false/no/off/0/"" false; else undefined. */
export function gitConfigBool(v: string | null | undefined): boolean | undefined {
  if (v === null) return true;
  if (v === undefined) return undefined;
  const s = v.toLowerCase();
  if (['true', 'yes', 'on', '1'].includes(s)) return true;
  if (['false', 'no', 'off', '0', ''].includes(s)) return false;
  return /^-?\d+$/.test(s) ? Number(s) !== 0 : undefined;
}

function normalKey(key: string): string {
  const first = key.indexOf('.');
  const last = key.lastIndexOf('.');
  if (first === last) return key.toLowerCase();
  return `${key.slice(0, first).toLowerCase()}.${key.slice(first + 1, last)}.${key.slice(last + 1).toLowerCase()}`;
}
