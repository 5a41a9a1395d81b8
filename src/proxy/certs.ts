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

/** Instrumentation: called around each synchronous step of a new host (benchmarks). */
export interface StepTracer {
  begin(step: 'template' | 'assemble' | 'context'): void;
  end(step: 'template' | 'assemble' | 'context'): void;
}

export class CertCache {
  private readonly map = new Map<string, tls.SecureContext>();
  private readonly pending = new Map<string, Promise<tls.SecureContext>>();
  minted = 0;
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
      // tls.createSecureContext costs ~1 ms: give it its own turn of the event loop.
      await new Promise<void>((r) => setImmediate(r));
      tr?.begin('context');
      const ctx = tls.createSecureContext({ key: this.minter.leafKeyPem, cert: leaf.certPem, minVersion: 'TLSv1.2', ciphers: CIPHERS, honorCipherOrder: true });
      tr?.end('context');
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
