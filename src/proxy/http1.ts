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

// RFC 9110 token characters.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const BAD_VALUE = /[\0\r\n]/;

/** Index just past the blank line ending a head, or -1. Skips nothing; `from` lets callers resume. */
export function findHeadEnd(buf: Buffer, from = 0): number {
  const i = buf.indexOf('\r\n\r\n', from > 3 ? from - 3 : 0, 'latin1');
  return i < 0 ? -1 : i + 4;
}

function splitHead(text: string): string[] {
  const lines = text.split('\r\n');
  // The head ends with CRLF CRLF: the last two entries are empty.
  lines.length -= 2;
  return lines;
}

function parseHeaderLines(lines: string[], out: string[]): void {
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    const c = line.indexOf(':');
    if (c <= 0) throw new HeadError(line.length === 0 ? 'empty header line' : 'header line without a colon');
    const name = line.slice(0, c);
    if (!TOKEN.test(name)) throw new HeadError('invalid header name');
    const value = line.slice(c + 1).trim();
    if (BAD_VALUE.test(value)) throw new HeadError('invalid header value');
    out.push(name, value);
  }
}

function contentLength(v: string, prev: number): number {
  if (!/^\d{1,15}$/.test(v)) throw new HeadError('invalid Content-Length');
  const n = Number(v);
  if (prev >= 0 && prev !== n) throw new HeadError('conflicting Content-Length headers');
  return n;
}

/** Parses a request head (bytes [0, end) of buf, end from findHeadEnd). Throws HeadError. */
export function parseRequestHead(buf: Buffer, end: number): RequestHead {
  const lines = splitHead(buf.toString('latin1', 0, end));
  const first = lines[0];
  const sp1 = first.indexOf(' ');
  const sp2 = first.lastIndexOf(' ');
  if (sp1 <= 0 || sp2 === sp1) throw new HeadError('malformed request line');
  const method = first.slice(0, sp1);
  const target = first.slice(sp1 + 1, sp2);
  const version = first.slice(sp2 + 1);
  if (!TOKEN.test(method)) throw new HeadError('invalid method');
  if (target.length === 0 || target.includes(' ') || BAD_VALUE.test(target)) throw new HeadError('invalid request target');
  let minor: number;
  if (version === 'HTTP/1.1') minor = 1;
  else if (version === 'HTTP/1.0') minor = 0;
  else throw new HeadError('unsupported HTTP version', 505);
  const headers: string[] = [];
  parseHeaderLines(lines, headers);
  let cl = -1;
  let chunked = false;
  let te = false;
  let connection: string[] = [];
  let upgrade: string | undefined;
  let host: string | undefined;
  let expectContinue = false;
  for (let i = 0; i < headers.length; i += 2) {
    const n = headers[i];
    // Fast reject: only a few header names matter for framing.
    switch (n.length) {
      case 4:
        if (n.toLowerCase() === 'host') {
          if (host !== undefined) throw new HeadError('more than one Host header');
          host = headers[i + 1];
        }
        break;
      case 6:
        if (n.toLowerCase() === 'expect' && headers[i + 1].toLowerCase() === '100-continue') expectContinue = true;
        break;
      case 7:
        if (n.toLowerCase() === 'upgrade') upgrade = headers[i + 1];
        break;
      case 10:
        if (n.toLowerCase() === 'connection') connection = connection.concat(headers[i + 1].toLowerCase().split(',').map((s) => s.trim()).filter(Boolean));
        break;
      case 14:
        if (n.toLowerCase() === 'content-length') cl = contentLength(headers[i + 1], cl);
        break;
      case 17:
        if (n.toLowerCase() === 'transfer-encoding') {
          if (te) throw new HeadError('more than one Transfer-Encoding header');
          te = true;
          if (headers[i + 1].toLowerCase() !== 'chunked') throw new HeadError('unsupported Transfer-Encoding', 501);
          chunked = true;
        }
        break;
    }
  }
  if (chunked && cl >= 0) throw new HeadError('both Content-Length and Transfer-Encoding');
  if (minor === 0 && chunked) throw new HeadError('chunked body in an HTTP/1.0 request');
  return { method, target, minor, headers, bodyLength: chunked ? -1 : Math.max(cl, 0), connection, upgrade, host, expectContinue };
}

/** Parses a response head; `method` is the request's (HEAD responses have no body). Throws HeadError. */
export function parseResponseHead(buf: Buffer, end: number, method: string): ResponseHead {
  const lines = splitHead(buf.toString('latin1', 0, end));
  const first = lines[0];
  const m = /^HTTP\/1\.([01]) (\d{3})(?: |$)/.exec(first);
  if (!m) throw new HeadError('malformed status line', 502);
  const minor = Number(m[1]);
  const status = Number(m[2]);
  const headers: string[] = [];
  try {
    parseHeaderLines(lines, headers);
  } catch (e) {
    throw new HeadError(`upstream: ${(e as Error).message}`, 502);
  }
  let cl = -1;
  let chunked = false;
  let close = minor === 0;
  for (let i = 0; i < headers.length; i += 2) {
    const n = headers[i];
    if (n.length === 14 && n.toLowerCase() === 'content-length') {
      try {
        cl = contentLength(headers[i + 1], cl);
      } catch (e) {
        throw new HeadError(`upstream: ${(e as Error).message}`, 502);
      }
    } else if (n.length === 17 && n.toLowerCase() === 'transfer-encoding') {
      const codings = headers[i + 1].toLowerCase().split(',');
      chunked = codings[codings.length - 1].trim() === 'chunked';
      if (!chunked) cl = -2; // some other final coding: the body runs until close
    } else if (n.length === 10 && n.toLowerCase() === 'connection') {
      const v = headers[i + 1].toLowerCase();
      if (v.includes('close')) close = true;
      else if (minor === 0 && v.includes('keep-alive')) close = false;
    }
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
