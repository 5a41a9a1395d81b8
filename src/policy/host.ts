// Host names and IP literals: canonical forms, address classification and the public-suffix check.
// Pure string logic (no DNS, no node:net) so it runs the same in the proxy and in the editor.
import { parse } from 'tldts';

/** What a canonical host is: a DNS name or an IP literal. (A rule's host pattern has its own HostKind, in types.ts.) */
export type HostForm = 'name' | 'ipv4' | 'ipv6';

export interface CanonicalHost {
  kind: HostForm;
  /** Lower-case name without trailing dot; dotted-quad IPv4; compressed lower-case IPv6 without brackets. */
  host: string;
}

export type AddressClass = 'loopback' | 'private' | 'link-local' | 'unique-local' | 'unspecified' | 'multicast' | 'public';

/**
 * Parses an IPv4 literal the way URL parsers do (WHATWG "IPv4 parser"): 1-4 dot-separated parts, each
 * decimal, hex ("0x7f") or octal ("0177"); the last part fills the remaining bytes ("127.1", "2130706433").
 * Returns the 32-bit value, or undefined when `s` is not an IPv4 literal.
 */
function parseIPv4Number(s: string): number | undefined {
  if (s === '') return undefined;
  const parts = s.split('.');
  if (parts.length > 4) return undefined;
  const nums: number[] = [];
  for (const p of parts) {
    const n = parseIPv4Part(p);
    if (n === undefined) return undefined;
    nums.push(n);
  }
  for (let i = 0; i < nums.length - 1; i++) if (nums[i] > 255) return undefined;
  const last = nums[nums.length - 1];
  if (last >= 256 ** (5 - nums.length)) return undefined;
  let v = last;
  for (let i = 0; i < nums.length - 1; i++) v += nums[i] * 256 ** (3 - i);
  return v;
}

function parseIPv4Part(p: string): number | undefined {
  if (p === '') return undefined;
  let radix = 10;
  let digits = p;
  if (/^0[xX]/.test(p)) {
    radix = 16;
    digits = p.slice(2);
    if (digits === '') return 0;
    if (!/^[0-9a-fA-F]+$/.test(digits)) return undefined;
  } else if (p.length > 1 && p[0] === '0') {
    radix = 8;
    digits = p.slice(1);
    if (!/^[0-7]+$/.test(digits)) return undefined;
  } else if (!/^[0-9]+$/.test(digits)) {
    return undefined;
  }
  if (digits.length > 12) return undefined; // far beyond 32 bits; avoid float precision games
  const n = parseInt(digits, radix);
  return Number.isFinite(n) ? n : undefined;
}

/** True when the last dot-label looks numeric: URL parsers then treat the host as IPv4 (or reject it). */
function endsInNumber(s: string): boolean {
  const labels = s.split('.');
  if (labels[labels.length - 1] === '' && labels.length > 1) labels.pop();
  const last = labels[labels.length - 1];
  return /^[0-9]+$/.test(last) || /^0[xX][0-9a-fA-F]*$/.test(last);
}

