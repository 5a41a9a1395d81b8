// The layering lint (eslint.config.mjs) really refuses what it promises: each room's forbidden imports,
// index imports included ("../engine" as well as "../engine/api"), fail lint; the imports each room uses pass.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, it } from 'node:test';

const root = path.resolve(__dirname, '../../..');

async function restricted(file: string, source: string): Promise<string[]> {
  const { ESLint } = await import('eslint');
  const eslint = new ESLint({ cwd: root });
  const [r] = await eslint.lintText(source + '\n', { filePath: path.join(root, file) });
  return r.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

const FORBIDDEN: Array<[string, string]> = [
  ['src/policy/x.ts', "import * as fs from 'node:fs';"],
  ['src/policy/x.ts', "import * as fs from 'fs';"],
  ['src/policy/x.ts', "import { CageEngine } from '../engine';"],
  ['src/policy/x.ts', "import { createCA } from '../pki';"],
  ['src/policy/x.ts', "import { policyHash } from '../shared/policyHash';"],
  ['src/shared/x.ts', "import { decide } from '../policy';"],
  ['src/shared/x.ts', "import { startProxy } from '../proxy/server';"],
  ['src/shared/x.ts', "import * as vscode from 'vscode';"],
  ['src/pki/x.ts', "import { decide } from '../policy';"],
  ['src/pki/x.ts', "import Docker from 'dockerode';"],
  ['src/proxy/x.ts', "import { CageEngine } from '../engine';"],
  ['src/proxy/x.ts', "import type { CageInfo } from '../engine/api';"],
  ['src/proxy/x.ts', "import * as vscode from 'vscode';"],
  ['src/proxy/x.ts', "import Docker from 'dockerode';"],
  ['src/engine/x.ts', "import * as vscode from 'vscode';"],
  ['src/engine/x.ts', "import { Controller } from '../extension/controller';"],
  ['src/engine/x.ts', "import { startProxy } from '../proxy/server';"],
  ['src/cli/x.ts', "import { Controller } from '../extension';"],
  ['src/extension/logic/x.ts', "import * as vscode from 'vscode';"],
  ['src/extension/logic/x.ts', "import { CageEngine } from '../../engine';"],
  ['src/extension/x.ts', "import Docker from 'dockerode';"],
  ['src/extension/commands/x.ts', "import { startProxy } from '../../proxy';"],
];

const ALLOWED: Array<[string, string]> = [
  ['src/policy/x.ts', "import { parseDocument } from 'yaml';"],
  ['src/pki/x.ts', "import * as crypto from 'node:crypto';"],
  ['src/proxy/x.ts', "import { decide } from '../policy';"],
  ['src/proxy/x.ts', "import { policyHash } from '../shared/policyHash';"],
  ['src/shared/x.ts', "import { createHash } from 'node:crypto';"],
  ['src/engine/x.ts', "import { policyHash } from '../shared/policyHash';"],
  ['src/extension/x.ts', "import { policyHash } from '../shared/policyHash';"],
  ['src/proxy/x.ts', "import { LeafMinter } from '../pki/leaf';"],
  ['src/engine/x.ts', "import Docker from 'dockerode';"],
  ['src/engine/x.ts', "import { createCA } from '../pki/ca';"],
  ['src/extension/x.ts', "import { CageEngine } from '../engine';"],
  ['src/extension/logic/x.ts', "import { decide } from '../../policy';"],
];

describe('layering lint', () => {
  for (const [file, source] of FORBIDDEN) {
    it(`refuses in ${file}: ${source}`, async () => {
      assert.ok((await restricted(file, source)).length > 0, `${source} in ${file} passed lint`);
    });
  }
  it('accepts the imports each room needs', async () => {
    for (const [file, source] of ALLOWED) assert.deepEqual(await restricted(file, source), [], `${source} in ${file}`);
  });
});
