import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

/**
 * Where outbound webhooks may go (server-side request forgery guard). Only public unicast addresses are
 * allowed: private (RFC 1918, unique local), loopback, link-local (cloud metadata at 169.254.169.254),
 * carrier-grade NAT, multicast, broadcast, unspecified, documentation/benchmarking/reserved ranges and
 * the IPv6 transition forms that embed an IPv4 address (mapped, 6to4, Teredo, NAT64) are refused,
 * unless the operator's allowlist (WEBHOOK_ALLOWED_NETWORKS) names them.
 *
 * The check runs twice: when an endpoint is registered (on its literal address or every address its
 * name resolves to) and on every connection, on the address actually connected to (the lookup below),
 * so a name that resolves to a public address at registration and to 127.0.0.1 later (DNS rebinding) is
 * refused at connection time.
 */

type Address = ipaddr.IPv4 | ipaddr.IPv6;

export interface AddressPolicy {
  /** null when allowed, else why not (for the error message and the delivery log). */
  refusal(address: string): string | null;
  /** The operator's allowlist as given (for logs and docs). */
  readonly allowed: readonly string[];
}

export class AddressNotAllowedError extends Error {
  readonly code = 'address_not_allowed';
  constructor(
    readonly host: string,
    readonly address: string,
    readonly reason: string,
  ) {
    super(`${host} resolves to ${address} (${reason}): not an allowed webhook address`);
    this.name = 'AddressNotAllowedError';
  }
}

export class UnresolvableHostError extends Error {
  readonly code = 'unresolvable_host';
  constructor(
    readonly host: string,
    options?: { cause?: unknown },
  ) {
    super(`${host} does not resolve`, options);
    this.name = 'UnresolvableHostError';
  }
}

/** Parses `WEBHOOK_ALLOWED_NETWORKS`-style entries: addresses or CIDR ranges, comma separated. */
export function parseAllowedNetworks(value: string): string[] {
  const entries = value
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e.length > 0);
  for (const entry of entries) {
    if (entry.includes('/')) {
      if (!ipaddr.isValidCIDR(entry)) throw new Error(`${entry} is not an address or CIDR range`);
    } else if (!ipaddr.isValid(entry)) {
      throw new Error(`${entry} is not an address or CIDR range`);
    }
  }
  return entries;
}

const GLOBAL_UNICAST_V6 = ipaddr.parseCIDR('2000::/3') as [ipaddr.IPv6, number];

/** IPv4-mapped IPv6 (::ffff:a.b.c.d) is judged as the IPv4 address it is. */
function normalize(address: Address): Address {
  if (address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress()) {
    return (address as ipaddr.IPv6).toIPv4Address();
  }
  return address;
}

export function createAddressPolicy(allowedNetworks: readonly string[] = []): AddressPolicy {
  const allowed = allowedNetworks.map((entry): [Address, number] => {
    if (entry.includes('/')) return ipaddr.parseCIDR(entry);
    const address = ipaddr.parse(entry);
    return [address, address.kind() === 'ipv4' ? 32 : 128];
  });
  return {
    allowed: [...allowedNetworks],
    refusal(text) {
      if (!ipaddr.isValid(text)) return 'not an IP address';
      const address = normalize(ipaddr.parse(text));
      for (const [network, bits] of allowed) {
        if (network.kind() === address.kind() && address.match(network, bits)) return null;
      }
      const range = address.range();
      if (range !== 'unicast') return `${range} address`;
      if (address.kind() === 'ipv6' && !address.match(GLOBAL_UNICAST_V6))
        return 'not a global unicast address';
      return null;
    },
  };
}

export interface Resolver {
  /** Every address a name resolves to (A and AAAA). */
  resolve(host: string): Promise<string[]>;
}

export const systemResolver: Resolver = {
  async resolve(host) {
    const results = await dnsLookup(host, { all: true, verbatim: true });
    return results.map((r) => r.address);
  },
};

/** URL hostnames keep IPv6 literals in brackets. */
export function hostOf(url: URL): string {
  const host = url.hostname;
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/**
 * The registration-time check: the URL's literal address, or every address its name resolves to, must
 * be allowed. Throws AddressNotAllowedError or UnresolvableHostError.
 */
export async function checkTarget(url: URL, policy: AddressPolicy, resolver: Resolver): Promise<void> {
  const host = hostOf(url);
  let addresses: string[];
  if (isIP(host)) {
    addresses = [host];
  } else {
    try {
      addresses = await resolver.resolve(host);
    } catch (error) {
      throw new UnresolvableHostError(host, { cause: error });
    }
    if (addresses.length === 0) throw new UnresolvableHostError(host);
  }
  for (const address of addresses) {
    const reason = policy.refusal(address);
    if (reason) throw new AddressNotAllowedError(host, address, reason);
  }
}

type LookupCallback = (
  error: NodeJS.ErrnoException | null,
  address: string | Array<{ address: string; family: number }>,
  family?: number,
) => void;

/**
 * A `net.connect` lookup that resolves the name and refuses the connection unless every address is
 * allowed: what the socket connects to is exactly what was checked (no second resolution).
 */
export function guardedLookup(policy: AddressPolicy, resolver: Resolver) {
  return (hostname: string, options: { all?: boolean }, callback: LookupCallback): void => {
    resolver.resolve(hostname).then(
      (addresses) => {
        if (addresses.length === 0) {
          callback(new UnresolvableHostError(hostname) as NodeJS.ErrnoException, '');
          return;
        }
        for (const address of addresses) {
          const reason = policy.refusal(address);
          if (reason) {
            callback(new AddressNotAllowedError(hostname, address, reason) as NodeJS.ErrnoException, '');
            return;
          }
        }
        if (options.all) {
          callback(
            null,
            addresses.map((address) => ({ address, family: isIP(address) })),
          );
        } else {
          callback(null, addresses[0]!, isIP(addresses[0]!));
        }
      },
      (error: unknown) =>
        callback(new UnresolvableHostError(hostname, { cause: error }) as NodeJS.ErrnoException, ''),
    );
  };
}
