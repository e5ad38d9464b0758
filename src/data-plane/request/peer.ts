import type { Socket } from 'node:net';
import { compileIpAllowlist, parseIp, type ParsedIp } from '../../domain/cidr.js';
import { CredentialMemo } from '../key-resolver.js';

const PEER = Symbol('keygate.peer');

/** What the gateway knows of a client connection, worked out on its first request. */
export interface Peer { ip: ParsedIp | null; text: string; trusted: boolean; credential: CredentialMemo }
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
      peer = { ip, text: ip ? ip.toString() : (socket.remoteAddress ?? ''), trusted: ip !== null && isTrusted(ip), credential: new CredentialMemo() };
      socket[PEER] = peer;
    }
    return peer;
  };
}
