// Host-side private state: the per-cage CA (certificate + private key). The directory is mode 700 and the
// key file mode 600. The key never goes into the agent image, the agent's env, the workspace or a log.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createCA } from '../pki/ca';

export interface StoredCA {
  certPem: string;
  keyPem: string;
  fingerprint256: string;
  /** true when this call minted it. */
  created: boolean;
}

/** The CLI's default state directory: $XDG_STATE_HOME/caged-agent or ~/.local/state/caged-agent. */
export function defaultStateDir(): string {
  const base = process.env.XDG_STATE_HOME && path.isAbsolute(process.env.XDG_STATE_HOME)
    ? process.env.XDG_STATE_HOME
    : path.join(os.homedir(), '.local', 'state');
  return path.join(base, 'caged-agent');
}

function ensurePrivateDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
}

export class StateStore {
  constructor(readonly dir: string) {}

  cageDir(cageId: string): string {
    return path.join(this.dir, 'cages', cageId);
  }

  /** Loads the cage's CA, minting and storing one on first use. */
  loadOrCreateCA(cageId: string): StoredCA {
    ensurePrivateDir(this.dir);
    ensurePrivateDir(path.join(this.dir, 'cages'));
    const dir = this.cageDir(cageId);
    ensurePrivateDir(dir);
    const certFile = path.join(dir, 'ca.crt');
    const keyFile = path.join(dir, 'ca.key');
    if (fs.existsSync(certFile) && fs.existsSync(keyFile)) {
      const certPem = fs.readFileSync(certFile, 'utf8');
      const keyPem = fs.readFileSync(keyFile, 'utf8');
      try {
        const x = new crypto.X509Certificate(certPem);
        const key = crypto.createPrivateKey(keyPem);
        // Reuse only a CA that still has a month to live and matches its key.
        if (x.checkPrivateKey(key) && Date.parse(x.validTo) - Date.now() > 30 * 24 * 3600 * 1000) {
          fs.chmodSync(keyFile, 0o600);
          return { certPem, keyPem, fingerprint256: x.fingerprint256, created: false };
        }
      } catch {}
    }
    const ca = createCA({ commonName: `Caged Agent CA ${cageId}` });
    // Write the key with mode 600 from the start (never briefly world-readable), then rename into place.
    const tmpKey = `${keyFile}.${process.pid}.tmp`;
    fs.writeFileSync(tmpKey, ca.keyPem, { mode: 0o600 });
    fs.renameSync(tmpKey, keyFile);
    fs.writeFileSync(certFile, ca.certPem, { mode: 0o644 });
    return { ...ca, created: true };
  }

  readCACert(cageId: string): string | undefined {
    try {
      return fs.readFileSync(path.join(this.cageDir(cageId), 'ca.crt'), 'utf8');
    } catch {
      return undefined;
    }
  }
}
