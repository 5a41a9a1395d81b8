// The grammar of a rule's `host:` value: a name, a "*." wildcard over a parent domain, or an IP literal, with
// an optional port. Pure; errors are plain words for the editor's diagnostics.
import { canonicalHost, isPublicSuffix, splitHostPort } from './host';
import type { HostKind, RuleList } from './types';

export interface HostPattern {
  kind: HostKind;
  /** Canonical host; for 'wildcard' the parent domain. */
  host: string;
  port?: number;
  /** The host as written, without the port ("*.Example.com", "[::1]"). */
  text: string;
}

/**
 * Parses the value of a `host:` field: "api.example.com", "*.example.com", "host:8443", "10.0.0.5",
 * "[::1]:8443", "::1". Returns plain-words errors (without the "allow[2].host:" prefix).
 */
export function parseHostPattern(text: string, opts: { list?: RuleList } = {}): HostPattern | { error: string } {
  const raw = text.trim();
  const q = JSON.stringify(text);
  if (raw === '') return { error: 'host is empty; write a host name like "api.example.com"' };
  if (raw.includes('://')) return { error: `${q} contains a URL scheme; write only the host name, like "${raw.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '').split('/')[0]}"` };
  if (raw.includes('/')) return { error: `${q} contains a path; write only the host here and put paths under "paths:"` };
  if (/\s/.test(raw)) return { error: `${q} contains spaces; a host name has none` };
  if (raw.includes('@')) return { error: `${q} contains "@"; write only the host name (credentials go under "auth:")` };
  // Without brackets, two or more colons are a bare IPv6 literal ("::1"), which a policy may write.
  const split = splitHostPort(raw);
  if ('error' in split) return { error: split.error === 'no-closing-bracket' ? `${q} has "[" without a closing "]"` : `${q}: unexpected text after "]"` };
  const { host: hostPart, port: portText } = split;
  let port: number | undefined;
  if (portText !== undefined) {
    if (!/^[0-9]+$/.test(portText)) return { error: `${q}: port "${portText}" is not a number` };
    port = Number(portText);
    if (port < 1 || port > 65535) return { error: `${q}: port ${portText} is out of range (1-65535)` };
  }
  if (hostPart === '*' || hostPart === '*.') return { error: `${q} would allow every host; list the hosts the agent needs instead` };
  if (hostPart.startsWith('*.')) {
    const parentText = hostPart.slice(2);
    if (parentText.includes('*')) return { error: `${q}: a wildcard is only allowed as a single leading "*." label, like "*.example.com"` };
    const c = canonicalHost(parentText);
    if (!c) return { error: `${q}: "${parentText}" is not a valid host name` };
    if (c.kind !== 'name') return { error: `${q}: a wildcard cannot be used with an IP address` };
    if (isPublicSuffix(c.host) && opts.list !== 'deny') return { error: `${q} would allow a whole public suffix (every site under ".${c.host}"); name the sites the agent needs instead` };
    return { kind: 'wildcard', host: c.host, port, text: hostPart };
  }
  if (hostPart.includes('*')) return { error: `${q}: a wildcard is only allowed as a leading "*." label, like "*.example.com"` };
  let h = hostPart;
  if (/^[0-9]{1,5}$/.test(h) && Number(h) <= 65535) return { error: `${q} looks like a port number; write the host and the port together, like "example.com:${h}"` };
  if (/[\u0080-\uffff]/.test(h)) {
    // Internationalised names: compare in their ASCII (punycode) form, as clients send them.
    try {
      h = new URL(`http://${h}/`).hostname;
    } catch {
      return { error: `${q} is not a valid host name` };
    }
  }
  const c = canonicalHost(h);
  if (!c) {
    if (/^[0-9.]+$/.test(h) || h.startsWith('[') || h.includes(':')) return { error: `${q} is not a valid IP address` };
    return { error: `${q} is not a valid host name (letters, digits, "-" and "." only)` };
  }
  return { kind: c.kind === 'name' ? 'exact' : 'ip', host: c.host, port, text: hostPart };
}
