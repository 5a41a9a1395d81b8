// Data-loss guard: well-known credential formats in outbound URLs, headers and request bodies.
// Only the pattern name is ever reported, never the matched text; whatever is shown (events, 403 bodies,
// messages) goes through redact(), which replaces each matched span with "[REDACTED:<pattern>]".

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
const SOURCE = PATTERNS.map((p) => `(${p.re})`).join('|');
const COMBINED = new RegExp(SOURCE);
const COMBINED_ALL = new RegExp(SOURCE, 'g');

function nameOf(m: ArrayLike<string | undefined>): string {
  for (let i = 1; i < m.length && i <= PATTERNS.length; i++) if (m[i] !== undefined) return PATTERNS[i - 1].name;
  return 'unknown';
}

/** Returns the name of the first credential pattern found in `text`, or undefined. */
export function findSecret(text: string): string | undefined {
  if (text.length < 10) return undefined;
  const m = COMBINED.exec(text);
  return m ? nameOf(m) : undefined;
}

/** Same for a body prefix (bytes as latin1: every token format is ASCII), raw and percent-decoded. */
export function findSecretInBuffer(buf: Buffer): string | undefined {
  return findSecretDecoded(buf.toString('latin1'));
}

/**
 * `text` as a server would read it after URL decoding: "+" as a space and %XX escapes decoded, repeatedly
 * (a server, or a framework behind it, may decode twice), as latin1 characters. Only for scanning.
 */
export function urlDecodeForScan(text: string): string {
  let s = text.includes('+') ? text.replace(/\+/g, ' ') : text;
  for (let round = 0; round < 3 && s.includes('%'); round++) {
    const next = s.replace(/%([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
    if (next === s) break;
    s = next;
  }
  return s;
}

/**
 * The first credential pattern in `text` as sent or as a server decodes it (percent-escapes, "+"). The
 * decoded form is only made when the text has something to decode.
 */
export function findSecretDecoded(text: string): string | undefined {
  const hit = findSecret(text);
  if (hit !== undefined || (!text.includes('%') && !text.includes('+'))) return hit;
  return findSecret(urlDecodeForScan(text));
}

/**
 * `text` with every credential-looking span replaced by "[REDACTED:<pattern>]" — also spans that only
 * appear once the text is URL-decoded (then the whole text is shown decoded, redacted). For everything
 * the proxy shows: event fields, 403 bodies, messages.
 */
export function redact(text: string): string {
  if (findSecret(text) !== undefined) return text.replace(COMBINED_ALL, (...m: Array<string | undefined>) => `[REDACTED:${nameOf(m)}]`);
  if (!text.includes('%') && !text.includes('+')) return text;
  const decoded = urlDecodeForScan(text);
  return findSecret(decoded) === undefined ? text : decoded.replace(COMBINED_ALL, (...m: Array<string | undefined>) => `[REDACTED:${nameOf(m)}]`);
}

export const DLP_PATTERN_NAMES = PATTERNS.map((p) => p.name);
