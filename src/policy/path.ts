// Request-path normalisation and path globs. Matching always happens on the normalised path, and the
// proxy forwards that same normalised path upstream, so "what we checked" is "what the server gets".

const UNRESERVED = /[A-Za-z0-9\-._~]/;
// Characters that may appear literally in a normalised path (RFC 3986 pchar minus "%", plus "/").
const PCHAR = /[A-Za-z0-9\-._~!$&'()*+,;=:@/]/;
const HEX = '0123456789ABCDEF';
// Non-empty segments of plain pchars (no "%", no ";"), none of them "." or "..", optional trailing "/".
const ALREADY_NORMAL = /^(?:\/(?!\.{1,2}(?:\/|$))[A-Za-z0-9\-._~!$&'()*+,=:@]+)*\/?$/;

function pctEncodeByte(b: number): string {
  return '%' + HEX[b >> 4] + HEX[b & 15];
}

function utf8Bytes(s: string): number[] {
  const out: number[] = [];
  for (const ch of s) {
    let cp = ch.codePointAt(0)!;
    if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd; // lone surrogate
    if (cp < 0x80) out.push(cp);
    else if (cp < 0x800) out.push(0xc0 | (cp >> 6), 0x80 | (cp & 63));
    else if (cp < 0x10000) out.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
    else out.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 63), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
  }
  return out;
}

/** Splits a raw origin-form target into path and query (without "?"); the fragment is dropped. */
export function splitTarget(raw: string): { path: string; query?: string } {
  let s = raw;
  const hash = s.indexOf('#');
  if (hash >= 0) s = s.slice(0, hash);
  const q = s.indexOf('?');
  if (q < 0) return { path: s };
  return { path: s.slice(0, q), query: s.slice(q + 1) };
}

/**
 * Normalises a request path for matching and forwarding:
 * - the query string and fragment are stripped;
 * - percent-encoded unreserved characters are decoded ("%2e" -> "."), other escapes keep upper-case hex
 *   ("%2f" -> "%2F": an encoded slash never becomes a segment separator);
 * - characters not allowed in a path are percent-encoded (UTF-8), control characters are refused;
 * - "." and ".." segments are resolved (never above the root), "//" collapses to "/";
 * - "..;" style segments (which some servers treat as "..") are refused.
 * Returns undefined when the path cannot be normalised safely (the caller blocks with reason bad-path).
 */
export function normalizePath(raw: string): string | undefined {
  if (typeof raw !== 'string') return undefined;
  const { path } = splitTarget(raw);
  if (!path.startsWith('/')) return undefined;
  if (path.length > 16384) return undefined;
  if (ALREADY_NORMAL.test(path)) return path; // the common case: nothing to decode, encode or resolve
  const s = escapePath(path);
  return s === undefined ? undefined : resolveSegments(s);
}

/** Step 1 of normalizePath: percent-decoding of unreserved characters and escaping of everything else. */
function escapePath(path: string): string | undefined {
  let s = '';
  for (let i = 0; i < path.length; i++) {
    const c = path[i];
    if (c === '%') {
      const h = path.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(h)) return undefined;
      const b = parseInt(h, 16);
      if (b < 0x20 || b === 0x7f) return undefined; // encoded control characters (incl. NUL, CR, LF)
      const ch = String.fromCharCode(b);
      s += UNRESERVED.test(ch) ? ch : '%' + h.toUpperCase();
      i += 2;
      continue;
    }
    const code = c.charCodeAt(0);
    if (code < 0x20 || code === 0x7f) return undefined;
    if (PCHAR.test(c)) {
      s += c;
      continue;
    }
    // Not allowed literally (space, quotes, backslash, non-ASCII...): encode as UTF-8.
    const cp = path.codePointAt(i)!;
    const chr = String.fromCodePoint(cp);
    for (const b of utf8Bytes(chr)) s += pctEncodeByte(b);
    i += chr.length - 1;
  }
  return s;
}

/** Step 2 of normalizePath: "." and ".." resolved (never above the root), empty segments dropped. */
function resolveSegments(s: string): string | undefined {
  const segs = s.split('/').slice(1);
  const out: string[] = [];
  let trailingSlash = false;
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i];
    const isLast = i === segs.length - 1;
    const semi = seg.indexOf(';');
    const bare = semi >= 0 ? seg.slice(0, semi) : seg;
    if (semi >= 0 && (bare === '.' || bare === '..' || bare === '')) return undefined;
    if (seg === '' || seg === '.') {
      if (isLast) trailingSlash = true;
      continue;
    }
    if (seg === '..') {
      out.pop();
      if (isLast) trailingSlash = true;
      continue;
    }
    out.push(seg);
    trailingSlash = false;
  }
  if (out.length === 0) return '/';
  return '/' + out.join('/') + (trailingSlash ? '/' : '');
}

