// A small, strict HTTP/1.1 message-head parser and body-framing scanners for the relay. Bodies are never
// parsed into objects: the relay only needs to know where each message ends so bytes can be forwarded as
// they arrive. Anything ambiguous (both Content-Length and Transfer-Encoding, obs-fold, bad tokens,
// differing Content-Lengths) is refused: that is what request smuggling is made of.

export const MAX_HEAD = 32 * 1024;

export interface RequestHead {
  method: string;
  target: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minor: number;
  /** Flat [name, value, name, value...] as received (names keep their case). */
  headers: string[];
  /** Body framing: -1 = chunked, otherwise the Content-Length (0 = no body). */
  bodyLength: number;
  /** Lower-cased Connection tokens (e.g. ["keep-alive"], ["upgrade"]). */
  connection: string[];
  upgrade?: string;
  host?: string;
  expectContinue: boolean;
}

export interface ResponseHead {
  status: number;
  minor: number;
  /** Body framing: -1 chunked, -2 until close, otherwise Content-Length. */
  bodyLength: number;
  close: boolean;
}

export class HeadError extends Error {
  constructor(
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

// RFC 9110 token characters, by byte value.
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TCHAR[c] = 1;
const BAD_VALUE = /[\0\r\n]/;
// eslint-disable-next-line no-control-regex
const NON_ASCII = /[^\x00-\x7f]/;
const HEX = '0123456789ABCDEF';

/**
 * A request target read as latin1 (one character per byte) with every byte >= 0x80 percent-encoded: the
 * raw UTF-8 bytes "/caf\xC3\xA9" become "/caf%C3%A9", the form the editor's normalizePath gives for "/café".
 * Matching, events and the forwarded line then all use the same bytes, once.
 */
export function encodeHighBytes(target: string): string {
  if (!NON_ASCII.test(target)) return target;
  let out = '';
  for (let i = 0; i < target.length; i++) {
    const c = target.charCodeAt(i);
    out += c < 0x80 ? target[i] : '%' + HEX[c >> 4] + HEX[c & 15];
  }
  return out;
}

/**
 * What is wrong with a method that has a lower-case letter (methods are case-sensitive, "get" is not GET), named
 * `what` in the sentence; undefined when it has none. HTTP/1.1 (below) and HTTP/2 (gate.streamHeadersBlock) share it.
 */
export function methodCaseProblem(method: string, what: string): string | undefined {
  if (!hasLowerCase(method)) return undefined;
  return `${what} "${method.slice(0, 20)}" is not upper-case; HTTP methods are case-sensitive (send ${method.slice(0, 20).toUpperCase()})`;
}

function hasLowerCase(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x61 && c <= 0x7a) return true;
  }
  return false;
}

function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) if (TCHAR[s.charCodeAt(i)] === 0) return false;
  return true;
}

/**
 * Index just past the blank line ending a head, or -1. Skips nothing; `from` lets callers resume.
 * A byte loop (heads are short): it checks every 4th byte unless that byte is CR or LF.
 */
export function findHeadEnd(buf: Buffer, from = 0): number {
  const n = buf.length;
  let i = (from > 3 ? from - 3 : 0) + 3; // candidate index of the final LF
  while (i < n) {
    const c = buf[i];
    if (c === 10) {
      if (buf[i - 1] === 13 && buf[i - 2] === 10 && buf[i - 3] === 13) return i + 1;
      i += 2; // this LF can still be the first LF of a CRLFCRLF
    } else if (c === 13) i += 1;
    else i += 4;
  }
  return -1;
}

// Where the header line just scanned by headerLine() keeps its parts: [colon, value start, value end].
const LINE = new Int32Array(3);

/**
 * Validates the header line starting at `i` (it ends with CRLF inside the head) and records where its
 * name and (OWS-trimmed) value are in LINE. Returns the index of the next line. Throws HeadError.
 */
function headerLine(text: string, i: number): number {
  const eol = text.indexOf('\r\n', i);
  if (eol === i) throw new HeadError('empty header line');
  const colon = text.indexOf(':', i);
  if (colon <= i || colon > eol) throw new HeadError('header line without a colon');
  for (let k = i; k < colon; k++) if (TCHAR[text.charCodeAt(k)] === 0) throw new HeadError('invalid header name');
  let vs = colon + 1;
  let ve = eol;
  for (let c = text.charCodeAt(vs); vs < ve && (c === 32 || c === 9); c = text.charCodeAt(++vs));
  for (let c = text.charCodeAt(ve - 1); ve > vs && (c === 32 || c === 9); c = text.charCodeAt(--ve - 1));
  for (let k = vs; k < ve; k++) {
    const c = text.charCodeAt(k);
    if (c === 0 || c === 10 || c === 13) throw new HeadError('invalid header value');
  }
  LINE[0] = colon;
  LINE[1] = vs;
  LINE[2] = ve;
  return eol + 2;
}

