// Chaining through an upstream HTTP proxy (--upstream-proxy): every upstream connection becomes a CONNECT
// tunnel through it.
import * as net from 'node:net';

export interface ProxyUrl {
  host: string;
  port: number;
}

export function parseProxyUrl(s: string): ProxyUrl {
  const u = new URL(s);
  if (u.protocol !== 'http:') throw new Error('the upstream proxy must be an http:// URL');
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 80) };
}

/** Opens a CONNECT tunnel through an HTTP proxy. */
export function connectViaProxy(proxy: ProxyUrl, host: string, port: number, timeoutMs = 15000): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: proxy.host, port: proxy.port });
    const authority = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    let buf: Buffer = Buffer.alloc(0);
    const fail = (e: Error) => {
      clearTimeout(timer);
      sock.destroy();
      reject(e);
    };
    const timer = setTimeout(() => fail(new Error('upstream proxy CONNECT timed out')), timeoutMs);
    sock.once('error', fail);
    sock.once('connect', () => sock.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`));
    const onData = (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (buf.length > 16384) fail(new Error('upstream proxy sent an oversized CONNECT response'));
        return;
      }
      clearTimeout(timer);
      sock.removeListener('data', onData);
      sock.pause();
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(buf.toString('latin1', 0, Math.min(end, 64)));
      if (!status || status[1] !== '200') {
        const e = new Error(`upstream proxy refused CONNECT ${authority}: ${status ? status[1] : 'bad response'}`) as NodeJS.ErrnoException;
        e.code = 'ECAGEDUPSTREAMPROXY';
        return fail(e);
      }
      if (end + 4 < buf.length) sock.unshift(buf.subarray(end + 4));
      sock.removeListener('error', fail);
      resolve(sock);
    };
    sock.on('data', onData);
  });
}
