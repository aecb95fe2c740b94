// The NodeCA service of a manager, over gRPC (JSON messages), and its client: how a node
// joining with a token, or renewing, gets its certificate.
//
// Joining, the node trusts nothing yet. It asks for the root CA over TLS without checking
// it, and accepts it only if its SHA-256 is the digest in the join token; then it talks
// to the manager over TLS verified against that CA, and only to a manager. Its private key
// never leaves it: the request carries the public key and signatures (issuance.ts).
import { createPublicKey, sign, type KeyObject } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { PeerCertificate } from 'node:tls';
import { peerSubject } from './credentials.js';
import { decideIssuance, proofMessage, type CertificateRequest } from './issuance.js';
import { certificateDigest, generateKey, issueNodeCertificate, NODE_CERT_EXPIRY_MS, ROLE_OU, verifyNodeCertificate, type NodeRole } from './pki.js';
import { issuer, rootsToTrust, tokenRoot, trustedRoots, type CaState } from './rotation.js';
import { parseJoinToken } from './token.js';

const json = {
  serialize: (value: unknown): Buffer => Buffer.from(JSON.stringify(value)),
  deserialize: (bytes: Buffer): unknown => JSON.parse(bytes.toString('utf8')) as unknown,
};

function method(name: string): grpc.MethodDefinition<unknown, unknown> {
  return {
    path: `/swarmshift.ca.NodeCA/${name}`,
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  };
}

const SERVICE = { rootCertificate: method('RootCertificate'), issue: method('Issue') };

/** A node's certificate and what it needs around it. */
export interface IssuedCertificate {
  readonly nodeId: string;
  readonly role: NodeRole;
  readonly certPem: string;
  /** Served after the certificate (the cross-signed root during a root rotation). */
  readonly chainPems: readonly string[];
  /** The roots to trust (two during a root rotation). */
  readonly trustPems: readonly string[];
}

/** What the NodeCA reads and writes: the manager gives it the store's view. */
export interface NodeCaBackend {
  /** The swarm as it is now; read for every request, so rotated tokens and roots take effect at once. */
  authority(): {
    readonly clusterId: string;
    readonly ca: CaState;
    readonly joinSecrets: Readonly<Record<NodeRole, string>>;
    readonly nodeCertExpiryMs?: number;
  };
  roleOf(nodeId: string): NodeRole | undefined;
  /** A new node's ID, recorded durably with its role before its certificate is issued. */
  admit(role: NodeRole, hostname: string | undefined): Promise<string>;
  now(): Date;
}

const statusOf = { invalidArgument: grpc.status.INVALID_ARGUMENT, unauthenticated: grpc.status.UNAUTHENTICATED, permissionDenied: grpc.status.PERMISSION_DENIED } as const;

function isRequest(value: unknown): value is CertificateRequest {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Record<string, unknown>;
  const current = r.current as Record<string, unknown> | undefined;
  return (
    typeof r.publicKeyPem === 'string' &&
    typeof r.proof === 'string' &&
    (r.hostname === undefined || typeof r.hostname === 'string') &&
    (r.token === undefined || typeof r.token === 'string') &&
    (current === undefined || (typeof current === 'object' && current !== null && typeof current.certPem === 'string' && typeof current.proof === 'string'))
  );
}

export function addNodeCaService(server: grpc.Server, backend: NodeCaBackend): void {
  server.addService(SERVICE, {
    rootCertificate: (_call: grpc.ServerUnaryCall<unknown, unknown>, done: grpc.sendUnaryData<unknown>) => {
      // The root the join tokens name: what a joining node can pin.
      done(null, { certPem: tokenRoot(backend.authority().ca).certPem });
    },
    issue: (call: grpc.ServerUnaryCall<unknown, unknown>, done: grpc.sendUnaryData<unknown>) => {
      void (async () => {
        const req = call.request;
        if (!isRequest(req)) return done({ code: grpc.status.INVALID_ARGUMENT, details: 'not a certificate request: it needs publicKeyPem and proof, and a token or the current certificate' });
        const swarm = backend.authority();
        const now = backend.now();
        const trustPems = trustedRoots(swarm.ca);
        const authority = { clusterId: swarm.clusterId, trustPems, tokenDigest: tokenRoot(swarm.ca).digest, joinSecrets: swarm.joinSecrets, roleOf: (id: string) => backend.roleOf(id) };
        const decision = decideIssuance(req, authority, now);
        if (decision.kind === 'refuse') return done({ code: statusOf[decision.status], details: decision.message });
        const nodeId = decision.kind === 'admit' ? await backend.admit(decision.role, req.hostname) : decision.nodeId;
        const { ca, chainPems } = issuer(swarm.ca);
        const certPem = issueNodeCertificate(ca, { nodeId, role: decision.role, clusterId: swarm.clusterId, publicKey: decision.publicKey, now, expiryMs: swarm.nodeCertExpiryMs ?? NODE_CERT_EXPIRY_MS });
        const out: IssuedCertificate = { nodeId, role: decision.role, certPem, chainPems, trustPems };
        done(null, out);
      })().catch((err: unknown) => done({ code: grpc.status.UNAVAILABLE, details: `the manager could not record the node: ${err instanceof Error ? err.message : String(err)}; try again` }));
    },
  });
}

