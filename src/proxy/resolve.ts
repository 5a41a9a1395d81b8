// Checked name resolution for upstream connections: every address a name resolves to is classified, and
// private, loopback and link-local addresses are refused unless the rule opts in; sockets connect to the
// address that was checked (no DNS-rebinding window between the check and the connect).
import * as dns from 'node:dns';
import * as net from 'node:net';
import { classifyAddress } from '../policy/host';

export interface ResolvedAddress {
  address: string;
  family: number;
}

/** Resolves a host name to all its addresses. The default uses the system resolver (dns.lookup). */
export type Resolver = (host: string) => Promise<ResolvedAddress[]>;

export const systemResolver: Resolver = (host) => dns.promises.lookup(host, { all: true, verbatim: true });

export class PrivateAddressError extends Error {
  readonly code = 'ECAGEDPRIVATE';
  constructor(
    readonly host: string,
    readonly address: string,
    readonly addressClass: string,
  ) {
    super(`${host} resolves to ${address} (${addressClass})`);
  }
}

export function isPrivateAddressError(e: unknown): e is PrivateAddressError {
  return !!e && (e as { code?: string }).code === 'ECAGEDPRIVATE';
}

/** Resolves and checks every address; throws PrivateAddressError unless allowPrivate. */
export async function resolveChecked(resolver: Resolver, host: string, allowPrivate: boolean): Promise<ResolvedAddress[]> {
  if (net.isIP(host)) return [{ address: host, family: net.isIP(host) }];
  const addrs = await resolver(host);
  if (!addrs || addrs.length === 0) {
    const e = new Error(`getaddrinfo ENOTFOUND ${host}`) as NodeJS.ErrnoException;
    e.code = 'ENOTFOUND';
    throw e;
  }
  if (!allowPrivate) {
    for (const a of addrs) {
      const cls = classifyAddress(a.address);
      if (cls !== 'public') throw new PrivateAddressError(host, a.address, cls);
    }
  }
  return addrs;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | ResolvedAddress[], family?: number) => void;

/** A net.connect `lookup` function that only ever hands out checked addresses. */
export function checkedLookup(resolver: Resolver, allowPrivate: boolean) {
  return (hostname: string, options: { all?: boolean; family?: number } | number, callback: LookupCallback): void => {
    const opts = typeof options === 'object' && options ? options : {};
    resolveChecked(resolver, hostname, allowPrivate).then(
      (addrs) => {
        let list = addrs;
        if (opts.family === 4 || opts.family === 6) {
          list = addrs.filter((a) => a.family === opts.family);
          if (list.length === 0) list = addrs;
        }
        if (opts.all) callback(null, list);
        else callback(null, list[0].address, list[0].family);
      },
      (err) => callback(err, ''),
    );
  };
}
