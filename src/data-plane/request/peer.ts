import type { Socket } from 'node:net';
import { compileIpAllowlist, parseIp, type ParsedIp } from '../../domain/cidr.js';
import { CredentialMemo } from '../key-resolver.js';
import type { ClientIpResolver } from './client-ip.js';

const PEER = Symbol('keygate.peer');

/**
 * What the gateway knows of a client connection, worked out on its first request. A trusted
 * proxy's connection also keeps the last X-Forwarded-For it sent and the client read from it:
 * a proxy's keep-alive connection carries a client's requests one after another.
 */
export interface Peer {
  ip: ParsedIp | null;
  text: string;
  trusted: boolean;
  credential: CredentialMemo;
  forwardedFor: string | string[] | undefined;
  forwardedClient: ParsedIp | null;
}
type PeerSocket = Socket & { [PEER]?: Peer };

/**
 * The connection's peer, parsed once per connection: every request on a keep-alive socket has
 * the same peer (and its credential memo).
 */
export function peerMemo(trustedProxies: readonly string[]): (socket: Socket) => Peer {
  const isTrusted = trustedProxies.length > 0 ? compileIpAllowlist(trustedProxies) : () => false;
  return (socket: PeerSocket) => {
    let peer = socket[PEER];
    if (!peer) {
      const ip = socket.remoteAddress === undefined ? null : parseIp(socket.remoteAddress);
      peer = {
        ip, text: ip ? ip.toString() : (socket.remoteAddress ?? ''), trusted: ip !== null && isTrusted(ip), credential: new CredentialMemo(),
        forwardedFor: undefined, forwardedClient: ip,
      };
      socket[PEER] = peer;
    }
    return peer;
  };
}

/**
 * The client of a request from a trusted proxy: `resolve`'s answer for the peer and the
 * request's X-Forwarded-For, worked out again only when that header differs from the one
 * before it on the connection.
 */
export function forwardedClient(peer: Peer, socket: Socket, forwardedFor: string | string[] | undefined, resolve: ClientIpResolver): ParsedIp | null {
  if (forwardedFor !== peer.forwardedFor) {
    peer.forwardedClient = resolve(socket.remoteAddress, forwardedFor);
    peer.forwardedFor = forwardedFor;
  }
  return peer.forwardedClient;
}
