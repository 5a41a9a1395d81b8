// Optional phase (--docker): a real cage with cached images. Filled in once the engine and CLI exist.
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface DockerResult {
  skipped?: string;
  startMs?: number;
  blockToEventMs?: number;
  notes?: string[];
}

export async function runDockerPhase(o: { root: string; dir: string; log: (s: string) => void; quick: boolean }): Promise<DockerResult> {
  const cli = path.join(o.root, 'dist/cli.js');
  if (!fs.existsSync(cli)) {
    const skipped = 'dist/cli.js does not exist yet (src/cli/main.ts missing)';
    o.log(`[bench] docker phase skipped: ${skipped}`);
    return { skipped };
  }
  const skipped = 'not implemented yet';
  o.log(`[bench] docker phase skipped: ${skipped}`);
  return { skipped };
}
