// The policy hash: sha256 (hex) of the policy text exactly as written. The proxy reports it (policy-loaded
// events, /__caged/health), the engine waits for it after a push, and the editor skips pushing a text whose
// hash the proxy already has. One definition for all of them.
//
// It lives in src/shared, not src/policy, because it needs node:crypto and the policy core stays free of
// Node built-ins; src/shared imports no room, so every room except the policy core may use it
// (eslint.config.mjs).
import { createHash } from 'node:crypto';

export function policyHash(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
