// A bounded LRU of TLS server contexts for intercepted hosts. A new host's leaf is minted with its
// signature computed off the event loop (LeafMinter.mintAsync); concurrent first connections to one host
// share one pending mint. The synchronous work for a new host is split over separate event-loop turns
// (fill the certificate template; assemble the signed certificate; build the secure context) so that no
// single step holds the loop for long.
import * as tls from 'node:tls';
import { LeafMinter } from '../pki/leaf';

/**
 * TLS 1.3 suites, AES-128-GCM first: every byte is decrypted and re-encrypted once per leg, and AES-128
 * is markedly cheaper than AES-256 at the same (ample) security margin for this purpose.
 */
export const CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  ...tls.DEFAULT_CIPHERS.split(':').filter((c) => !c.startsWith('TLS_')),
].join(':');

/**
 * Write/read high-water mark of the TLS sockets on both legs. With Node's 16 KiB default a relay that
 * writes whole 16 KiB TLS records sees write() return false on nearly every record and stops reading the
 * other leg until the next drain; a larger mark keeps both legs streaming. It is a threshold, not an
 * allocation: idle connections cost nothing more.
 */
export const STREAM_HWM = 256 * 1024;

export type MintStep = 'template' | 'assemble' | 'context' | 'cert' | 'key';

/** Instrumentation: called around each synchronous step of a new host (benchmarks). */
export interface StepTracer {
  begin(step: MintStep): void;
  end(step: MintStep): void;
}

const SERVER_OPTIONS: tls.SecureContextOptions = { minVersion: 'TLSv1.2', ciphers: CIPHERS, honorCipherOrder: true };

/** The native half of a tls.SecureContext (what tls.createSecureContext itself calls). */
interface NativeContext {
  setCert(pem: string): void;
  setKey(pem: string, passphrase: string | undefined): void;
}

function nextTurn(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

export class CertCache {
  private readonly map = new Map<string, tls.SecureContext>();
  private readonly pending = new Map<string, Promise<tls.SecureContext>>();
  minted = 0;
  /** True once a context was built in separate steps (the native setters were available). */
  split = false;
  /** Set by benchmarks to time the synchronous steps of a new host. */
  tracer: StepTracer | undefined;

  constructor(
    private readonly minter: LeafMinter,
    private readonly max = 2000,
  ) {}

  /** The server context for `host` (canonical name or IP literal without brackets), or a promise of it. */
  get(host: string): tls.SecureContext | Promise<tls.SecureContext> {
    const hit = this.map.get(host);
    if (hit) {
      // Refresh recency (cheap on a Map: delete + insert moves the key to the end).
      this.map.delete(host);
      this.map.set(host, hit);
      return hit;
    }
    let p = this.pending.get(host);
    if (!p) {
      p = this.mint(host);
      this.pending.set(host, p);
    }
    return p;
  }

  private async mint(host: string): Promise<tls.SecureContext> {
    const tr = this.tracer;
    try {
      tr?.begin('template');
      const signing = this.minter.mintAsync(host, tr);
      tr?.end('template');
      const leaf = await signing;
      // tls.createSecureContext costs ~2 ms, most of it decoding the key (~1 ms, OpenSSL 3's decoders) and
      // the certificate (~0.8 ms). Each part gets its own turn of the event loop, in the order Node itself
      // uses (context and ciphers, then the certificate, then the key).
      await nextTurn();
      tr?.begin('context');
      let ctx = tls.createSecureContext(SERVER_OPTIONS);
      tr?.end('context');
      const native = (ctx as unknown as { context?: NativeContext }).context;
      if (native && typeof native.setCert === 'function' && typeof native.setKey === 'function') {
        await nextTurn();
        tr?.begin('cert');
        native.setCert(leaf.certPem);
        tr?.end('cert');
        await nextTurn();
        tr?.begin('key');
        native.setKey(this.minter.leafKeyPem, undefined);
        tr?.end('key');
      } else {
        // A Node without the native setters: the whole context in one step.
        await nextTurn();
        tr?.begin('cert');
        ctx = tls.createSecureContext({ ...SERVER_OPTIONS, key: this.minter.leafKeyPem, cert: leaf.certPem });
        tr?.end('cert');
      }
      this.split = native !== undefined && typeof native.setCert === 'function';
      this.minted++;
      this.map.set(host, ctx);
      if (this.map.size > this.max) {
        const oldest = this.map.keys().next().value;
        if (oldest !== undefined) this.map.delete(oldest);
      }
      return ctx;
    } finally {
      this.pending.delete(host);
    }
  }

  get size(): number {
    return this.map.size;
  }
}
