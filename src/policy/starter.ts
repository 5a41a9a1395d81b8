// The commented starter policy a new workspace gets: version 1, every field explained, an `allow:` list
// ready for entries (with the preset hosts of the chosen agent). Pure.
import { yamlScalar } from './yamlNodes';

export interface StarterOptions {
  /** First comment line, e.g. "Caged Agent policy for Claude Code". */
  title?: string;
  /** Hosts to allow from the start (presets), each with an optional trailing comment. */
  hosts?: { host: string; comment?: string }[];
}

/** A commented starter policy: version 1, the fields explained, an `allow:` list ready for entries. */
export function starterPolicy(opts: StarterOptions = {}): string {
  const lines: string[] = [];
  lines.push(`# ${oneLine(opts.title ?? 'Caged Agent egress policy')}`);
  lines.push(
    '#',
    "# The agent's container can reach ONLY what this file allows; everything else is blocked.",
    '# Changes take effect when the file is saved. Deny entries win over allow entries.',
    '#',
    '# Each entry (under allow: or deny:) has a host and optional fields:',
    '#   host:      api.example.com     exact host; ports 80 and 443',
    '#              "*.example.com"     any subdomain (at any depth), not example.com itself',
    '#              example.com:8443    only that port;  10.0.0.5 / "[::1]"  an IP address',
    '#   methods:   [GET, HEAD]         only these methods (default: any)',
    '#   paths:     ["/my-org/**"]      only these paths: * = within one segment, ** = any depth',
    '#   auth:      { scheme: Bearer, secret: github }   the proxy adds the credential from',
    '#                                  the CAGED_SECRET_GITHUB secret; the agent never sees it',
    '#   intercept: false               tunnel without TLS inspection (host-level decision only)',
    '#   private:   true                the host may resolve to a private or loopback address',
    '#   disabled:  true                keep the entry but ignore it',
    'version: 1',
    '',
    'allow:',
  );
  for (const h of opts.hosts ?? []) {
    const hostText = yamlScalar(h.host.trim(), true);
    lines.push(`  - host: ${hostText}` + (h.comment ? `  # ${oneLine(h.comment)}` : ''));
  }
  lines.push('  # - host: api.example.com', '  #   methods: [GET]', '  #   paths: ["/v1/**"]', '', 'deny:', '  # - host: gist.github.com', '');
  return lines.join('\n');
}

function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ').trim();
}
