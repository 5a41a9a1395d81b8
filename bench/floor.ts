// The "floor" row of the keep-alive table (its own process: `dist/bench.js --role floor`): the least work any
// TLS-intercepting relay written in Node has to do per request. It answers CONNECT, terminates TLS with one
// pre-made leaf (signed by the cage CA), opens one TLS connection to the upstream per client connection and
// pipes the decrypted bytes both ways. No HTTP parsing, no policy, no events, no pooling, no minting: nothing
// a real proxy could leave out is left in. How close the caged proxy comes to this row says how much its own
// work costs; how far this row is from direct says what Node's TLS stack costs on this machine.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { exitWhenStdinCloses, requiredArg } from './common';

export function runFloor(argv: string[]): void {
  const arg = (name: string) => requiredArg(argv, name, 'floor');
  const secureContext = tls.createSecureContext({ cert: fs.readFileSync(arg('--cert'), 'utf8'), key: fs.readFileSync(arg('--key'), 'utf8') });
  const upstreamCa = fs.readFileSync(arg('--upstream-ca'), 'utf8');
  const server = net.createServer((sock) => {
    sock.on('error', () => sock.destroy());
    let head = Buffer.alloc(0);
    const onHead = (d: Buffer) => {
      head = Buffer.concat([head, d]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      sock.removeListener('data', onHead);
      sock.pause();
      // "CONNECT host:port HTTP/1.1": the bench only ever asks for 127.0.0.1 or localhost.
      const port = Number(head.toString('latin1', 0, end).split(' ')[1]?.split(':').pop());
      if (end + 4 !== head.length || !Number.isInteger(port)) return sock.destroy();
      sock.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      const client = new tls.TLSSocket(sock, { isServer: true, secureContext });
      const up = tls.connect({ host: '127.0.0.1', port, ca: upstreamCa, servername: 'localhost' });
      client.pipe(up).pipe(client);
      client.on('error', () => up.destroy());
      up.on('error', () => client.destroy());
      client.on('close', () => up.destroy());
      up.on('close', () => client.destroy());
      sock.resume();
    };
    sock.on('data', onHead);
  });
  server.listen(Number(arg('--port')), '127.0.0.1');
  exitWhenStdinCloses();
}
