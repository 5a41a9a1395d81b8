// Property-based fuzzing (fast-check) of the request-head parser and the path normaliser, bounded in time
// so CI pays seconds. Generators build heads and paths from the pieces attacks are made of (separators and
// their encodings, dot-segments, framing headers, odd bytes) as well as plain random bytes.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import fc from 'fast-check';
import { decide, parsePolicy } from '../../src/policy';
import { normalizePath, separatorReading } from '../../src/policy/path';
import { findHeadEnd, HeadError, parseRequestHead } from '../../src/proxy/http1';

/** Each property runs until this many ms have passed (or numRuns), whichever comes first. */
const BUDGET_MS = Number(process.env.CAGED_FUZZ_MS) || 1500; // CAGED_FUZZ_MS=60000 for a longer hunt
const opts = { numRuns: 1_000_000, interruptAfterTimeLimit: BUDGET_MS, markInterruptAsFailure: false };

const headerName = fc.constantFrom('Host', 'Content-Length', 'content-length', 'Transfer-Encoding', 'transfer-encoding', 'Connection', 'Upgrade', 'Expect', 'X-A', 'Te', 'Cookie');
const headerValue = fc.oneof(
  fc.constantFrom('chunked', 'gzip, chunked', 'chunked ', ' 5', '5', '05', '-1', '1e3', '0x10', '100-continue', 'close', 'keep-alive, Upgrade', 'api.test', 'api.test:80', '[::1]', ''),
  fc.string({ maxLength: 12 }),
);
const line = fc.oneof(
  fc.tuple(headerName, fc.constantFrom(':', ': ', ' :', ':\t'), headerValue).map(([n, c, v]) => `${n}${c}${v}`),
  fc.constantFrom(' folded', '\tfolded', 'NoColon', ':empty-name'),
);
const requestLine = fc.tuple(fc.constantFrom('GET', 'POST', 'get', 'G T', 'TRACE', ''), fc.constantFrom('/', '/a%2Fb', 'http://x/', '*', '/caf\xc3\xa9', '', '/a b'), fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2', 'http/1.1')).map(([m, t, v]) => `${m} ${t} ${v}`);
const structuredHead = fc.tuple(requestLine, fc.array(line, { maxLength: 6 }), fc.constantFrom('\r\n', '\n')).map(([r, ls, eol]) => Buffer.from([r, ...ls].join(eol) + '\r\n\r\n', 'latin1'));
const randomHead = fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.concat([Buffer.from(b), Buffer.from('\r\n\r\n')]));

describe('fuzz: request-head parser', () => {
  test('throws nothing but HeadError, and never accepts two framings or a lower-case method', () => {
    fc.assert(
      fc.property(fc.oneof(structuredHead, randomHead), (buf) => {
        const end = findHeadEnd(buf);
        if (end < 0) return;
        let h;
        try {
          h = parseRequestHead(buf, end);
        } catch (e) {
          assert.ok(e instanceof HeadError, String(e));
          return;
        }
        const names = h.headers.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
        assert.ok(!(names.includes('content-length') && names.includes('transfer-encoding')), 'both framings accepted');
        assert.equal(h.method, h.method.toUpperCase());
        assert.ok(!/[^\x21-\x7e]/.test(h.target), `target not plain ASCII: ${JSON.stringify(h.target)}`);
        if (h.bodyLength === -1) assert.ok(names.includes('transfer-encoding'));
      }),
      opts,
    );
  });
});

// Path pieces: separators and their encodings, dot-segments and their encodings, parameters, odd bytes.
const piece = fc.constantFrom('a', 'b', 'allowed', 'secret', '.', '..', '%2e', '%2E%2e', '%2f', '%2F', '%5c', '\\', '%252f', '%252e', ';x', ';', '%c0%af', '%c0%ae', '%00', '%', '%zz', '~', '*', 'é', '%C3%A9', '?', '#', ' ', '//');
const rawPath = fc.array(fc.oneof(piece, fc.constant('/')), { maxLength: 10 }).map((p) => '/' + p.join(''));

/** What a server that decodes before resolving serves for a path (percent-decoding twice, "\" as "/"). */
function served(p: string): string {
  let s = p.split('?')[0].split('#')[0];
  for (let i = 0; i < 2; i++) s = s.replace(/%([0-9a-f]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
  s = s.replace(/\xc0\xaf|\\/g, '/').replace(/\xc0\xae/g, '.').split('/').map((seg) => seg.split(';')[0]).join('/');
  return path.posix.normalize(s);
}

describe('fuzz: path normaliser', () => {
  test('idempotent; no dot-segments, "//" or bare "%"; the separator reading is stable', () => {
    fc.assert(
      fc.property(rawPath, (raw) => {
        const n = normalizePath(raw);
        if (n === undefined) return;
        assert.equal(normalizePath(n), n, `not idempotent: ${raw} -> ${n}`);
        assert.ok(!n.split('/').some((s) => s === '.' || s === '..'), n);
        assert.ok(!n.includes('//'), n);
        assert.ok(!/%(?![0-9A-F]{2})/.test(n), n);
        const alt = separatorReading(raw, n);
        if (alt !== undefined) assert.equal(separatorReading(alt, alt), alt, `separator reading not stable: ${n} -> ${alt}`);
      }),
      opts,
    );
  });

  const policy = parsePolicy(`version: 1
allow:
  - host: files.test
    paths: ["/allowed/**"]
  - host: api.test
deny:
  - host: api.test
    paths: ["/secret/**", "/secret"]
`).policy!;

  test('what a path rule allows, a decoding server resolves under it; what a deny blocks it never serves', () => {
    fc.assert(
      fc.property(rawPath, (raw) => {
        const s = served(raw);
        const f = decide({ host: 'files.test', port: 443, method: 'GET', path: raw }, policy);
        if (f.action === 'allow') assert.ok(s === '/allowed' || s.startsWith('/allowed/'), `${raw} allowed, server resolves ${s}`);
        const a = decide({ host: 'api.test', port: 443, method: 'GET', path: raw }, policy);
        if (a.action === 'allow') assert.ok(s !== '/secret' && !s.startsWith('/secret/'), `${raw} allowed on api.test, server resolves ${s}`);
      }),
      opts,
    );
  });
});
