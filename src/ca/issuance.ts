// Who gets a node certificate (pure: the clock and the swarm's state come in as values).
//
// A node asks with a new public key and a proof that it holds the private key: a
// signature over the request's context. Joining, it shows a join token, whose secret
// decides its role. Renewing, it shows its current certificate and signs with that
// certificate's key too; it keeps its ID, and gets the role the swarm now wants for it
// (so `docker node promote/demote` takes effect at the next renewal).
import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { verifyNodeCertificate, CertificateError, type NodeRole } from './pki.js';
import { parseJoinToken, roleOfSecret, TokenError } from './token.js';

export interface CertificateRequest {
  /** The node's new public key, SPKI PEM. */
  readonly publicKeyPem: string;
  /** Signature by the new key over proofMessage(...), base64. */
  readonly proof: string;
  readonly hostname?: string;
  /** Joining: the join token. */
  readonly token?: string;
  /** Renewing: the certificate held now, and a signature by its key over the same message. */
  readonly current?: { readonly certPem: string; readonly proof: string };
}

/** What a request's signatures cover: the new key, and what authorises it (token or current certificate). */
export function proofMessage(publicKeyPem: string, authority: string): Buffer {
  const spki = createPublicKey(publicKeyPem).export({ type: 'spki', format: 'der' });
  const bound = createHash('sha256').update(authority).digest('hex');
  return Buffer.from(`swarmshift node certificate request\n${createHash('sha256').update(spki).digest('hex')}\n${bound}\n`);
}

export interface SwarmAuthority {
  readonly clusterId: string;
  /** The roots a certificate may come from (two during a root rotation). */
  readonly trustPems: readonly string[];
  /** The root digest join tokens carry now (the old root's until a rotation is done). */
  readonly tokenDigest: string;
  /** The join secrets now in force (each token's last 25 characters). */
  readonly joinSecrets: Readonly<Record<NodeRole, string>>;
  /** The desired role of a node the swarm knows; undefined when it was removed or never joined. */
  readonly roleOf: (nodeId: string) => NodeRole | undefined;
}

export type IssuanceDecision =
  | { readonly kind: 'admit'; readonly role: NodeRole; readonly publicKey: KeyObject }
  | { readonly kind: 'renew'; readonly nodeId: string; readonly role: NodeRole; readonly publicKey: KeyObject }
  | { readonly kind: 'refuse'; readonly status: 'invalidArgument' | 'unauthenticated' | 'permissionDenied'; readonly message: string };

const refuse = (status: 'invalidArgument' | 'unauthenticated' | 'permissionDenied', message: string): IssuanceDecision => ({ kind: 'refuse', status, message });

function signedBy(key: KeyObject, message: Buffer, proofB64: string): boolean {
  try {
    return verify('sha256', message, { key, dsaEncoding: 'der' }, Buffer.from(proofB64, 'base64'));
  } catch {
    return false;
  }
}

export function decideIssuance(req: CertificateRequest, swarm: SwarmAuthority, now: Date): IssuanceDecision {
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey(req.publicKeyPem);
  } catch {
    return refuse('invalidArgument', 'the certificate request carries no readable public key');
  }
  if (publicKey.asymmetricKeyType !== 'ec' || publicKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    return refuse('invalidArgument', 'node keys must be ECDSA P-256');
  }
  if (req.current !== undefined) {
    let who;
    try {
      who = verifyNodeCertificate(req.current.certPem, swarm.trustPems, now);
    } catch (err) {
      return refuse('unauthenticated', err instanceof CertificateError ? err.message : String(err));
    }
    const message = proofMessage(req.publicKeyPem, req.current.certPem);
    const currentKey = createPublicKey(req.current.certPem);
    if (!signedBy(publicKey, message, req.proof) || !signedBy(currentKey, message, req.current.proof)) {
      return refuse('unauthenticated', `the renewal request for node ${who.nodeId} is not signed by the keys it names`);
    }
    if (who.clusterId !== swarm.clusterId) return refuse('permissionDenied', `node ${who.nodeId} belongs to swarm ${who.clusterId}, not ${swarm.clusterId}`);
    const role = swarm.roleOf(who.nodeId);
    if (role === undefined) return refuse('permissionDenied', `node ${who.nodeId} was removed from the swarm: it must join again with a join token`);
    return { kind: 'renew', nodeId: who.nodeId, role, publicKey };
  }
  if (req.token === undefined) return refuse('unauthenticated', 'a node without a certificate must present a join token');
  let token;
  try {
    token = parseJoinToken(req.token);
  } catch (err) {
    return refuse('invalidArgument', err instanceof TokenError ? err.message : String(err));
  }
  if (!signedBy(publicKey, proofMessage(req.publicKeyPem, req.token.trim()), req.proof)) {
    return refuse('unauthenticated', 'the join request is not signed by the key it names');
  }
  const role = token.caDigest === swarm.tokenDigest ? roleOfSecret(token.secret, swarm.joinSecrets) : undefined;
  // The same words whether the digest or the secret is wrong: a token is all or nothing.
  if (role === undefined) return refuse('permissionDenied', 'invalid join token: it is not (or no longer) a token of this swarm; get the current one with `docker swarm join-token worker` (or manager) on a manager');
  return { kind: 'admit', role, publicKey };
}
