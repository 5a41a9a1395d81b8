// The relay's HTTP/1.1 head parser and chunked-body scanner: strict where smuggling lives.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChunkedScanner, findHeadEnd, HeadError, parseRequestHead, parseResponseHead } from '../../src/proxy/http1';

function req(text: string) {
  const b = Buffer.from(text, 'latin1');
  const end = findHeadEnd(b);
  assert.ok(end > 0, 'head end found');
  return parseRequestHead(b, end);
}

function res(text: string, method = 'GET') {
  const b = Buffer.from(text, 'latin1');
  return parseResponseHead(b, findHeadEnd(b), method);
}

describe('request heads', () => {
  test('ordinary request', () => {
    const r = req('POST http://a.test/x?y=1 HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\nConnection: keep-alive, Foo\r\n\r\nhello');
    assert.equal(r.method, 'POST');
    assert.equal(r.target, 'http://a.test/x?y=1');
    assert.equal(r.minor, 1);
    assert.equal(r.bodyLength, 5);
    assert.equal(r.host, 'a.test');
    assert.deepEqual(r.connection, ['keep-alive', 'foo']);
    assert.deepEqual(r.headers, ['Host', 'a.test', 'Content-Length', '5', 'Connection', 'keep-alive, Foo']);
  });

  test('chunked, upgrade, expect', () => {
    const r = req('PUT /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n');
    assert.equal(r.bodyLength, -1);
    assert.equal(r.expectContinue, true);
    const u = req('GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
    assert.equal(u.upgrade, 'websocket');
    assert.deepEqual(u.connection, ['upgrade']);
  });

  const bad: Array<[string, string]> = [
    ['CL and TE together', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n'],
    ['two different Content-Lengths', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n'],
    ['non-numeric Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3x\r\n\r\n'],
    ['TE other than chunked', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n'],
    ['obs-fold', 'GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n  continued\r\n\r\n'],
    ['space before colon', 'GET / HTTP/1.1\r\nHost : a\r\n\r\n'],
    ['two Host headers', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'],
    ['bare LF inside a value', 'GET / HTTP/1.1\r\nHost: a\nX-Evil: 1\r\n\r\n'],
    ['HTTP/2 request line', 'GET / HTTP/2.0\r\nHost: a\r\n\r\n'],
    ['junk request line', 'THIS IS NOT HTTP\r\n\r\n'],
  ];
  for (const [name, text] of bad) {
    test(`refuses ${name}`, () => {
      assert.throws(() => req(text), HeadError);
    });
  }
});

describe('response heads', () => {
  test('framing', () => {
    assert.equal(res('HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n').bodyLength, 12);
    assert.equal(res('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n').bodyLength, -1);
    const close = res('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n');
    assert.deepEqual([close.bodyLength, close.close], [-2, true]);
    assert.equal(res('HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n', 'HEAD').bodyLength, 0);
    assert.equal(res('HTTP/1.1 204 No Content\r\n\r\n').bodyLength, 0);
    assert.equal(res('HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n').bodyLength, 0);
    assert.equal(res('HTTP/1.1 100 Continue\r\n\r\n').status, 100);
    assert.equal(res('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n').close, true);
    assert.equal(res('HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n').close, true);
    assert.equal(res('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n').close, false);
    assert.throws(() => res('HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n'), HeadError);
    assert.throws(() => res('SSH-2.0-OpenSSH\r\n\r\n'), HeadError);
    assert.throws(() => res('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n'), HeadError);
  });
});

describe('chunked scanner', () => {
  test('finds the end across arbitrary splits, with extensions and trailers', () => {
    const body = Buffer.from('5;ext=1\r\nhello\r\n1A\r\n' + 'x'.repeat(26) + '\r\n0\r\nTrailer: yes\r\n\r\nNEXT', 'latin1');
    const endAt = body.length - 4;
    for (let split = 1; split < body.length; split += 3) {
      const s = new ChunkedScanner();
      const a = s.feed(body.subarray(0, split));
      if (a >= 0) {
        assert.equal(a, endAt);
        continue;
      }
      const b = s.feed(body.subarray(split));
      assert.equal(b + split, endAt, `split at ${split}`);
    }
    const s = new ChunkedScanner();
    assert.equal(s.feed(Buffer.from('0\r\n\r\n')), 5);
  });

  test('refuses malformed framing', () => {
    for (const bad of ['zz\r\n', '5\r\nhelloXX', '\r\n', '5\nhello\r\n', '-1\r\n', '0\r\nTrailer\n']) {
      assert.throws(() => new ChunkedScanner().feed(Buffer.from(bad + '\r\n0\r\n\r\n')), HeadError, JSON.stringify(bad));
    }
  });
});