// Escapes that some servers decode into a separator or a dot after routing has split the path: an encoded
// "/" or "\\" (also double-encoded, "%252F"), a double-encoded ".", and the overlong UTF-8 forms old decoders
// accepted ("%C0%AF" is "/", "%C0%AE" is ".", "%C1%9C" is "\\").
const SEPARATOR_ESCAPE = /%(?:25)+2E|%(?:25)*(?:2F|5C)|%C0%AF|%E0%80%AF|%C1%9C|%C0%AE|%E0%80%AE/gi;

/**
 * The other reading of a request path: how a server sees it that decodes encoded separators (and
 * double-encoded dots) before resolving the path, and drops ";params" from segments (Tomcat, Jetty,
 * Spring). `raw` is the path as received (dot-segments not yet resolved: an encoded "." must not be
 * consumed by a literal ".." first), `norm` its normalizePath(). Returns `norm` when there is nothing to
 * read differently; undefined when that reading has a "." or ".." segment (a traversal the first reading
 * may not see: refused outright); else the other reading, normalised. Matching a request under both
 * readings is how the policy never allows a path whose meaning differs from the one it matched.
 */
export function separatorReading(raw: string, norm: string): string | undefined {
  const path = splitTarget(raw).path;
  if (!path.includes('%') && !path.includes(';') && !path.includes('\\')) return norm;
  const escaped = escapePath(path);
  if (escaped === undefined) return undefined;
  const decoded = escaped.replace(SEPARATOR_ESCAPE, (m) => {
    const u = m.toUpperCase();
    return u.endsWith('2E') || u.endsWith('AE') ? '.' : '/';
  });
  const segs = decoded.split('/');
  let dots = false;
  for (let i = 0; i < segs.length; i++) {
    const semi = segs[i].indexOf(';');
    if (semi >= 0) segs[i] = segs[i].slice(0, semi);
    if (segs[i] === '.' || segs[i] === '..') dots = true;
  }
  const joined = segs.join('/');
  if (joined === escaped) return norm;
  if (dots) return undefined;
  return resolveSegments(joined);
}

export interface CompiledGlob {
  /** The normalised glob text. */
  glob: string;
  re: RegExp;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Normalises and compiles a path glob: "*" matches within one segment, a "**" segment matches any
 * number of segments (including none: "/org/**" matches "/org", "/org/" and "/org/a/b", not "/orgx").
 * Returns an error message in plain words when the glob is not usable.
 */
export function compileGlob(glob: string): CompiledGlob | { error: string } {
  if (typeof glob !== 'string' || glob.length === 0) return { error: 'a path must not be empty' };
  if (!glob.startsWith('/')) return { error: `"${glob}" must start with "/"` };
  if (glob.includes('?')) return { error: `"${glob}" contains "?": paths are matched without the query string` };
  if (glob.includes('#')) return { error: `"${glob}" contains "#": fragments are never sent to servers` };
  const norm = normalizePath(glob);
  if (norm === undefined) return { error: `"${glob}" is not a valid path (bad percent-escape or control character)` };
  const segs = norm.split('/').slice(1);
  let re = '^';
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i];
    if (seg === '**') {
      re += '(?:/.*)?';
      continue;
    }
    if (seg.includes('**')) return { error: `"${glob}": "**" must be a whole path segment, like "/v1/**"` };
    re += '/' + seg.split('*').map(escapeRe).join('[^/]*');
  }
  if (re === '^') re += '/';
  re += '$';
  return { glob: norm, re: new RegExp(re, 's') };
}
