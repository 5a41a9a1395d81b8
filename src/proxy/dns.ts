// The cage's name service: a DNS responder in the proxy container, on UDP and TCP port 53 of the proxy's own
// addresses. The agent's Docker DNS forwards every name it does not know itself to it (the engine sets the
// agent's DNS server to the proxy's cage address), and nothing is ever forwarded further: DNS is not a way out.
//
// Every name gets the same answer: the address the query came to, that is the proxy itself (A, short TTL).
// The client then connects to the proxy, which decides at connect time with what it then knows (SNI, Host,
// method, path, the port) and records the decision as for any other request. So a lookup never says whether a
// name is allowed, a blocked name still ends in a 403 the agent can read plus a block event and a quick fix,
// and no answer carries data the agent chose (the question is echoed, as DNS requires; nothing else is).
// AAAA and every other type: no records (NOERROR, empty), so clients use IPv4; the cage network has no IPv6.
//
// The wire format is dns-packet's (a well-kept library), not a parser of our own. What the agent sends is
// hostile: anything that does not decode, or is not one plain query, gets FORMERR/NOTIMP or nothing.
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import * as packet from 'dns-packet';

/** Seconds the answer may be cached: short, so a client does not keep an answer across a cage restart. */
export const DNS_TTL = 5;
/** A DNS message over TCP is at most 64 KiB; queries are tiny, so anything past this is not a query. */
const MAX_TCP_QUERY = 4096;
const TCP_IDLE_MS = 10_000;
/** Response codes (RFC 1035 4.1.1), in the low bits of the flags dns-packet encodes. */
const FORMERR = 1;
const NOTIMP = 4;

/** What a lookup was for: the name (lower case, no trailing dot) and the record type asked for. */
export interface Lookup {
  name: string;
  type: string;
  /** The address the query came from. */
  from: string;
}

/**
 * The answer to one DNS message `query` (wire format) when the proxy's own address is `self` (IPv4), or
 * undefined when nothing is to be sent back (not decodable, or itself a response). Pure.
 */
export function dnsAnswer(query: Buffer, self: string): { reply: Buffer; lookup?: { name: string; type: string } } | undefined {
  let q: packet.DecodedPacket & { opcode?: string };
  try {
    q = packet.decode(query);
  } catch {
    return undefined;
  }
  if (q.type === 'response') return undefined;
  const id = q.id ?? 0;
  const base = { id, type: 'response' as const, questions: q.questions ?? [] };
  // RD copied, RA off: this is no recursive resolver for anything outside.
  const rd = (q.flags ?? 0) & packet.RECURSION_DESIRED;
  if (q.opcode !== undefined && q.opcode !== 'QUERY') return { reply: packet.encode({ ...base, flags: rd | NOTIMP, questions: [] }) };
  const questions = q.questions ?? [];
  if (questions.length !== 1 || (q.answers?.length ?? 0) > 0) return { reply: packet.encode({ ...base, flags: rd | FORMERR, questions: [] }) };
  const question = questions[0];
  const name = String(question.name).toLowerCase().replace(/\.$/, '');
  const answers: packet.Answer[] = question.type === 'A' && (question.class ?? 'IN') === 'IN' && name.length > 0 ? [{ type: 'A', name: question.name, class: 'IN', ttl: DNS_TTL, data: self }] : [];
  return { reply: packet.encode({ ...base, flags: rd | packet.AUTHORITATIVE_ANSWER, questions: [question], answers }), lookup: { name, type: String(question.type) } };
}


export interface DnsServer {
  /** The address the responder is bound to (and answers with). */
  address: string;
  /** The UDP and TCP port (the same number for both). */
  port: number;
  close(): Promise<void>;
}

/**
 * Answers DNS on UDP and TCP `host:port` (port 0: one free port for both), with `host` as every A answer.
 * `onLookup` hears every query answered (the raw TCP rules attribute connections to recent lookups).
 */
export async function startDns(host: string, port: number, onLookup?: (l: Lookup) => void): Promise<DnsServer> {
  const udp = dgram.createSocket({ type: 'udp4', reuseAddr: false });
  const tcpConns = new Set<net.Socket>();
  const tcp = net.createServer((sock) => serveTcp(sock, host, tcpConns, onLookup));
  const answer = (msg: Buffer, from: string) => {
    const a = dnsAnswer(msg, host);
    if (a?.lookup) onLookup?.({ ...a.lookup, from });
    return a?.reply;
  };
  udp.on('message', (msg, rinfo) => {
    const reply = answer(msg, rinfo.address);
    if (reply) udp.send(reply, rinfo.port, rinfo.address);
  });
  udp.on('error', () => {});
  // One port number for both: bind TCP first (port 0 picks one), then UDP on the same number.
  await new Promise<void>((resolve, reject) => {
    tcp.once('error', reject);
    tcp.listen(port, host, () => {
      tcp.removeListener('error', reject);
      resolve();
    });
  });
  const bound = (tcp.address() as net.AddressInfo).port;
  try {
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(bound, host, () => {
        udp.removeListener('error', reject);
        resolve();
      });
    });
  } catch (e) {
    tcp.close();
    throw e;
  }
  tcp.on('error', () => {});
  return {
    address: host,
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of tcpConns) s.destroy();
        udp.close();
        tcp.close(() => resolve());
      }),
  };
}

/** DNS over TCP: two-byte length, message; several queries may follow on one connection. */
function serveTcp(sock: net.Socket, self: string, conns: Set<net.Socket>, onLookup?: (l: Lookup) => void): void {
  conns.add(sock);
  sock.once('close', () => conns.delete(sock));
  sock.on('error', () => sock.destroy());
  sock.setTimeout(TCP_IDLE_MS, () => sock.destroy());
  let buf: Buffer = Buffer.alloc(0);
  sock.on('data', (d: Buffer) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    while (buf.length >= 2) {
      const len = buf.readUInt16BE(0);
      if (len > MAX_TCP_QUERY) return sock.destroy();
      if (buf.length < 2 + len) return;
      const msg = buf.subarray(2, 2 + len);
      buf = buf.subarray(2 + len);
      const a = dnsAnswer(msg, self);
      if (!a) return sock.destroy();
      if (a.lookup) onLookup?.({ ...a.lookup, from: sock.remoteAddress ?? '' });
      const out = Buffer.alloc(2 + a.reply.length);
      out.writeUInt16BE(a.reply.length, 0);
      a.reply.copy(out, 2);
      sock.write(out);
    }
    if (buf.length > MAX_TCP_QUERY) sock.destroy();
  });
}
