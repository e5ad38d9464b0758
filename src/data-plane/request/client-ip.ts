import { compileIpAllowlist, parseIp, type ParsedIp } from '../../domain/cidr.js';

export type ClientIpResolver = (peer: string | undefined, forwardedFor: string | string[] | undefined) => ParsedIp | null;

/**
 * The client is the socket peer (IPv4-mapped IPv6 read as IPv4). Only when the peer is a
 * trusted proxy is X-Forwarded-For read, from the right, skipping trusted hops; the first
 * untrusted entry is the client. `Forwarded`, `X-Real-IP` and the like are never read.
 */
export function createClientIpResolver(trustedProxies: readonly string[]): ClientIpResolver {
  if (trustedProxies.length === 0) return (peer) => (peer === undefined ? null : parseIp(peer));
  const trusted = compileIpAllowlist(trustedProxies);
  return (peer, forwardedFor) => {
    if (peer === undefined) return null;
    let client = parseIp(peer);
    if (client === null || !trusted(client) || forwardedFor === undefined) return client;
    const chain = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor).split(',');
    for (let i = chain.length - 1; i >= 0; i--) {
      const hop = parseIp(chain[i]!.trim());
      // An unreadable entry ends the walk: the last trusted hop is all that can be believed.
      if (hop === null) return client;
      client = hop;
      if (!trusted(hop)) return hop;
    }
    return client;
  };
}