function formatIPv4(v: number): string {
  return [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join('.');
}

/** Parses an IPv6 literal (no brackets, no zone id) into 8 16-bit groups. */
function parseIPv6Groups(s: string): number[] | undefined {
  if (s.length === 0 || s.length > 64 || !/^[0-9a-fA-F:.]+$/.test(s)) return undefined;
  let tail: number[] = [];
  let body = s;
  // Embedded dotted IPv4 in the last 32 bits ("::ffff:1.2.3.4").
  const lastColon = s.lastIndexOf(':');
  if (lastColon < 0) return undefined;
  const lastPart = s.slice(lastColon + 1);
  if (lastPart.includes('.')) {
    if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(lastPart)) return undefined;
    const bytes = lastPart.split('.').map((x) => Number(x));
    if (bytes.some((b, i) => b > 255 || (lastPart.split('.')[i].length > 1 && lastPart.split('.')[i][0] === '0'))) return undefined;
    tail = [bytes[0] * 256 + bytes[1], bytes[2] * 256 + bytes[3]];
    body = s.slice(0, lastColon + 1);
    // "::1.2.3.4" leaves "::"; "a:b:...:f:1.2.3.4" leaves "a:...:f:" - drop a single trailing colon.
    if (body.endsWith(':') && !body.endsWith('::')) body = body.slice(0, -1);
  }
  const dbl = body.indexOf('::');
  if (dbl >= 0 && body.indexOf('::', dbl + 1) >= 0) return undefined;
  const parseList = (x: string): number[] | undefined => {
    if (x === '') return [];
    const out: number[] = [];
    for (const g of x.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  let groups: number[];
  if (dbl >= 0) {
    const head = parseList(body.slice(0, dbl));
    const rest = parseList(body.slice(dbl + 2));
    if (!head || !rest) return undefined;
    const fill = 8 - head.length - rest.length - tail.length;
    if (fill < 1) return undefined;
    groups = [...head, ...new Array<number>(fill).fill(0), ...rest, ...tail];
  } else {
    const all = parseList(body);
    if (!all) return undefined;
    groups = [...all, ...tail];
    if (groups.length !== 8) return undefined;
  }
  return groups.length === 8 ? groups : undefined;
}

/** RFC 5952 text form: lower-case hex, no leading zeros, the longest run (>= 2) of zero groups as "::". */
function formatIPv6(g: number[]): string {
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (bestStart < 0) return hex.join(':');
  return hex.slice(0, bestStart).join(':') + '::' + hex.slice(bestStart + bestLen).join(':');
}

const LABEL = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/;
// A whole lower-case name whose last label starts with a letter (so it can never be read as IPv4).
const FAST_NAME = /^(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.?$/;

function isValidName(h: string): boolean {
  if (h.length === 0 || h.length > 253) return false;
  for (const l of h.split('.')) if (!LABEL.test(l)) return false;
  return true;
}

/**
 * Canonical form of a host as a client or a rule writes it: case-folded, trailing dot removed, IPv6
 * brackets removed, every IPv4 spelling ("2130706433", "0x7f.1", "127.1", "0177.0.0.1") as a dotted quad.
 * Returns undefined for anything that is not a valid host (spaces, empty labels, bad literals, ports).
 */
export function canonicalHost(host: string): CanonicalHost | undefined {
  if (typeof host !== 'string') return undefined;
  let h = host.trim().toLowerCase();
  if (h.length === 0 || h.length > 300) return undefined;
  if (FAST_NAME.test(h)) {
    if (h.endsWith('.')) h = h.slice(0, -1);
    if (h.length <= 253) return { kind: 'name', host: h };
  }
  if (h.startsWith('[')) {
    if (!h.endsWith(']')) return undefined;
    const g = parseIPv6Groups(h.slice(1, -1));
    return g ? { kind: 'ipv6', host: formatIPv6(g) } : undefined;
  }
  if (h.includes(':')) {
    const g = parseIPv6Groups(h);
    return g ? { kind: 'ipv6', host: formatIPv6(g) } : undefined;
  }
  if (h.endsWith('.')) h = h.slice(0, -1);
  if (h.length === 0) return undefined;
  if (endsInNumber(h)) {
    const v = parseIPv4Number(h);
    return v === undefined ? undefined : { kind: 'ipv4', host: formatIPv4(v) };
  }
  return isValidName(h) ? { kind: 'name', host: h } : undefined;
}

/** splitHostPort's answer: the host as written (brackets kept) and the port text as written, unchecked. */
export type HostPortSplit = { host: string; port?: string } | { error: 'no-closing-bracket' | 'text-after-bracket' };

/**
 * The one way "host:port" is split (request authorities, Host headers, policy hosts, listen addresses):
 * "host", "host:port", "[v6]" and "[v6]:port". Nothing is validated here; each caller checks the parts with its
 * own words. Without brackets, a text with two or more colons has no port: it is a bare IPv6 literal, which a
 * policy may write ("::1") and an authority may not. "host:" gives an empty port text.
 */
export function splitHostPort(text: string): HostPortSplit {
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) return { error: 'no-closing-bracket' };
    const host = text.slice(0, close + 1);
    if (close + 1 === text.length) return { host };
    if (text.charCodeAt(close + 1) !== 58 /* : */) return { error: 'text-after-bracket' };
    return { host, port: text.slice(close + 2) };
  }
  const c = text.indexOf(':');
  if (c < 0 || text.indexOf(':', c + 1) >= 0) return { host: text };
  return { host: text.slice(0, c), port: text.slice(c + 1) };
}

/** True when `host` is an IPv4 or IPv6 literal in any spelling (brackets optional). */
export function isIpLiteral(host: string): boolean {
  const c = canonicalHost(host);
  return c !== undefined && c.kind !== 'name';
}

/** How a host is written in a URL / Host header / policy file: IPv6 gets brackets. */
export function hostForDisplay(c: CanonicalHost): string {
  return c.kind === 'ipv6' ? `[${c.host}]` : c.host;
}

function classifyV4(v: number): AddressClass {
  const a = v >>> 24;
  const b = (v >>> 16) & 255;
  if (a === 0) return 'unspecified'; // 0.0.0.0/8 ("this network"; 0.0.0.0 reaches the local host)
  if (a === 127) return 'loopback';
  if (a === 10) return 'private';
  if (a === 172 && b >= 16 && b <= 31) return 'private';
  if (a === 192 && b === 168) return 'private';
  if (a === 100 && b >= 64 && b <= 127) return 'private'; // 100.64.0.0/10 carrier-grade NAT
  if (a === 169 && b === 254) return 'link-local'; // incl. cloud metadata 169.254.169.254
  if (a === 192 && b === 0 && ((v >>> 8) & 255) === 0) return 'private'; // 192.0.0.0/24 IETF protocol assignments
  if (a === 198 && (b === 18 || b === 19)) return 'private'; // 198.18.0.0/15 benchmarking
  if (a >= 224 && a <= 239) return 'multicast';
  if (a >= 240) return 'private'; // 240.0.0.0/4 reserved, 255.255.255.255 broadcast
  return 'public';
}

function classifyV6(g: number[]): AddressClass {
  const zeroPrefix = (n: number) => g.slice(0, n).every((x) => x === 0);
  const v4 = () => g[6] * 65536 + g[7];
  if (zeroPrefix(8)) return 'unspecified';
  if (zeroPrefix(7) && g[7] === 1) return 'loopback';
  if (zeroPrefix(5) && g[5] === 0xffff) return classifyV4(v4()); // IPv4-mapped ::ffff:a.b.c.d
  if (zeroPrefix(4) && g[4] === 0xffff && g[5] === 0) return classifyV4(v4()); // IPv4-translated ::ffff:0:a.b.c.d
  if (zeroPrefix(6)) return classifyV4(v4()); // deprecated IPv4-compatible ::a.b.c.d
  if (g[0] === 0x64 && g[1] === 0xff9b && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0) {
    const c = classifyV4(v4()); // NAT64 well-known prefix 64:ff9b::/96
    return c;
  }
  if (g[0] === 0x2002) {
    const c = classifyV4(g[1] * 65536 + g[2]); // 6to4 embeds an IPv4 address
    if (c !== 'public') return c;
  }
  if ((g[0] & 0xfe00) === 0xfc00) return 'unique-local'; // fc00::/7
  if ((g[0] & 0xffc0) === 0xfe80) return 'link-local'; // fe80::/10
  if ((g[0] & 0xffc0) === 0xfec0) return 'private'; // fec0::/10 deprecated site-local
  if ((g[0] & 0xff00) === 0xff00) return 'multicast'; // ff00::/8
  return 'public';
}

/**
 * Classifies a resolved address (IPv4 or IPv6 text, brackets optional). Anything that is not an IP
 * literal is classified 'unspecified', so a caller refusing non-public addresses fails closed.
 */
export function classifyAddress(ip: string): AddressClass {
  let h = typeof ip === 'string' ? ip.trim().toLowerCase() : '';
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  const pct = h.indexOf('%'); // zone id ("fe80::1%eth0")
  if (pct >= 0 && h.includes(':')) h = h.slice(0, pct);
  if (h.includes(':')) {
    const g = parseIPv6Groups(h);
    return g ? classifyV6(g) : 'unspecified';
  }
  const v = parseIPv4Number(h);
  return v === undefined ? 'unspecified' : classifyV4(v);
}

/**
 * True when `domain` (canonical, lower-case) is itself a public suffix on the Public Suffix List (tldts, kept
 * current by its maintainers), the private section included: a wildcard under it would hand the agent every
 * site of every owner there — "*.com", "*.co.ke", but also shared hosting such as "*.github.io",
 * "*.blob.core.windows.net" or "*.s3.us-east-2.amazonaws.com". Names under a top-level domain the list does not
 * know ("test", "internal") are not public suffixes here; the parser warns about single-label wildcards itself.
 */
export function isPublicSuffix(domain: string): boolean {
  const d = domain.toLowerCase().replace(/\.$/, '');
  if (d === '') return false;
  const r = parse(d, { allowPrivateDomains: true, extractHostname: false, validateHostname: false, detectIp: false });
  return r.publicSuffix === d && (r.isIcann === true || r.isPrivate === true);
}
