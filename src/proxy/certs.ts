// A bounded LRU of TLS server contexts for intercepted hosts. Minting is synchronous and short (~1 ms to
// sign + ~1 ms to build the context), so concurrent first connections to one host share one mint.
import * as tls from 'node:tls';
import { LeafMinter } from '../pki/leaf';

export class CertCache {
  private readonly map = new Map<string, tls.SecureContext>();
  minted = 0;

  constructor(
    private readonly minter: LeafMinter,
    private readonly max = 2000,
  ) {}

  /** The server context for `host` (canonical name or IP literal without brackets). */
  get(host: string): tls.SecureContext {
    const hit = this.map.get(host);
    if (hit) {
      // Refresh recency (cheap on a Map: delete + insert moves the key to the end).
      this.map.delete(host);
      this.map.set(host, hit);
      return hit;
    }
    const leaf = this.minter.mint(host);
    const ctx = tls.createSecureContext({ key: this.minter.leafKeyPem, cert: leaf.certPem, minVersion: 'TLSv1.2' });
    this.minted++;
    this.map.set(host, ctx);
    if (this.map.size > this.max) {
      const oldest = this.map.keys().next().value;
      if (oldest !== undefined) this.map.delete(oldest);
    }
    return ctx;
  }

  get size(): number {
    return this.map.size;
  }
}
