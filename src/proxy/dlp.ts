// Data-loss guard: well-known credential formats in outbound URLs, headers and request bodies.
// Only the pattern name is ever reported, never the matched text.

interface Pattern {
  name: string;
  re: string;
}

// Order matters where formats overlap (Anthropic keys start with "sk-").
const PATTERNS: Pattern[] = [
  { name: 'private-key-block', re: '-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----' },
  { name: 'aws-access-key-id', re: '\\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\\b' },
  { name: 'github-token', re: '\\bgh[pousr]_[A-Za-z0-9]{36,255}\\b' },
  { name: 'github-fine-grained-pat', re: '\\bgithub_pat_[A-Za-z0-9_]{50,255}' },
  { name: 'gitlab-token', re: '\\bgl(?:pat|dt|rt|ptt|oas)-[A-Za-z0-9_-]{20,}' },
  { name: 'slack-token', re: '\\bxox[bpars]-[A-Za-z0-9-]{10,}' },
  { name: 'anthropic-api-key', re: '\\bsk-ant-[A-Za-z0-9_-]{20,}' },
  { name: 'openai-api-key', re: '\\bsk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,}|[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}|[A-Za-z0-9]{48}\\b)' },
  { name: 'google-api-key', re: '\\bAIza[0-9A-Za-z_-]{35}' },
  { name: 'stripe-secret-key', re: '\\b[rs]k_live_[0-9A-Za-z]{20,}' },
];

// One combined regex with a capture group per pattern: a single pass over the text.
const COMBINED = new RegExp(PATTERNS.map((p) => `(${p.re})`).join('|'));

/** Returns the name of the first credential pattern found in `text`, or undefined. */
export function findSecret(text: string): string | undefined {
  if (text.length < 10) return undefined;
  const m = COMBINED.exec(text);
  if (!m) return undefined;
  for (let i = 1; i < m.length; i++) if (m[i] !== undefined) return PATTERNS[i - 1].name;
  return 'unknown';
}

/** Same for a body prefix (bytes as latin1: every token format is ASCII). */
export function findSecretInBuffer(buf: Buffer): string | undefined {
  return findSecret(buf.toString('latin1'));
}

export const DLP_PATTERN_NAMES = PATTERNS.map((p) => p.name);