/** True when text[start, start + lower.length) equals `lower` ignoring ASCII case (text: token chars). */
function nameIs(text: string, start: number, len: number, lower: string): boolean {
  if (len !== lower.length) return false;
  for (let k = 0; k < len; k++) if ((text.charCodeAt(start + k) | 0x20) !== lower.charCodeAt(k)) return false;
  return true;
}

function contentLength(v: string, prev: number): number {
  if (!/^\d{1,15}$/.test(v)) throw new HeadError('invalid Content-Length');
  const n = Number(v);
  if (prev >= 0 && prev !== n) throw new HeadError('conflicting Content-Length headers');
  return n;
}

/** Parses a request head (bytes [0, end) of buf, end from findHeadEnd). Throws HeadError. */
export function parseRequestHead(buf: Buffer, end: number): RequestHead {
  const text = buf.toString('latin1', 0, end);
  const eol0 = text.indexOf('\r\n');
  const first = text.slice(0, eol0);
  const sp1 = first.indexOf(' ');
  const sp2 = first.lastIndexOf(' ');
  if (sp1 <= 0 || sp2 === sp1) throw new HeadError('malformed request line');
  const method = first.slice(0, sp1);
  let target = first.slice(sp1 + 1, sp2);
  const version = first.slice(sp2 + 1);
  if (!isToken(method)) throw new HeadError('invalid method');
  // Servers compare methods case-sensitively: matching "get" as GET while forwarding "get" would decide one
  // request and send another.
  const caseProblem = methodCaseProblem(method, 'the method');
  if (caseProblem) throw new HeadError(caseProblem);
  if (target.length === 0 || target.includes(' ') || BAD_VALUE.test(target)) throw new HeadError('invalid request target');
  target = encodeHighBytes(target);
  let minor: number;
  if (version === 'HTTP/1.1') minor = 1;
  else if (version === 'HTTP/1.0') minor = 0;
  else throw new HeadError('unsupported HTTP version', 505);
  const headers: string[] = [];
  let cl = -1;
  let chunked = false;
  let te = false;
  let connection: string[] = [];
  let upgrade: string | undefined;
  let host: string | undefined;
  let expectContinue = false;
  const last = end - 2; // the blank line
  for (let i = eol0 + 2; i < last; ) {
    const next = headerLine(text, i);
    const n = text.slice(i, LINE[0]);
    const v = text.slice(LINE[1], LINE[2]);
    headers.push(n, v);
    i = next;
    // Only a few header names matter for framing.
    switch (n.length) {
      case 4:
        if (n.toLowerCase() === 'host') {
          if (host !== undefined) throw new HeadError('more than one Host header');
          host = v;
        }
        break;
      case 6:
        if (n.toLowerCase() === 'expect' && v.toLowerCase() === '100-continue') expectContinue = true;
        break;
      case 7:
        if (n.toLowerCase() === 'upgrade') upgrade = v;
        break;
      case 10:
        if (n.toLowerCase() === 'connection') connection = connection.concat(v.toLowerCase().split(',').map((s) => s.trim()).filter(Boolean));
        break;
      case 14:
        if (n.toLowerCase() === 'content-length') cl = contentLength(v, cl);
        break;
      case 17:
        if (n.toLowerCase() === 'transfer-encoding') {
          if (te) throw new HeadError('more than one Transfer-Encoding header');
          te = true;
          if (v.toLowerCase() !== 'chunked') throw new HeadError('unsupported Transfer-Encoding', 501);
          chunked = true;
        }
        break;
    }
  }
  if (chunked && cl >= 0) throw new HeadError('both Content-Length and Transfer-Encoding');
  if (minor === 0 && chunked) throw new HeadError('chunked body in an HTTP/1.0 request');
  return { method, target, minor, headers, bodyLength: chunked ? -1 : Math.max(cl, 0), connection, upgrade, host, expectContinue };
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/**
 * Parses a response head; `method` is the request's (HEAD responses have no body). Throws HeadError.
 * Every header line is validated, but only the framing headers are turned into strings.
 */
export function parseResponseHead(buf: Buffer, end: number, method: string): ResponseHead {
  const text = buf.toString('latin1', 0, end);
  const eol0 = text.indexOf('\r\n');
  // "HTTP/1.x NNN" followed by a space or the end of the line.
  const m = text.charCodeAt(7);
  if (
    !text.startsWith('HTTP/1.') ||
    (m !== 0x30 && m !== 0x31) ||
    text.charCodeAt(8) !== 32 ||
    !isDigit(text.charCodeAt(9)) ||
    !isDigit(text.charCodeAt(10)) ||
    !isDigit(text.charCodeAt(11)) ||
    (eol0 !== 12 && text.charCodeAt(12) !== 32)
  ) {
    throw new HeadError('malformed status line', 502);
  }
  const minor = m - 0x30;
  const status = (text.charCodeAt(9) - 0x30) * 100 + (text.charCodeAt(10) - 0x30) * 10 + (text.charCodeAt(11) - 0x30);
  let cl = -1;
  let chunked = false;
  let close = minor === 0;
  const last = end - 2;
  try {
    for (let i = eol0 + 2; i < last; ) {
      const next = headerLine(text, i);
      const len = LINE[0] - i;
      if (len === 14 && nameIs(text, i, len, 'content-length')) {
        cl = contentLength(text.slice(LINE[1], LINE[2]), cl);
      } else if (len === 17 && nameIs(text, i, len, 'transfer-encoding')) {
        const codings = text.slice(LINE[1], LINE[2]).toLowerCase().split(',');
        chunked = codings[codings.length - 1].trim() === 'chunked';
        if (!chunked) cl = -2; // some other final coding: the body runs until close
      } else if (len === 10 && nameIs(text, i, len, 'connection')) {
        const v = text.slice(LINE[1], LINE[2]).toLowerCase();
        if (v.includes('close')) close = true;
        else if (minor === 0 && v.includes('keep-alive')) close = false;
      }
      i = next;
    }
  } catch (e) {
    throw new HeadError(`upstream: ${(e as Error).message}`, 502);
  }
  // Both framings at once is how a hostile server would desynchronise a shared client connection.
  if (chunked && cl >= 0) throw new HeadError('upstream: both Content-Length and Transfer-Encoding', 502);
  let bodyLength: number;
  if (method === 'HEAD' || status === 204 || status === 304 || (status >= 100 && status < 200)) bodyLength = 0;
  else if (chunked) bodyLength = -1;
  else if (cl >= 0) bodyLength = cl;
  else {
    bodyLength = -2;
    close = true;
  }
  return { status, minor, bodyLength, close };
}

/**
 * Tracks where a chunked body ends while its bytes are forwarded unchanged. feed() returns the offset in
 * `buf` just past the end of the body, or -1 if the body continues. Throws HeadError on malformed framing.
 */
export class ChunkedScanner {
  private state = 0; // 0 size line, 1 data, 2 CR after data, 3 LF after data, 4 trailer line
  private size = 0;
  private sawDigit = false;
  private inExt = false;
  private cr = false;
  private lineLen = 0;
  private left = 0;
  /** With `spans`, feed() records where chunk data is ([start, end) pairs, see takeSpans()). */
  private readonly spans: number[] | undefined;

  constructor(spans = false) {
    if (spans) this.spans = [];
  }

  /** The data ranges of the buffers fed since the last call (an empty list without `spans`). */
  takeSpans(): number[] {
    const s = this.spans;
    if (!s) return [];
    const out = s.slice();
    s.length = 0;
    return out;
  }

  feed(buf: Buffer, start = 0): number {
    let i = start;
    const n = buf.length;
    while (i < n) {
      switch (this.state) {
        case 0: {
          const c = buf[i++];
          if (this.cr) {
            if (c !== 0x0a) throw new HeadError('bad chunk size line');
            if (!this.sawDigit) throw new HeadError('bad chunk size');
            this.cr = false;
            this.lineLen = 0;
            this.sawDigit = false;
            this.inExt = false;
            if (this.size === 0) this.state = 4;
            else {
              this.left = this.size;
              this.state = 1;
            }
            this.size = 0;
            break;
          }
          if (++this.lineLen > 4096) throw new HeadError('chunk size line too long');
          if (c === 0x0d) {
            this.cr = true;
            break;
          }
          if (c === 0x0a) throw new HeadError('bare LF in chunk size line');
          if (this.inExt) break;
          if (c === 0x3b /* ; */ || c === 0x20 || c === 0x09) {
            if (!this.sawDigit) throw new HeadError('bad chunk size');
            this.inExt = true;
            break;
          }
          const d = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1;
          if (d < 0) throw new HeadError('bad chunk size');
          this.size = this.size * 16 + d;
          this.sawDigit = true;
          if (this.size > 2 ** 40) throw new HeadError('chunk too large');
          break;
        }
        case 1: {
          const take = Math.min(this.left, n - i);
          if (this.spans && take > 0) this.spans.push(i, i + take);
          i += take;
          this.left -= take;
          if (this.left === 0) this.state = 2;
          break;
        }
        case 2:
          if (buf[i++] !== 0x0d) throw new HeadError('missing CRLF after chunk');
          this.state = 3;
          break;
        case 3:
          if (buf[i++] !== 0x0a) throw new HeadError('missing CRLF after chunk');
          this.state = 0;
          break;
        case 4: {
          // Trailer section: header lines until an empty line.
          const c = buf[i++];
          if (this.cr) {
            if (c !== 0x0a) throw new HeadError('bad trailer line');
            this.cr = false;
            if (this.lineLen === 0) {
              this.state = 0;
              return i;
            }
            this.lineLen = 0;
          } else if (c === 0x0d) this.cr = true;
          else if (c === 0x0a) throw new HeadError('bare LF in trailer');
          else if (++this.lineLen > 8192) throw new HeadError('trailer too long');
          break;
        }
      }
    }
    return -1;
  }
}
