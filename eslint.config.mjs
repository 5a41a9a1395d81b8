import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

const room = (names) => ({ regex: `(^|/)(${names.join('|')})(/|$)`, message: 'this room must not import that one (see the layering in eslint.config.mjs)' });
const packages = (names) => ({ group: names, message: 'this room must not use that package (see the layering in eslint.config.mjs)' });
const BUILTINS = { regex: `^(node:.*|${builtinModules.filter((m) => !m.startsWith('_')).map((m) => m.replace(/[/]/g, '\\/')).join('|')})$`, message: 'src/policy is pure: no I/O, no Node built-ins' };

/** The rooms of src/ and what each must never import. Exported for the lint test (test/unit/layering.test.ts). */
export function layering() {
  const rule = (files, ...patterns) => ({ files, rules: { 'no-restricted-imports': ['error', { patterns }] } });
  return [
    // Pure policy core: parses, matches and edits; nothing but its own files and the yaml parser (not even
    // src/shared, whose helpers use Node built-ins).
    rule(['src/policy/**/*.ts'], BUILTINS, packages(['vscode', 'dockerode', 'node-forge']), room(['engine', 'extension', 'proxy', 'pki', 'cli', 'shared'])),
    // Small contracts every other room uses (the policy hash): Node built-ins only, no room, no package.
    rule(['src/shared/**/*.ts'], packages(['vscode', 'dockerode', 'node-forge', 'yaml']), room(['engine', 'extension', 'proxy', 'pki', 'cli', 'policy'])),
    // Certificates: node:crypto and node-forge only.
    rule(['src/pki/**/*.ts'], packages(['vscode', 'dockerode']), room(['engine', 'extension', 'proxy', 'policy', 'cli'])),
    // The program in the proxy container: policy and pki, never the editor, the Docker client or the engine.
    rule(['src/proxy/**/*.ts'], packages(['vscode', 'dockerode']), room(['engine', 'extension', 'cli'])),
    // The cage lifecycle and the command line: no editor; the proxy is a program they ship, not a library.
    rule(['src/engine/**/*.ts', 'src/cli/**/*.ts'], packages(['vscode']), room(['extension', 'proxy'])),
    // The editor wiring drives the engine; it never embeds the proxy or the CLI. (Listed before logic/: the last matching entry wins.)
    rule(['src/extension/**/*.ts'], packages(['dockerode']), room(['proxy', 'cli'])),
    // Pure UI logic: no editor API, no Docker, no engine.
    rule(['src/extension/logic/**/*.ts'], packages(['vscode', 'dockerode']), room(['engine', 'proxy', 'cli'])),
  ];
}

export default tseslint.config(
  { ignores: ['dist/**', 'out/**', 'node_modules/**', 'dist-pkg/**', '.cache/**', 'demo/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { console: 'readonly', process: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly', URL: 'readonly', __dirname: 'readonly', require: 'readonly', module: 'writable' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-require-imports': 'off',
      'no-empty': ['error', { allowEmptyCatch: true }],
    },
  },
  // Layering (see docs/architecture.md): which room may import which. Patterns are regular expressions over
  // the import path, so "../engine" (an index import) is caught as well as "../engine/api".
  ...layering(),
);
