/**
 * Who is calling, for per-client rate limits. The socket's address, unless that address is a
 * proxy named in NAMECARD_TRUST_PROXY: then the client address that proxy put in
 * `X-Forwarded-For` (proxy-addr, the library Express uses, walks the header from the right and
 * stops at the first address that is not a trusted proxy, so a client cannot spoof its way past
 * the proxy by sending its own header). With no trusted proxy the header is ignored.
 *
 * IPv6 clients are keyed by their /64 (one host usually gets a whole /64, so single addresses
 * would be free to vary); IPv4-mapped IPv6 addresses as IPv4.
 */
import { type IncomingMessage } from 'node:http';
import { isIPv4 } from 'node:net';
import ipaddr from 'ipaddr.js';
import proxyAddr from 'proxy-addr';

export type TrustProxy = (address: string, hop: number) => boolean;

/** Compiles NAMECARD_TRUST_PROXY's list (addresses, CIDR ranges, `loopback`, `uniquelocal`...). */
export function compileTrustProxy(list: readonly string[]): TrustProxy {
  return list.length === 0 ? TRUST_NONE : proxyAddr.compile([...list]);
}

/** No trusted proxy: the socket's address is the client's (X-Forwarded-For is not read). */
const TRUST_NONE: TrustProxy = () => false;

/** The key of a client address: IPv4 as is, IPv6 as its /64 (`2001:db8:1:2::/64`). */
export function clientKey(address: string): string {
  // Dotted decimal as Node gives a socket's address (isIPv4 takes no other form): already the key.
  if (isIPv4(address)) return address;
  if (!ipaddr.isValid(address)) return address || 'unknown';
  let parsed = ipaddr.parse(address);
  if (parsed.kind() === 'ipv6') {
    const v6 = parsed as ipaddr.IPv6;
    if (v6.isIPv4MappedAddress()) parsed = v6.toIPv4Address();
    else {
      const parts = v6.parts.slice(0, 4).concat([0, 0, 0, 0]);
      return `${new ipaddr.IPv6(parts).toString()}/64`;
    }
  }
  return parsed.toString();
}

export function clientIp(req: IncomingMessage, trust: TrustProxy): string {
  if (trust === TRUST_NONE) return clientKey(req.socket.remoteAddress ?? '');
  return clientKey(proxyAddr(req, trust));
}