export class JoinError extends Error {
  override readonly name = 'JoinError';
}

function call<T>(client: grpc.Client, m: grpc.MethodDefinition<unknown, unknown>, request: unknown, deadlineMs: number, address: string): Promise<T> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(m.path, m.requestSerialize, m.responseDeserialize, request, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (err, value) => {
      if (err) {
        const reach = err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.DEADLINE_EXCEEDED;
        reject(new JoinError(reach ? `cannot reach the manager at ${address}: ${err.details}; check the address and that port is open` : err.details));
      } else resolve(value as T);
    });
  });
}

/** Only a manager of the swarm may hand out certificates. */
function managerCheck(address: string) {
  return (_host: string, peer: PeerCertificate): Error | undefined => {
    const { ou } = peerSubject(peer);
    return ou === ROLE_OU.manager ? undefined : new Error(`${address} is not a manager of this swarm (its certificate says ${ou ?? 'nothing'})`);
  };
}

export interface RequestOptions {
  readonly hostname?: string;
  readonly deadlineMs?: number;
  readonly now?: () => Date;
}

/** `docker swarm join --token T address`: a key of its own, and a certificate for it. */
export async function requestJoin(address: string, token: string, opts: RequestOptions = {}): Promise<IssuedCertificate & { keyPem: string }> {
  const { caDigest } = parseJoinToken(token);
  const deadlineMs = opts.deadlineMs ?? 10_000;
  const blind = new grpc.Client(address, grpc.credentials.createSsl(null, null, null, { rejectUnauthorized: false }));
  let caPem: string;
  try {
    caPem = (await call<{ certPem: string }>(blind, SERVICE.rootCertificate, {}, deadlineMs, address)).certPem;
  } finally {
    blind.close();
  }
  if (typeof caPem !== 'string' || certificateDigest(caPem) !== caDigest) {
    throw new JoinError(`the manager at ${address} presents a CA other than the one the join token names: it is another swarm, or something is in the way; check the address and the token`);
  }
  const key = generateKey();
  const publicKeyPem = createPublicKey(key.privateKey).export({ type: 'spki', format: 'pem' }).toString();
  const request: CertificateRequest = {
    publicKeyPem,
    proof: sign('sha256', proofMessage(publicKeyPem, token.trim()), { key: key.privateKey, dsaEncoding: 'der' }).toString('base64'),
    token: token.trim(),
    ...(opts.hostname === undefined ? {} : { hostname: opts.hostname }),
  };
  const issued = await issue(address, [caPem], request, deadlineMs, key.privateKey, opts.now);
  return { ...issued, keyPem: key.keyPem };
}

/** A new key and certificate for a node that holds a valid one (renewal, a role change, a root rotation). */
export async function requestRenewal(address: string, held: { trustPems: readonly string[]; certPem: string; keyPem: string }, opts: RequestOptions = {}): Promise<IssuedCertificate & { keyPem: string }> {
  const key = generateKey();
  const publicKeyPem = createPublicKey(key.privateKey).export({ type: 'spki', format: 'pem' }).toString();
  const message = proofMessage(publicKeyPem, held.certPem);
  const request: CertificateRequest = {
    publicKeyPem,
    proof: sign('sha256', message, { key: key.privateKey, dsaEncoding: 'der' }).toString('base64'),
    current: { certPem: held.certPem, proof: sign('sha256', message, { key: held.keyPem, dsaEncoding: 'der' }).toString('base64') },
  };
  const issued = await issue(address, held.trustPems, request, opts.deadlineMs ?? 10_000, key.privateKey, opts.now);
  return { ...issued, keyPem: key.keyPem };
}

async function issue(address: string, trusted: readonly string[], request: CertificateRequest, deadlineMs: number, privateKey: KeyObject, now: (() => Date) | undefined): Promise<IssuedCertificate> {
  const client = new grpc.Client(address, grpc.credentials.createSsl(Buffer.from(trusted.join('')), null, null, { checkServerIdentity: managerCheck(address) }));
  try {
    const issued = await call<IssuedCertificate>(client, SERVICE.issue, request, deadlineMs, address);
    const at = now?.() ?? new Date();
    const chainPems = Array.isArray(issued.chainPems) ? issued.chainPems.filter((p): p is string => typeof p === 'string') : [];
    const who = verifyNodeCertificate(issued.certPem, trusted, at, chainPems);
    const certKey = createPublicKey(issued.certPem).export({ type: 'spki', format: 'der' });
    if (!certKey.equals(createPublicKey(privateKey).export({ type: 'spki', format: 'der' })) || who.nodeId !== issued.nodeId || who.role !== issued.role) {
      throw new JoinError(`the manager at ${address} answered with a certificate that is not for this request`);
    }
    return { nodeId: issued.nodeId, role: issued.role, certPem: issued.certPem, chainPems, trustPems: rootsToTrust(trusted, Array.isArray(issued.trustPems) ? issued.trustPems : [], chainPems) };
  } finally {
    client.close();
  }
}
