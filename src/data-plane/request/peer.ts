import type { Socket } from 'node:net';
import { compileIpAllowlist, parseIp, type ParsedIp } from '../../domain/cidr.js';
import { CredentialMemo } from '../key-resolver.js';
import type { ClientIpResolver } from './client-ip.js';

const PEER = Symbol('keygate.peer');

/** A forward in flight on a connection: told when the client leaves or its request runs out of time. */
export interface InFlight {
  clientGone(): void;
  /** False when the forward's answer has begun (or it has ended). */
  requestTimedOut(): boolean;
}

/**
 * What the gateway knows and keeps of a client connection: everything per connection lives
 * here, in the one property the gateway adds to a socket (as it is accepted, so every request
 * finds sockets of one shape). A trusted proxy's connection also keeps the last
 * X-Forwarded-For it sent and the client read from it: a proxy's keep-alive connection
 * carries a client's requests one after another.
 */
export interface Peer {
  ip: ParsedIp | null;
  text: string;
  trusted: boolean;
  credential: CredentialMemo;
  forwardedFor: string | string[] | undefined;
  forwardedClient: ParsedIp | null;
  /** The connection's byte counts when its previous request ended: a request's bytes are counted from them. */
  readMark: number;
  writtenMark: number;
  /** The forward in flight (HTTP/1.1 carries one request at a time); null for none. */
  inFlight: InFlight | null;
  /** Whether the connection's close listener, which tells `inFlight`, is on (it is added with the first forward). */
  watched: boolean;
  /** A request on it was refused for its Transfer-Encoding: the parser's own error on it follows. */
  badFraming: boolean;
}
type PeerSocket = Socket & { [PEER]?: Peer };

/** A connection's peer as it is first seen: `ip` parsed from the socket's address (`text` that address as the gateway writes it). */
export function newPeer(ip: ParsedIp | null, text: string, trusted: boolean): Peer {
  return {
    ip, text, trusted, credential: new CredentialMemo(), forwardedFor: undefined, forwardedClient: ip,
    readMark: 0, writtenMark: 0, inFlight: null, watched: false, badFraming: false,
  };
}

/**
 * The connection's peer, parsed once per connection: every request on a keep-alive socket has
 * the same peer (and its credential memo). Called as each connection is accepted, and again
 * for each request (which finds it made).
 */
export function peerMemo(trustedProxies: readonly string[]): (socket: Socket) => Peer {
  const isTrusted = trustedProxies.length > 0 ? compileIpAllowlist(trustedProxies) : () => false;
  return (socket: PeerSocket) => {
    let peer = socket[PEER];
    if (!peer) {
      const ip = socket.remoteAddress === undefined ? null : parseIp(socket.remoteAddress);
      peer = newPeer(ip, ip ? ip.toString() : (socket.remoteAddress ?? ''), ip !== null && isTrusted(ip));
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
