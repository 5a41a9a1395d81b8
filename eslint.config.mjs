import js from '@eslint/js';
import tseslint from 'typescript-eslint';

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
  // Layering: the pure policy core and the proxy must never import the editor or the Docker client.
  {
    files: ['src/policy/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: ['vscode', 'dockerode', 'node:*', 'fs', 'net', 'http', 'https', 'tls', 'child_process', '../engine/*', '../extension/*', '../proxy/*'] }] },
  },
  {
    files: ['src/proxy/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: ['vscode', 'dockerode', '../engine/*', '../extension/*'] }] },
  },
  {
    files: ['src/extension/logic/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: ['vscode', 'dockerode'] }] },
  },
  {
    files: ['src/engine/**/*.ts', 'src/cli/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: ['vscode', '../extension/*'] }] },
  },
);
