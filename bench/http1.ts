// A minimal HTTP/1.1 response parser for the load generator: finds the head, reads the status code and
// Content-Length / Transfer-Encoding: chunked, then counts body bytes without keeping them. One response
// at a time (no pipelining). It is deliberately small: it only has to understand our upstream and the
// proxies in front of it, and cost as little CPU per response as possible.

export interface ResponseDone {
  status: number;
  bodyBytes: number;
  /** Only for small bodies (<= 4 KiB) when asked to keep them (error bodies, upload answers). */
  body?: string;
  /** Lower-cased header block, kept only when asked (diagnostics). */
  head?: string;
}

const CRLFCRLF = Buffer.from('\r\n\r\n');
const MAX_HEAD = 64 * 1024;

type State = 0 /* head */ | 1 /* length body */ | 2 /* chunk size line */ | 3 /* chunk data */ | 4 /* chunk data CRLF */ | 5 /* trailers */;

export class ResponseParser {
  private state: State = 0;
  private pending: Buffer | null = null;
  private status = 0;
  private remaining = 0;
  private bodyBytes = 0;
  private bodyParts: Buffer[] | null = null;
  private head: string | undefined;

  constructor(
    private readonly onResponse: (r: ResponseDone) => void,
    private readonly keep: { body?: boolean; head?: boolean } = {},
  ) {}

  /** Feeds bytes; throws on malformed input. */
  feed(chunk: Buffer): void {
    let buf = chunk;
    if (this.pending) {
      buf = Buffer.concat([this.pending, chunk]);
      this.pending = null;
    }
    let off = 0;
    while (off < buf.length) {
      switch (this.state) {
        case 0: {
          const end = buf.indexOf(CRLFCRLF, off);
          if (end < 0) {
            if (buf.length - off > MAX_HEAD) throw new Error('response head too large');
            this.pending = buf.subarray(off);
            return;
          }
          this.parseHead(buf.toString('latin1', off, end));
          off = end + 4;
          break;
        }
        case 1: {
          const n = Math.min(this.remaining, buf.length - off);
          this.body(buf, off, n);
          off += n;
          this.remaining -= n;
          if (this.remaining === 0) this.finish();
          break;
        }
        case 2: {
          const nl = buf.indexOf(10, off);
          if (nl < 0) {
            this.pending = buf.subarray(off);
            return;
          }
          const line = buf.toString('latin1', off, nl).trim();
          off = nl + 1;
          const size = parseInt(line.split(';')[0], 16);
          if (!Number.isFinite(size) || size < 0) throw new Error(`bad chunk size line ${JSON.stringify(line)}`);
          if (size === 0) this.state = 5;
          else {
            this.remaining = size;
            this.state = 3;
          }
          break;
        }
        case 3: {
          const n = Math.min(this.remaining, buf.length - off);
          this.body(buf, off, n);
          off += n;
          this.remaining -= n;
          if (this.remaining === 0) this.state = 4;
          break;
        }
        case 4: {
          const nl = buf.indexOf(10, off);
          if (nl < 0) {
            this.pending = buf.subarray(off);
            return;
          }
          off = nl + 1;
          this.state = 2;
          break;
        }
        case 5: {
          // Trailers end with an empty line.
          const nl = buf.indexOf(10, off);
          if (nl < 0) {
            this.pending = buf.subarray(off);
            return;
          }
          const empty = nl === off || (nl === off + 1 && buf[off] === 13);
          off = nl + 1;
          if (empty) this.finish();
          break;
        }
      }
    }
  }

  private parseHead(head: string): void {
    // "HTTP/1.1 200 OK"
    if (head.charCodeAt(0) !== 72 /* H */ || head.charCodeAt(8) !== 32) throw new Error(`not an HTTP response: ${JSON.stringify(head.slice(0, 40))}`);
    this.status = (head.charCodeAt(9) - 48) * 100 + (head.charCodeAt(10) - 48) * 10 + (head.charCodeAt(11) - 48);
    this.bodyBytes = 0;
    this.bodyParts = this.keep.body ? [] : null;
    const lower = head.toLowerCase();
    this.head = this.keep.head ? lower : undefined;
    if (this.status === 204 || this.status === 304 || (this.status >= 100 && this.status < 200)) {
      if (this.status >= 100 && this.status < 200) return; // interim response: wait for the final one
      this.finish();
      return;
    }
    const cl = lower.indexOf('\r\ncontent-length:');
    if (cl >= 0) {
      const start = cl + 17;
      const eol = lower.indexOf('\r\n', start);
      this.remaining = parseInt(lower.slice(start, eol < 0 ? undefined : eol).trim(), 10);
      if (!Number.isFinite(this.remaining)) throw new Error('bad content-length');
      if (this.remaining === 0) this.finish();
      else this.state = 1;
      return;
    }
    if (/\r\ntransfer-encoding:[^\r]*chunked/.test(lower)) {
      this.state = 2;
      return;
    }
    throw new Error('response without content-length or chunked encoding (read-to-close is not supported)');
  }

  private body(buf: Buffer, off: number, n: number): void {
    this.bodyBytes += n;
    if (this.bodyParts && this.bodyBytes <= 4096) this.bodyParts.push(Buffer.from(buf.subarray(off, off + n)));
  }

  private finish(): void {
    this.state = 0;
    const r: ResponseDone = { status: this.status, bodyBytes: this.bodyBytes };
    if (this.bodyParts) r.body = Buffer.concat(this.bodyParts).toString('utf8');
    if (this.head !== undefined) r.head = this.head;
    this.bodyParts = null;
    this.onResponse(r);
  }
}
