// Reflected credentials: an origin that echoes request headers (TRACE-like debug endpoints, error pages,
// "show my request" APIs) would hand the agent the credential the proxy injected. For requests that carry
// an injected secret, every response byte the client gets (the head and the body's data, not its chunk
// framing) is matched against the secret and each occurrence is overwritten with "*" of the same length, so
// framing and lengths stay as they were. A match may straddle reads and HTTP chunks: the bytes from the
// start of a partial match are held back until the match fails or completes (or the response ends). Only
// exchanges with an injected secret pay for this; every other response skips it on one field check.

/** Knuth–Morris–Pratt failure table. */
function failureTable(p: Buffer): Int32Array {
  const f = new Int32Array(p.length);
  for (let i = 1, k = 0; i < p.length; i++) {
    while (k > 0 && p[i] !== p[k]) k = f[k - 1];
    if (p[i] === p[k]) k++;
    f[i] = k;
  }
  return f;
}

const MASK = 0x2a; // "*"

export class SecretRedactor {
  private readonly fail: Int32Array;
  /** Secret bytes matched so far, and where they are in held + the current buffer. */
  private k = 0;
  private positions: number[] = [];
  /** Output withheld since the first byte of the partial match (raw bytes, framing included). */
  private held: Buffer | undefined;
  /** How many occurrences were overwritten. */
  count = 0;

  constructor(private readonly secret: Buffer) {
    this.fail = failureTable(secret);
  }

  /**
   * Takes the next bytes for the client; `spans` lists [start, end) ranges of `buf` that are content (the
   * rest is framing). Returns what may be written now (possibly empty). `buf` is modified in place when a
   * match is overwritten, so it must be the caller's to change (a view of a read is: it is consumed now).
   */
  push(buf: Buffer, spans: readonly number[]): Buffer {
    const off = this.held ? this.held.length : 0;
    const all = this.held ? Buffer.concat([this.held, buf]) : buf;
    const s = this.secret;
    const pos = this.positions;
    for (let j = 0; j < spans.length; j += 2) {
      for (let i = spans[j] + off, e = spans[j + 1] + off; i < e; i++) {
        const b = all[i];
        while (this.k > 0 && s[this.k] !== b) {
          this.k = this.fail[this.k - 1];
          pos.splice(0, pos.length - this.k);
        }
        if (s[this.k] === b) {
          this.k++;
          pos.push(i);
          if (this.k === s.length) {
            for (const p of pos) all[p] = MASK;
            this.count++;
            this.k = 0;
            pos.length = 0;
          }
        }
      }
    }
    if (this.k === 0) {
      this.held = undefined;
      return all;
    }
    const cut = pos[0];
    for (let i = 0; i < pos.length; i++) pos[i] -= cut;
    this.held = Buffer.from(all.subarray(cut));
    return all.subarray(0, cut);
  }

  /** The end of the response: whatever was held back can no longer complete a match. */
  flush(): Buffer | undefined {
    const h = this.held;
    this.held = undefined;
    this.k = 0;
    this.positions.length = 0;
    return h;
  }
}
