// TLS for the managers' raft links, from a node's certificate: mutual TLS where each side
// proves its node certificate against the swarm's root CA, and a stream speaks only for
// the manager its certificate names (GrpcTransport checks each message's `from`).
import * as grpc from '@grpc/grpc-js';
import type { PeerCertificate } from 'node:tls';
import type { TransportCredentials } from '../raft/transport/index.js';
import { ROLE_OU } from './pki.js';

export interface NodeTls {
  /** The roots to trust (two during a root rotation). */
  readonly trustPems: readonly string[];
  readonly certPem: string;
  /** Served after the certificate (the cross-signed root during a rotation). */
  readonly chainPems?: readonly string[];
  readonly keyPem: string;
  /** This swarm's ID: a certificate of another swarm (under the same CA) names no member. */
  readonly clusterId: string;
}

function one(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? (value.length === 1 ? value[0] : undefined) : value;
}

/** A peer certificate's CN, OU and O, each only when it names exactly one. */
export function peerSubject(peer: PeerCertificate): { cn?: string; ou?: string; o?: string } {
  const subject = peer.subject as unknown as Record<string, string | string[] | undefined> | undefined;
  if (subject === undefined) return {};
  const cn = one(subject.CN);
  const ou = one(subject.OU);
  const o = one(subject.O);
  return { ...(cn === undefined ? {} : { cn }), ...(ou === undefined ? {} : { ou }), ...(o === undefined ? {} : { o }) };
}

/** The manager a verified peer certificate names, or undefined (a worker, another swarm). */
export function managerOf(peer: PeerCertificate, clusterId: string): string | undefined {
  const { cn, ou, o } = peerSubject(peer);
  return ou === ROLE_OU.manager && o === clusterId ? cn : undefined;
}

export function raftCredentials(tls: NodeTls): TransportCredentials {
  const ca = Buffer.from(tls.trustPems.join(''));
  const key = Buffer.from(tls.keyPem);
  const cert = Buffer.from(tls.certPem + (tls.chainPems ?? []).join(''));
  return {
    server: grpc.ServerCredentials.createSsl(ca, [{ private_key: key, cert_chain: cert }], true),
    // Peers are dialled by address, and their certificates name node IDs and roles, not
    // addresses: the server is accepted when the chain verifies and it is a manager of
    // this swarm.
    channel: grpc.credentials.createSsl(ca, key, cert, {
      checkServerIdentity: (_host, peer) => (managerOf(peer, tls.clusterId) === undefined ? new Error(`the raft peer's certificate (${peer.subject?.CN ?? 'no subject'}) is not a manager of swarm ${tls.clusterId}`) : undefined),
    }),
    memberOf: (peer) => managerOf(peer, tls.clusterId),
  };
}
